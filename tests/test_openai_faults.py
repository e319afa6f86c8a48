"""OpenAICompatBackend against a misbehaving OpenAI-compatible server: retries, time bounds, exit codes, no key leaks.

The server is a ``ThreadingHTTPServer`` on 127.0.0.1 (port 0) in a thread of this process, serving
``/v1/chat/completions`` and ``/v1/completions`` with a script of behaviours, one per request (the last one
repeats). No external network; each test takes well under a few seconds.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from promed.llm.base import ServerError
from promed.llm.openai_compat import OpenAICompatBackend, max_request_seconds
from promed.types import Generation, Sampling

SECRET = "sk-test-SECRET-123"
CHAT = [[{"role": "user", "content": "What is the capital of France?"}]]
LETTERS = [" A", " B", " C", " D"]


def ok_reply(path: str, request: dict) -> dict:
    """A well-formed reply for either endpoint (top log-probabilities when asked for)."""
    if path.endswith("/chat/completions"):
        return {"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "ASK: Any fever?"},
                             "finish_reason": "stop"}]}
    logprobs = None
    if request.get("logprobs"):
        top = {" A": -0.2, " B": -2.0, " C": -3.0, " D": -4.0}
        logprobs = {"tokens": [" A"], "token_logprobs": [-0.2], "top_logprobs": [top], "text_offset": [0]}
    return {"id": "x", "object": "text_completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "text": " A", "logprobs": logprobs, "finish_reason": "length"}]}


class FakeServer:
    """Scripted behaviours, one per request: ``"ok"``, ``("status", code, headers, body)``, ``("hang", s)``,
    ``("raw", content_type, bytes)``. Records every request's path, headers and JSON body."""

    def __init__(self):
        self.script: list = ["ok"]
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.closing = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output clean
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with fake.lock:
                    fake.requests.append({"path": self.path, "auth": self.headers.get("authorization"),
                                          "json": json.loads(body or b"{}")})
                    step = fake.script.pop(0) if len(fake.script) > 1 else fake.script[0]
                try:
                    fake.act(self, step)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): fine

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def act(self, h: BaseHTTPRequestHandler, step) -> None:
        if step == "ok":
            self.send(h, 200, "application/json", json.dumps(ok_reply(h.path, self.requests[-1]["json"])).encode())
        elif step[0] == "status":
            _, code, headers, body = step
            self.send(h, code, "application/json", json.dumps(body).encode(), headers)
        elif step[0] == "hang":
            self.closing.wait(step[1])
        elif step[0] == "raw":
            self.send(h, 200, step[1], step[2])
        else:  # pragma: no cover
            raise ValueError(step)

    @staticmethod
    def send(h: BaseHTTPRequestHandler, code: int, ctype: str, data: bytes, headers: dict | None = None) -> None:
        h.send_response(code)
        h.send_header("content-type", ctype)
        h.send_header("content-length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def close(self) -> None:
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = FakeServer()
    yield s
    s.close()


@pytest.fixture(autouse=True)
def secret_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)


def backend(server: FakeServer, **kw) -> OpenAICompatBackend:
    return OpenAICompatBackend("m", server.url, **{"timeout": 2.0, "max_retries": 3, **kw})


def retry_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("warning: ") and "retry" in line]


def test_500_then_success_is_retried_once(server, capsys):
    server.script = [("status", 500, {}, {"error": {"message": "boom"}}), "ok"]
    [g] = backend(server).generate(CHAT, Sampling(max_new_tokens=8))
    assert isinstance(g, Generation) and g.text == "ASK: Any fever?" and g.finish_reason == "stop"
    assert len(server.requests) == 2
    lines = retry_lines(capsys.readouterr().err)
    assert len(lines) == 1, lines
    assert f"{server.url}/chat/completions" in lines[0] and "HTTP 500" in lines[0] and "retry 1/3 in 0.5 s" in lines[0]
    assert all(r["auth"] == f"Bearer {SECRET}" for r in server.requests)  # the key does reach the server


def test_429_honours_retry_after(server, capsys):
    server.script = [("status", 429, {"Retry-After": "1"}, {"error": {"message": "slow down"}}), "ok"]
    t = time.monotonic()
    probs = backend(server).score_options(["Question ...\nAnswer:"], [LETTERS])
    took = time.monotonic() - t
    assert len(server.requests) == 2 and 1.0 <= took < 4.0
    assert probs[0].shape == (4,) and abs(probs[0].sum() - 1) < 1e-9 and int(np.argmax(probs[0])) == 0
    [line] = retry_lines(capsys.readouterr().err)
    assert "HTTP 429" in line and "retry 1/3 in 1 s" in line and f"{server.url}/completions" in line


def test_hang_past_the_timeout_is_bounded(server, capsys):
    server.script = [("hang", 30)]
    b = backend(server, timeout=0.5, max_retries=1)
    t = time.monotonic()
    with pytest.raises(ServerError) as info:
        b.generate(CHAT, Sampling(max_new_tokens=8))
    took = time.monotonic() - t
    err = info.value
    assert took < 4.0 and took < max_request_seconds(0.5, 1) + 1.5, took
    assert err.status is None and server.url in str(err) and "timeout after 0.5 s" in str(err)
    assert len(server.requests) == 2 and len(retry_lines(capsys.readouterr().err)) == 1


