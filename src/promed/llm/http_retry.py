"""The OpenAI-compatible backend's retry policy and reply parsing: pure helpers, no client and no state.

Split from :mod:`promed.llm.openai_compat` to keep that module to the backend itself. The policy (documented in the
backend's docstring): retry connection errors, timeouts, 408/409/429/5xx and malformed replies with exponential
back-off (``backoff_s``), honour ``Retry-After`` up to a cap, fail at once on 401/403 and other 4xx; one request
is bounded by :func:`max_request_seconds`.
"""

from __future__ import annotations

import email.utils
import http
import math
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit, urlunsplit

BACKOFF_BASE_S = 0.5  # the first retry waits this long, each next one twice as long ...
BACKOFF_CAP_S = 8.0  # ... up to this
RETRY_AFTER_CAP_S = 30.0  # a server's Retry-After is honoured up to this many seconds
RETRY_STATUSES = frozenset({408, 409, 429})  # and every 5xx
KEY_STATUSES = frozenset({401, 403})
MAX_DETAIL_CHARS = 200  # the server's error message, truncated to this in our messages


def backoff_s(retry: int) -> float:
    """Seconds to wait before retry number ``retry`` (1-based) when the server gave no Retry-After."""
    return min(BACKOFF_BASE_S * 2 ** (retry - 1), BACKOFF_CAP_S)


def max_request_seconds(timeout: float, retries: int, retry_after: bool = False) -> float:
    """Upper bound on one request's time: ``timeout * (retries + 1)`` plus the back-offs (or, with ``retry_after``,
    the longest Retry-After honoured, 30 s, before every retry)."""
    waits = RETRY_AFTER_CAP_S * retries if retry_after else sum(backoff_s(k) for k in range(1, retries + 1))
    return timeout * (retries + 1) + waits


class _Malformed(Exception):
    """A reply this backend cannot read (retried like a transient failure)."""


class _Failure:
    """One failed attempt: what to say about it, whether to retry, how long the server asked us to wait."""

    def __init__(self, status: int | None, what: str, retry: bool, wait_s: float | None = None, hint: str = ""):
        self.status, self.what, self.retry, self.wait_s, self.hint = status, what, retry, wait_s, hint


def _one_line(text: Any, limit: int = MAX_DETAIL_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _server_message(body: Any, fallback: str) -> str:
    """The human part of an error body: ``{"error": {"message": ...}}``, ``{"message": ...}``, ``{"detail": ...}``."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            for key in ("message", "detail", "error"):
                if inner.get(key):
                    return _one_line(inner[key])
        elif inner:
            return _one_line(inner)
        for key in ("message", "detail"):
            if body.get(key):
                return _one_line(body[key])
    if isinstance(body, str) and body.strip():
        return _one_line(body)
    return _one_line(fallback) if fallback else ""


def _retry_after_s(headers: Any) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date), capped; ``None`` if absent."""
    if headers is None:
        return None
    value: float | None = None
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            value = float(ms) / 1000
    except (TypeError, ValueError):
        value = None
    raw = headers.get("retry-after") if value is None else None
    if raw is not None:
        try:
            value = float(raw)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(raw)
                value = (when - datetime.now(timezone.utc)).total_seconds()
            except (TypeError, ValueError):
                value = None
    if value is None or math.isnan(value):
        return None
    return min(max(value, 0.0), RETRY_AFTER_CAP_S)


def _reason(status: int, fallback: str = "") -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return fallback


def _first_choice(resp: Any) -> Any:
    """``resp.choices[0]``, or :class:`_Malformed` saying what the reply lacks."""
    if isinstance(resp, (str, bytes)):
        raise _Malformed(f"not JSON: {_one_line(resp, 80)!r}")
    choices = getattr(resp, "choices", None)
    if not choices:
        raise _Malformed("no 'choices' in the reply")
    return choices[0]


def _display_url(base_url: str) -> str:
    """``base_url`` without user:password (the URL printed in messages)."""
    parts = urlsplit(base_url)
    if "@" not in parts.netloc:
        return base_url.rstrip("/")
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2])).rstrip("/")


def _parse_chat(resp: Any) -> tuple[str, list[float] | None, Any, str | None]:
    choice = _first_choice(resp)
    message = getattr(choice, "message", None)
    if message is None:
        raise _Malformed("no 'message' in the chat reply's choice")
    text = message.content or ""
    lp = getattr(choice, "logprobs", None)
    lps = [t.logprob for t in (lp.content or [])] if lp else None
    return text, lps, getattr(choice, "token_ids", None), choice.finish_reason


def _parse_completion(resp: Any) -> tuple[str, list[float] | None, Any, str | None]:
    choice = _first_choice(resp)
    text = choice.text or ""
    lp = getattr(choice, "logprobs", None)
    lps = list(lp.token_logprobs) if lp is not None and lp.token_logprobs else None
    return text, lps, getattr(choice, "token_ids", None), choice.finish_reason


def _parse_top(resp: Any) -> dict[str, float]:
    lp = _first_choice(resp).logprobs
    if lp is None or not lp.top_logprobs or not lp.top_logprobs[0]:
        raise _Malformed("no logprobs in a completions reply (does the server support logprobs?)")
    return {str(t): float(v) for t, v in dict(lp.top_logprobs[0]).items()}
