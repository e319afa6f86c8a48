"""OpenAICompatBackend against a REAL llama.cpp server (``python -m llama_cpp.server``) serving Gemma 3 270M.

Skips cleanly when ``llama_cpp`` (with its server extra) is not installed. The server is started once per module
on a free local port and killed at the end.
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

from promed.types import Generation, Sampling

LETTERS = [" A", " B", " C", " D"]
PROMPT = (
    "The following is a multiple-choice question. Give the letter of the correct option.\n\n"
    "Question: What is the capital of France?\nA. Berlin\nB. Madrid\nC. Paris\nD. Rome\n\nAnswer: C\n\n"
    "Question: How many legs does a spider have?\nA. Four\nB. Six\nC. Ten\nD. Eight\n\nAnswer:"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("llama_cpp", "uvicorn", "fastapi"))


needs_server = pytest.mark.skipif(not _server_available(), reason="llama-cpp-python[server] is not installed")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from promed.llm import gemma_270m_path

    port = _free_port()
    log = tmp_path_factory.mktemp("llama_server") / "server.log"
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gemma_270m_path()), "--host", "127.0.0.1",
           "--port", str(port), "--n_ctx", "2048", "--model_alias", "gemma-270m"]
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        import httpx

        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama.cpp server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{base}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama.cpp server did not start in 180 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def backend(server):
    from promed.llm import load_llm

    return load_llm(f"openai:gemma-270m@{server}", concurrency=2, timeout=120)


@pytest.mark.slow
@needs_server
def test_generate_chat_and_completions(backend, server):
    from promed.llm.openai_compat import OpenAICompatBackend

    chats = [[{"role": "user", "content": "What is the capital of France?"}]] * 2
    out = backend.generate(chats, Sampling(max_new_tokens=8))
    assert len(out) == 2 and all(isinstance(g, Generation) and isinstance(g.text, str) for g in out)
    # the standard API sends no token ids: text only, said so by has_tokens
    assert not any(g.has_tokens for g in out) and all(g.logprobs is None for g in out)
    assert all(g.finish_reason in ("stop", "length") for g in out)
    comp = OpenAICompatBackend("gemma-270m", server, mode="completions", timeout=120)
    [g] = comp.generate([chats[0]], Sampling(max_new_tokens=8, stop=("\n",)))
    assert "\n" not in g.text


@pytest.mark.slow
@needs_server
def test_score_options_normalised(backend):
    probs = backend.score_options([PROMPT, PROMPT.replace("spider", "dog")], [LETTERS])
    assert len(probs) == 2
    for p in probs:
        assert p.shape == (4,) and np.all(p >= 0) and abs(p.sum() - 1) < 1e-9
    # multi-token candidates without echo: sequential scoring (" Four" is in the top list, then " legs")
    multi = backend.score_options([PROMPT], [[" Four legs", " D", " zzzz-not-a-token"]])[0]
    assert multi.shape == (3,) and abs(multi.sum() - 1) < 1e-9 and np.all(np.isfinite(multi))


@pytest.mark.slow
@needs_server
def test_echo_scoring_matches_top_list(server):
    """echo=True scoring of a candidate equals its first-token top-list log-probability (short prompt: llama.cpp's
    echo log-probabilities are slow), and a two-token candidate is the sum of its tokens' log-probabilities."""
    from promed.llm.openai_compat import OpenAICompatBackend

    b = OpenAICompatBackend("gemma-270m", server, echo=True, timeout=300)
    prompt = "Spiders have eight"
    top = b._top(prompt)
    cand = max(top, key=top.get)
    assert b._echo_ll(prompt, cand) == pytest.approx(top[cand], abs=1e-3)
    top2 = b._top(prompt + cand)
    nxt = max((t for t in top2 if t.strip()), key=top2.get)
    assert b._echo_ll(prompt, cand + nxt) == pytest.approx(top[cand] + top2[nxt], abs=1e-3)


@pytest.mark.slow
@needs_server
def test_agrees_with_hf_backend(backend):
    """Same GGUF, two engines: report (not assert) the argmax agreement - quantized kernels differ slightly."""
    from promed.llm import load_llm

    server_p = backend.score_options([PROMPT], [LETTERS])[0]
    hf_p = load_llm("gemma-270m").score_options([PROMPT], [LETTERS])[0]
    msg = f"llama.cpp {np.round(server_p, 3)} vs transformers {np.round(hf_p, 3)}"
    print(msg)
    if int(np.argmax(server_p)) != int(np.argmax(hf_p)):
        warnings.warn(f"argmax differs between llama.cpp server and transformers: {msg}")


@pytest.mark.slow
@needs_server
def test_key_is_never_in_repr(monkeypatch, server):
    from promed.llm.openai_compat import OpenAICompatBackend

    monkeypatch.setenv("PROMED_TEST_KEY", "sk-secret-123")
    b = OpenAICompatBackend("gemma-270m", server, api_key_env="PROMED_TEST_KEY")
    assert "sk-secret-123" not in repr(b) and "sk-secret-123" not in b.name
    assert not any("sk-secret-123" in str(v) for k, v in vars(b).items() if k != "_client")


def test_unreachable_server_fails_fast():
    from promed.llm.base import ServerError
    from promed.llm.openai_compat import OpenAICompatBackend

    b = OpenAICompatBackend("m", f"http://127.0.0.1:{_free_port()}/v1", timeout=2, max_retries=1)
    t = time.monotonic()
    with pytest.raises(ServerError, match="connection refused"):
        b.generate([[{"role": "user", "content": "hi"}]], Sampling(max_new_tokens=2))
    assert time.monotonic() - t < 30


def test_beam_search_is_refused_before_any_request():
    from promed.llm.openai_compat import OpenAICompatBackend

    b = OpenAICompatBackend("m", f"http://127.0.0.1:{_free_port()}/v1", timeout=2, max_retries=0)
    assert b.supports_beams is False
    with pytest.raises(ValueError, match="beam"):
        b.generate([[{"role": "user", "content": "hi"}]], Sampling(n=2, beams=2))
