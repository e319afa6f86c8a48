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

Retries: the ``openai`` client retries connection errors, timeouts, 408/409/429 and 5xx responses with
exponential back-off (``max_retries``), each request bounded by ``timeout`` seconds. The API key is read from the
environment variable ``api_key_env`` (``"EMPTY"`` when unset, as local servers expect); it is never logged nor put
in ``repr``.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence, TypeVar

import numpy as np

from promed.llm.hf import render_plain
from promed.types import Chat, Generation, Sampling

T = TypeVar("T")
R = TypeVar("R")


class OpenAICompatBackend:
    """An :class:`promed.llm.base.LLM` over an OpenAI-compatible server.

    Args:
        model: the server's model name.
        base_url: e.g. ``http://127.0.0.1:8000/v1``.
        api_key_env: environment variable holding the API key.
        timeout: seconds per request.
        max_retries: retries per request (exponential back-off, by the ``openai`` client).
        concurrency: requests in flight at once.
        mode: ``"chat"`` (chat.completions) or ``"completions"`` (raw prompt) for :meth:`generate`.
        top_logprobs: how many top first-token log-probabilities to request when scoring (OpenAI caps it at 5
            for completions, vLLM at 20 by default).
        missing_margin: nats below the smallest seen log-probability for a candidate that cannot be scored.
        echo: score candidates absent from the top list exactly with ``echo=True`` (use with vLLM).
        return_token_ids: ask the server for the sampled token ids and log-probabilities (vLLM).
        name: the backend's name (default ``openai:<model>@<base_url>``).

    No beam search (the OpenAI API has none): ``Sampling.beams > 1`` raises ``ValueError``.
    """

    supports_beams = False

    def __init__(self, model: str, base_url: str, *, api_key_env: str = "OPENAI_API_KEY", timeout: float = 60.0,
                 max_retries: int = 3, concurrency: int = 8, mode: str = "chat", top_logprobs: int = 20,
                 missing_margin: float = 1.0, echo: bool = False, return_token_ids: bool = False,
                 name: str | None = None):
        from openai import OpenAI

        if mode not in ("chat", "completions"):
            raise ValueError(f"mode must be 'chat' or 'completions', got {mode!r}")
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self.model, self.base_url, self.mode = model, base_url, mode
        self.name = name or f"openai:{model}@{base_url}"
        self.concurrency, self.top_logprobs, self.missing_margin = concurrency, top_logprobs, missing_margin
        self.echo = echo
        self.return_token_ids = return_token_ids
        self._client = OpenAI(
            base_url=base_url,
            api_key=os.environ.get(api_key_env) or "EMPTY",
            timeout=timeout,
            max_retries=max_retries,
        )

    def __repr__(self) -> str:
        return f"OpenAICompatBackend(model={self.model!r}, base_url={self.base_url!r}, mode={self.mode!r})"

    def _map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        if len(items) <= 1 or self.concurrency == 1:
            return [fn(x) for x in items]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(items))) as pool:
            return list(pool.map(fn, items))

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
        common = dict(model=self.model, max_tokens=s.max_new_tokens, temperature=s.temperature, top_p=s.top_p)
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
            resp = self._client.chat.completions.create(messages=list(chat), **common)
            choice = resp.choices[0]
            text = choice.message.content or ""
            lps = [t.logprob for t in (choice.logprobs.content or [])] if getattr(choice, "logprobs", None) else None
        else:
            if self.return_token_ids:
                common["logprobs"] = 0
            resp = self._client.completions.create(prompt=render_plain(chat), **common)
            choice = resp.choices[0]
            text = choice.text or ""
            lp = getattr(choice, "logprobs", None)
            lps = list(lp.token_logprobs) if lp is not None and lp.token_logprobs else None
        ids = getattr(choice, "token_ids", None)
        reason = {"stop": "stop", "length": "length"}.get(choice.finish_reason or "", choice.finish_reason or "")
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
        resp = self._client.completions.create(
            model=self.model, prompt=prompt, max_tokens=1, temperature=0.0, logprobs=self.top_logprobs
        )
        lp = resp.choices[0].logprobs
        if lp is None or not lp.top_logprobs:
            raise RuntimeError(f"server {self.base_url} returned no logprobs for a completions request")
        return dict(lp.top_logprobs[0])

    def _echo_ll(self, prompt: str, option: str) -> float | None:
        """Exact ``log P(option | prompt)`` via ``echo=True``; ``None`` if the server gives no prompt logprobs."""
        resp = self._client.completions.create(
            model=self.model, prompt=prompt + option, max_tokens=1, temperature=0.0, logprobs=1, echo=True
        )
        lp = resp.choices[0].logprobs
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