def test_malformed_reply_is_retried_then_reported(server, capsys):
    server.script = [("raw", "application/json", b"{not json")]
    with pytest.raises(ServerError, match="malformed") as info:
        backend(server, max_retries=2).generate(CHAT, Sampling(max_new_tokens=8))
    assert info.value.status is None and server.url in str(info.value)
    assert len(server.requests) == 3 and len(retry_lines(capsys.readouterr().err)) == 2


@pytest.mark.parametrize("body", [{"id": "x", "object": "text_completion"},  # no choices
                                  {"id": "x", "choices": [{"index": 0, "text": " A", "logprobs": None}]}])
def test_missing_choices_or_logprobs_is_malformed(server, body):
    server.script = [("status", 200, {}, body)]
    with pytest.raises(ServerError, match="malformed reply: no") as info:
        backend(server, max_retries=1).score_options(["Answer:"], [LETTERS])
    assert len(server.requests) == 2 and f"{server.url}/completions" in str(info.value)


def test_401_fails_at_once_naming_the_key_variable(server, capsys):
    server.script = [("status", 401, {}, {"error": {"message": f"Incorrect API key provided: {SECRET}"}})]
    b = backend(server)
    with pytest.raises(ServerError) as info:
        b.generate(CHAT * 3, Sampling(max_new_tokens=8))
    err = info.value
    assert len(server.requests) <= 3 and not retry_lines(capsys.readouterr().err)  # never retried
    assert err.status == 401 and "HTTP 401 Unauthorized" in str(err) and "OPENAI_API_KEY" in str(err)
    # the server echoed the key back: it is redacted everywhere
    for text in (str(err), repr(err), err.message, repr(b), b.name, str(err.args)):
        assert SECRET not in text
    assert not any(SECRET in str(v) for k, v in vars(b).items() if k != "_client")


def test_401_single_request_is_one_request(server):
    server.script = [("status", 401, {}, {"error": {"message": "no"}})]
    with pytest.raises(ServerError):
        backend(server).generate(CHAT, Sampling(max_new_tokens=8))
    assert len(server.requests) == 1


def test_404_fails_at_once_with_the_servers_message(server):
    server.script = [("status", 404, {}, {"error": {"message": "The model `m` does not exist." + " x" * 300}})]
    with pytest.raises(ServerError) as info:
        backend(server).generate(CHAT, Sampling(max_new_tokens=8))
    msg = str(info.value)
    assert len(server.requests) == 1 and info.value.status == 404
    assert "HTTP 404 Not Found: The model `m` does not exist." in msg and len(msg) < 400 and "\n" not in msg


def test_connection_refused(capsys):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    b = OpenAICompatBackend("m", f"http://127.0.0.1:{port}/v1", timeout=1, max_retries=1)
    with pytest.raises(ServerError, match="connection refused") as info:
        b.generate(CHAT, Sampling(max_new_tokens=2))
    assert f"127.0.0.1:{port}" in str(info.value) and len(retry_lines(capsys.readouterr().err)) == 1


def test_one_failure_stops_the_batch(server, capsys):
    """With concurrency, the first request to fail for good is raised and the others stop retrying."""
    server.script = [("status", 503, {}, {"error": "down"})]
    b = backend(server, concurrency=4, max_retries=2)
    with pytest.raises(ServerError, match="HTTP 503"):
        b.generate(CHAT * 16, Sampling(max_new_tokens=2))
    assert len(server.requests) < 16 * 3


def test_key_never_leaks_through_stderr(server, capsys):
    server.script = [("status", 500, {}, {"error": {"message": f"bad key {SECRET}"}}), "ok"]
    backend(server).generate(CHAT, Sampling(max_new_tokens=8))
    captured = capsys.readouterr()
    assert "***" in captured.err and SECRET not in captured.err + captured.out


def test_server_config_reaches_the_backend(server):
    from promed.llm import clear_llm_cache
    from promed.runtime import RunModels, ServerConfig

    clear_llm_cache()
    models = RunModels(f"openai:m@{server.url}", "bayes", "fact", True,
                       server=ServerConfig(timeout=1.5, retries=0, concurrency=2))
    llm = models.llm()
    assert (llm.timeout, llm.max_retries, llm.concurrency) == (1.5, 0, 2)
    assert ServerConfig().llm_options("tiny") == {}  # local models take no server options
    with pytest.raises(ValueError, match="timeout"):
        ServerConfig(timeout=0)
    clear_llm_cache()


# ---- the command line ------------------------------------------------------------------------------------------


