"""OpenAI-compatible HTTP backend (vLLM, llama.cpp server, hosted APIs) through the ``openai`` client.

* ``generate``: ``chat.completions`` (``mode="chat"``) or ``completions`` on a plain-rendered prompt
  (``mode="completions"``, :func:`promed.llm.hf.render_plain`), one request per chat and sample,
  ``concurrency`` requests in flight (thread pool). Stop strings are passed to the server (at most 4, the API
  limit). It returns :class:`promed.types.Generation` objects. **Text only by default**: the standard API returns
  no token ids, so ``token_ids`` is empty and ``logprobs`` ``None`` (such generations can be evaluated but not
  rendered for RL; train on a local model). With ``return_token_ids=True`` (vLLM >= 0.10.2) the request asks for
  the sampled ids and their log-probabilities (``extra_body={"return_token_ids": true}``, ``logprobs``) and the
  generation carries them when the server sends both; otherwise it stays text only and the stop strings are
  also applied to the returned text.
* ``score_options``: the ``completions`` endpoint with ``logprobs`` (whatever ``mode`` is: scoring a raw prompt
  needs a raw-text endpoint). Per prompt:

  1. one request with ``max_tokens=1, logprobs=top_logprobs`` gives the top log-probabilities of the first
     generated token; a candidate whose text is exactly one of those tokens (``" A"``) is scored from it;
  2. with ``echo=True`` (vLLM), a candidate absent from the top list is scored exactly: one request for
     prompt + candidate with ``echo`` returns the prompt's token log-probabilities; the candidate's tokens are
     those ending after the prompt's last character. Off by default: OpenAI's hosted models refuse it, and
     llama-cpp-python's server computes echo log-probabilities by sorting the whole vocabulary in Python for
     every prompt token (measured: 25 s for a 5-token prompt with Gemma's 262k vocabulary);
  3. otherwise a candidate that starts with a top-list token is scored sequentially: take the longest top token
     that prefixes the rest of the candidate, add its log-probability, append it to the prompt, ask again. This
     follows one tokenization of the candidate (greedy longest match among the listed tokens), not a sum over
     all of them: an approximation;
  4. a candidate that cannot be scored that way gets ``min(seen log-probs) - missing_margin``: it is less likely
     than every listed token, and the margin (default 1 nat) keeps it strictly below them. Also an
     approximation, documented as such; request more ``top_logprobs`` to reach it less often.

  Then a softmax over the prompt's candidates.

Failures and retries (our loop; the ``openai`` client runs with ``max_retries=0``): every failure talking to the
server ends as one :class:`promed.llm.base.ServerError` naming the endpoint URL and the HTTP status, or
``timeout after T s``, ``connection refused`` (``cannot connect: ...``) or ``malformed reply: <what>``.

* retried, with a ``warning: <url>: <what>; retry k/R in D s`` line on stderr per retry: connection errors,
  timeouts, HTTP 408, 409, 429 and 5xx, and malformed replies (a body that is not JSON, no ``choices``, no
  ``logprobs`` where scoring needs them);
* not retried: 401 and 403 (the message names the key's environment variable, ``api_key_env``), and every other
  4xx (400, 404, 422, ...: the message has the status and the server's error message, truncated).

Back-off before retry k (1-based): ``min(0.5 * 2**(k-1), 8)`` s (0.5, 1, 2, 4, 8, 8, ... s); after a 429 or 503
with a ``Retry-After`` (or ``retry-after-ms``) header, that many seconds instead, capped at 30 s. ``timeout`` (T) is
the client's limit on each phase of one attempt (connect, send, and the wait for the reply, which for these
non-streaming requests covers the whole generation). So one request with R = ``max_retries`` takes at most
``T * (R + 1) + sum(back-offs)`` (:func:`max_request_seconds`): 4 x 60 + 3.5 = 243.5 s with the defaults
(T = 60, R = 3), 2 x 0.5 + 0.5 = 1.5 s with T = 0.5, R = 1; each Retry-After honoured adds at most 30 s instead
of its back-off. In a batch (``concurrency`` requests in flight), the first request to fail for good stops the
others from retrying further and cancels the queued ones, and that first error is raised.

The API key is read from the environment variable ``api_key_env`` (``"EMPTY"`` when unset, as local servers
expect); it is never logged, never put in ``repr``, and removed from every error and warning (a server that
echoes it back in an error body shows ``***``).
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any, Callable, Sequence, TypeVar

import numpy as np

from promed.errors import InputError
from promed.llm.base import ServerError
from promed.llm.hf import render_plain
from promed.llm.http_retry import (  # noqa: F401  (max_request_seconds: part of this module's documented API)
    KEY_STATUSES, RETRY_STATUSES, _display_url, _Failure, _first_choice, _Malformed, _one_line, _parse_chat,
    _parse_completion, _parse_top, _reason, _retry_after_s, _server_message, backoff_s, max_request_seconds,
)
from promed.types import Chat, Generation, Sampling

T = TypeVar("T")
R = TypeVar("R")

class OpenAICompatBackend:
    """An :class:`promed.llm.base.LLM` over an OpenAI-compatible server.

    Args:
        model: the server's model name.
        base_url: e.g. ``http://127.0.0.1:8000/v1``.
        api_key_env: environment variable holding the API key.
        timeout: seconds per attempt of a request (see the module docstring for the bound on a whole request).
        max_retries: retries per request (our loop: exponential back-off, a warning line per retry).
        concurrency: requests in flight at once.
        mode: ``"chat"`` (chat.completions) or ``"completions"`` (raw prompt) for :meth:`generate`.
        top_logprobs: how many top first-token log-probabilities to request when scoring (OpenAI caps it at 5
            for completions, vLLM at 20 by default).
        missing_margin: nats below the smallest seen log-probability for a candidate that cannot be scored.
        echo: score candidates absent from the top list exactly with ``echo=True`` (use with vLLM).
        return_token_ids: ask the server for the sampled token ids and log-probabilities (vLLM).
        name: the backend's name (default ``openai:<model>@<base_url>``).

    No beam search (the OpenAI API has none): ``Sampling.beams > 1`` raises ``ValueError``. A failure talking to
    the server raises :class:`promed.llm.base.ServerError`.
    """

    supports_beams = False

    def __init__(self, model: str, base_url: str, *, api_key_env: str = "OPENAI_API_KEY", timeout: float = 60.0,
                 max_retries: int = 3, concurrency: int = 8, mode: str = "chat", top_logprobs: int = 20,
                 missing_margin: float = 1.0, echo: bool = False, return_token_ids: bool = False,
                 name: str | None = None):
        from openai import OpenAI

        if mode not in ("chat", "completions"):
            raise InputError(f"mode must be 'chat' or 'completions', got {mode!r}")
        if concurrency < 1:
            raise InputError("concurrency must be >= 1")
        if not timeout > 0:
            raise InputError(f"timeout must be > 0 seconds, got {timeout!r}")
        if max_retries < 0:
            raise InputError(f"max_retries must be >= 0, got {max_retries!r}")
        self.model, self.base_url, self.mode = model, base_url, mode
        self.name = name or f"openai:{model}@{base_url}"
        self.concurrency, self.top_logprobs, self.missing_margin = concurrency, top_logprobs, missing_margin
        self.echo = echo
        self.return_token_ids = return_token_ids
        self.timeout, self.max_retries, self.api_key_env = float(timeout), int(max_retries), api_key_env
        self._key_set = bool(os.environ.get(api_key_env))
        self._local = threading.local()  # per worker thread: the batch's stop event (see _map)
        self._client = OpenAI(
            base_url=base_url,
            api_key=os.environ.get(api_key_env) or "EMPTY",
            timeout=self.timeout,
            max_retries=0,  # retries are ours (_request): visible, bounded, and they cover malformed replies
        )

    def __repr__(self) -> str:
        return f"OpenAICompatBackend(model={self.model!r}, base_url={self.base_url!r}, mode={self.mode!r})"

    def _map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``[fn(x) for x in items]`` with ``concurrency`` in flight; the first error stops the rest and is raised."""
        items = list(items)
        if len(items) <= 1 or self.concurrency == 1:
            return [fn(x) for x in items]
        stop, lock, errors = threading.Event(), threading.Lock(), []

        def run(x: T) -> R:
            self._local.stop = stop
            try:
                return fn(x)
            except BaseException as err:
                with lock:
                    if not errors:
                        errors.append(err)
                stop.set()
                raise
            finally:
                self._local.stop = None

        pool = ThreadPoolExecutor(max_workers=min(self.concurrency, len(items)))
        try:
            futures = [pool.submit(run, x) for x in items]
            wait(futures, return_when=FIRST_EXCEPTION)
        except BaseException:  # e.g. KeyboardInterrupt while waiting: stop retrying, drop the queue
            stop.set()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True, cancel_futures=bool(errors))
        if errors:
            raise errors[0]
        return [f.result() for f in futures]

    # ---- requests: errors, retries ----------------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        key = getattr(self._client, "api_key", None)
        if isinstance(key, str) and len(key) >= 4 and key != "EMPTY":
            text = text.replace(key, "***")
        return text

    def _classify(self, err: Exception) -> _Failure:
        """What a failed attempt was and whether it is worth another one."""
        import openai

        if isinstance(err, _Malformed):
            return _Failure(None, f"malformed reply: {_one_line(err)}", True)
        if isinstance(err, openai.APITimeoutError):
            return _Failure(None, f"timeout after {self.timeout:g} s", True)
        if isinstance(err, openai.APIConnectionError):
            cause = err.__cause__ or err.__context__
            detail = _one_line(cause or err).rstrip(".")
            if "refused" in detail.lower():
                return _Failure(None, "connection refused", True, hint="is the server running at this URL?")
            if cause is not None and "connect" in type(cause).__name__.lower():
                return _Failure(None, f"cannot connect: {detail}", True, hint="is the server running at this URL?")
            return _Failure(None, f"connection error: {detail}", True)
        if isinstance(err, openai.APIStatusError):
            status = err.status_code
            response = getattr(err, "response", None)
            head = f"HTTP {status} {_reason(status, getattr(response, 'reason_phrase', ''))}".rstrip()
            said = _server_message(err.body, "")
            what = f"{head}: {said}" if said else head
            if status in KEY_STATUSES:
                unset = "" if self._key_set else "; it is not set"
                return _Failure(status, f"{head}: check {self.api_key_env} (the key is read from that variable"
                                        f"{unset})" + (f"; the server said: {said}" if said else ""), False)
            if status in RETRY_STATUSES or status >= 500:
                headers = getattr(response, "headers", None)
                wait_s = _retry_after_s(headers) if status in (429, 503) else None
                return _Failure(status, what, True, wait_s)
            hint = "check the model name and the base URL (it usually ends in /v1)" if status == 404 else ""
            return _Failure(status, what, False, hint=hint)
        if isinstance(err, openai.APIResponseValidationError):
            return _Failure(None, f"malformed reply: {_one_line(err)}", True)
        raise err  # not a server failure: a bug, let it through

    def _request(self, endpoint: str, parse: Callable[[Any], R], **kwargs: Any) -> R:
        """POST ``kwargs`` to ``endpoint`` (``chat/completions`` or ``completions``) and ``parse`` the reply, under
        the retry policy of the module docstring; :class:`ServerError` when it gives up."""
        import openai

        create = self._client.chat.completions.create if endpoint == "chat/completions" \
            else self._client.completions.create
        url = f"{_display_url(self.base_url)}/{endpoint}"
        retry = 0
        while True:
            try:
                try:
                    resp = create(**kwargs)
                except ValueError as err:  # the body did not parse as JSON
                    raise _Malformed(f"invalid JSON ({_one_line(err, 80)})") from err
                try:
                    return parse(resp)
                except _Malformed:
                    raise
                except (AttributeError, TypeError, KeyError, IndexError, ValueError) as err:
                    raise _Malformed(f"unexpected reply structure ({type(err).__name__}: {_one_line(err, 80)})") \
                        from err
            except (_Malformed, openai.OpenAIError) as err:
                failure, last = self._classify(err), err
            stop = getattr(self._local, "stop", None)
            stopped = stop is not None and stop.is_set()
            what = self._redact(failure.what)
            if failure.retry and retry < self.max_retries and not stopped:
                delay = failure.wait_s if failure.wait_s is not None else backoff_s(retry + 1)
                self._warn(f"warning: {url}: {what}; retry {retry + 1}/{self.max_retries} in {delay:.3g} s")
                if stop is not None:
                    stopped = stop.wait(delay)  # True: another request of the batch failed meanwhile
                else:
                    time.sleep(delay)
                if not stopped:
                    retry += 1
                    continue
            notes = [f"{retry + 1} attempts" if retry else "",
                     "not retried: another request failed" if failure.retry and stopped else "", failure.hint]
            note = "; ".join(n for n in notes if n)
            message = f"{url}: {what}" + (f" ({note})" if note else "")
            # chained to the client's error only when it carries no server text (a status error's body could)
            raise ServerError(url, failure.status, message) from (last if failure.status is None else None)

    @staticmethod
    def _warn(line: str) -> None:
        """One line on stderr, above any tqdm bar (rich's live display redirects stderr itself)."""
        from tqdm import tqdm

        tqdm.write(line, file=sys.stderr)

    # ---- generation -----------------------------------------------------------------------------------------

    def generate(self, chats: Sequence[Chat], sampling: Sampling = Sampling()) -> list[Generation]:
        """``sampling.n`` completions per chat, chat-major (as :meth:`promed.llm.hf.HFBackend.generate`).

        Each sample is its own request (sample k of chat i with seed ``seeds[i] + k``, or ``seed + k``, when
        given), since not every compatible server honours ``n``.
        """
        if sampling.beams > 1:
            raise ValueError(f"{self.name}: the OpenAI API has no beam search (Sampling.beams must be 1)")
        if sampling.seeds and len(sampling.seeds) != len(chats):
            raise ValueError(f"got {len(sampling.seeds)} seeds for {len(chats)} chats")
        jobs = [(i, chat, k) for i, chat in enumerate(chats) for k in range(sampling.n)]
        return self._map(lambda job: self._one(job[1], sampling, job[2], job[0]), jobs)

    def _one(self, chat: Chat, s: Sampling, k: int, i: int = 0) -> Generation:
        common: dict[str, Any] = dict(model=self.model, max_tokens=s.max_new_tokens, temperature=s.temperature,
                                      top_p=s.top_p)
        if s.stop:
            common["stop"] = list(s.stop[:4])
        base = s.seeds[i] if s.seeds else s.seed
        if base is not None:
            common["seed"] = (int(base) + k) % (2**31 - 1)  # servers take 32-bit seeds
        if self.return_token_ids:
            common["extra_body"] = {"return_token_ids": True}
        if self.mode == "chat":
            if self.return_token_ids:
                common["logprobs"] = True
            text, lps, ids, finish = self._request("chat/completions", _parse_chat, messages=list(chat), **common)
        else:
            if self.return_token_ids:
                common["logprobs"] = 0
            text, lps, ids, finish = self._request("completions", _parse_completion, prompt=render_plain(chat),
                                                   **common)
        reason = {"stop": "stop", "length": "length"}.get(finish or "", finish or "")
        if ids and lps is not None and len(ids) == len(lps):
            return Generation(text, tuple(int(t) for t in ids), tuple(float(x) for x in lps), reason)
        cut = min((j for j in (text.find(x) for x in s.stop if x) if j >= 0), default=len(text))
        return Generation(text[:cut], finish_reason=reason)

    # ---- scoring --------------------------------------------------------------------------------------------

    def score_options(self, prompts: Sequence[str], options: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """Per prompt, P(option | prompt) normalised over its options (``options``: one list, or one per prompt)."""
        lls = self.option_log_likelihoods(prompts, options)
        out = []
        for ll in lls:
            z = np.exp(ll - ll.max())
            out.append(z / z.sum())
        return out

    def option_log_likelihoods(self, prompts: Sequence[str], options: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """``log P(option | prompt)`` per prompt, by the procedure in the module docstring."""
        if len(options) == 1 and len(prompts) != 1:
            options = [options[0]] * len(prompts)
        if len(options) != len(prompts):
            raise ValueError(f"got {len(options)} option lists for {len(prompts)} prompts (expected 1 or one each)")
        return self._map(lambda job: self._score_prompt(*job), list(zip(prompts, options)))

    def _top(self, prompt: str) -> dict[str, float]:
        return self._request("completions", _parse_top, model=self.model, prompt=prompt, max_tokens=1,
                             temperature=0.0, logprobs=self.top_logprobs)

    def _echo_ll(self, prompt: str, option: str) -> float | None:
        """Exact ``log P(option | prompt)`` via ``echo=True``; ``None`` if the server gives no prompt logprobs."""
        lp = self._request("completions", lambda resp: _first_choice(resp).logprobs, model=self.model,
                           prompt=prompt + option, max_tokens=1, temperature=0.0, logprobs=1, echo=True)
        if lp is None or not lp.token_logprobs or not lp.text_offset:
            return None
        n_prompt_chars = len(prompt)
        total, found = 0.0, False
        ends = list(lp.text_offset[1:]) + [math.inf]
        for off, end, value in zip(lp.text_offset, ends, lp.token_logprobs):
            if off >= n_prompt_chars + len(option):
                break  # the generated token after the echo
            if end > n_prompt_chars and value is not None:  # a token of the option (or straddling its start)
                total += value
                found = True
        return total if found else None

    def _sequential_ll(self, prompt: str, option: str, first: dict[str, float]) -> float | None:
        total, rest, context, top = 0.0, option, prompt, first
        while rest:
            matches = [t for t in top if t and rest.startswith(t)]
            if not matches:
                return None
            tok = max(matches, key=len)
            total += top[tok]
            rest, context = rest[len(tok) :], context + tok
            if rest:
                top = self._top(context)
        return total

    def _score_prompt(self, prompt: str, opts: Sequence[str]) -> np.ndarray:
        first = self._top(prompt)
        floor = min(first.values()) - self.missing_margin
        out = np.empty(len(opts))
        for j, opt in enumerate(opts):
            value: float | None = first.get(opt)
            if value is None and self.echo:
                value = self._echo_ll(prompt, opt)
            if value is None and any(t and opt.startswith(t) and t != opt for t in first):
                value = self._sequential_ll(prompt, opt, first)
            out[j] = floor if value is None else value
        return out


# ---- reply parsers (run inside the retry loop: what they cannot read is a malformed reply) ----------------------