def test_cli_eval_against_401_server_exits_3(server, tmp_path: Path):
    from typer.testing import CliRunner

    from promed import cli
    from promed.llm import clear_llm_cache

    clear_llm_cache()
    server.script = [("status", 401, {}, {"error": {"message": "invalid key"}})]
    out = tmp_path / "run"
    res = CliRunner().invoke(cli.app, ["eval", "--data", "synthclinic", "--split", "val", "--limit", "2", "--doctor",
                                       "prompted", "--model", f"openai:m@{server.url}", "--scorer", "bayes",
                                       "--retries", "0", "--timeout", "1", "--no-progress", "--out", str(out)])
    clear_llm_cache()
    assert res.exit_code == 3, (res.output, res.exception)
    err = res.stderr.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "Traceback" not in res.output
    assert "HTTP 401" in err and "OPENAI_API_KEY" in err and server.url in err and SECRET not in res.output
    assert len(server.requests) >= 1
    records = [line for f in (out / "transcripts").glob("*.jsonl") for line in f.read_text().splitlines()
               if line.strip()] if (out / "transcripts").exists() else []
    assert records == []


def test_cli_internal_error_exits_1_and_debug_reraises(monkeypatch, tmp_path: Path):
    from typer.testing import CliRunner

    import promed.runs.sig as runs_sig
    from promed import cli

    def boom(cfg, progress=True):
        raise ZeroDivisionError("surprise")

    monkeypatch.setattr(runs_sig, "run_sig", boom)
    args = ["sig", "--limit", "1", "--no-progress", "--out", str(tmp_path / "s")]
    res = CliRunner().invoke(cli.app, args)
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert res.stderr.strip() == ("error: internal error: ZeroDivisionError: surprise (run with --debug for the "
                                  "traceback)")
    res = CliRunner().invoke(cli.app, ["--debug", *args])
    assert isinstance(res.exception, ZeroDivisionError)  # re-raised: the traceback is shown
    res = CliRunner().invoke(cli.app, args, env={"PROMED_DEBUG": "1"})
    assert isinstance(res.exception, ZeroDivisionError)


def test_cli_eval_honours_retries_and_timeout(server, tmp_path: Path):
    """--retries 0: a 500 is not retried (one request per consultation, no retry line)."""
    from typer.testing import CliRunner

    from promed import cli
    from promed.llm import clear_llm_cache

    clear_llm_cache()
    server.script = [("status", 500, {}, {"error": {"message": "boom"}})]
    res = CliRunner().invoke(cli.app, ["eval", "--data", "synthclinic", "--split", "val", "--limit", "2", "--doctor",
                                       "prompted", "--model", f"openai:m@{server.url}", "--retries", "0",
                                       "--timeout", "1", "--no-progress", "--out", str(tmp_path / "run")])
    clear_llm_cache()
    assert res.exit_code == 3, (res.output, res.exception)
    assert "HTTP 500" in res.stderr and not retry_lines(res.stderr), res.stderr
    assert 1 <= len(server.requests) <= 2, "promed eval must pass cfg.server to RunModels (src/promed/eval/evaluate.py)"


def test_server_settings_from_a_config_file(tmp_path: Path):
    from promed import cli
    from promed.cliopts import resolve

    path = tmp_path / "c.toml"
    path.write_text("[eval.server]\ntimeout = 5\nretries = 1\n[mcts.server]\nconcurrency = 2\n")
    cfg = resolve(cli.SPECS["eval"](), {"opt_server__retries": 0}, {"opt_server__retries"}, path, cli.COMMANDS)
    assert (cfg.server.timeout, cfg.server.retries, cfg.server.concurrency) == (5.0, 0, 8)  # the option wins
    assert resolve(cli.SPECS["mcts"](), {}, set(), path, cli.COMMANDS).server.concurrency == 2
    path.write_text("[server]\nretries = -1\n")
    with pytest.raises(ValueError, match=r"--retries \(server.retries\) must be >= 0"):
        resolve(cli.SPECS["sig"](), {}, set(), path, cli.COMMANDS)


def test_return_token_ids_gives_a_token_exact_generation(server):
    """A server that returns the sampled ids (vLLM's return_token_ids) and their log-probs: the generation carries
    them; without them it stays text only."""
    reply = {"id": "x", "object": "chat.completion", "created": 0, "model": "m",
             "choices": [{"index": 0, "message": {"role": "assistant", "content": "ASK: Any fever?"},
                          "finish_reason": "stop", "token_ids": [11, 12, 13],
                          "logprobs": {"content": [{"token": t, "logprob": lp, "bytes": None, "top_logprobs": []}
                                                   for t, lp in (("ASK", -0.1), (":", -0.2), (" Any fever?", -0.3))]}}]}
    server.script = [("status", 200, {}, reply)]
    [g] = backend(server, return_token_ids=True).generate([[{"role": "user", "content": "hi"}]],
                                                          Sampling(max_new_tokens=8))
    assert g.token_ids == (11, 12, 13) and g.logprobs == (-0.1, -0.2, -0.3) and g.finish_reason == "stop"
    sent = server.requests[-1]["json"]
    assert sent["return_token_ids"] is True and sent["logprobs"] is True
    server.script = ["ok"]
    [g] = backend(server).generate([[{"role": "user", "content": "hi"}]], Sampling(max_new_tokens=8))
    assert not g.has_tokens and g.logprobs is None and g.text == "ASK: Any fever?"
    assert "return_token_ids" not in server.requests[-1]["json"]
