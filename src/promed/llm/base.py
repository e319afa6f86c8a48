"""The LLM protocol every backend implements, and the model-spec parser.

A backend does two things, both batched:

* ``generate(chats, sampling)`` - one completion per chat (Hugging Face chat format); ``sampling.n`` per chat,
  and the ``n`` best beams when ``sampling.beams > 1`` on backends with ``supports_beams``.
* ``score_options(prompts, options)`` - for each raw-text prompt, the probability of each candidate continuation
  (e.g. ``[" A", " B", " C", " D"]``), normalised over the candidates. This is how v(S) and the scorer-based
  doctors read a model's answer: the answer is scored *after* the prompt, as the SIG definition requires.

Model specs (the command-line contract): ``gemma-270m``, ``hf:<id or path>``, ``gguf:<file>``,
``openai:<model>@<base-url>``, ``tiny``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from promed.errors import InputError
from promed.types import Chat, Sampling


class LLM(Protocol):
    name: str
    supports_beams: bool  # generate() honours Sampling.beams > 1 (beam search); else it raises ValueError

    def generate(self, chats: Sequence[Chat], sampling: Sampling) -> list[str]: ...

    def score_options(self, prompts: Sequence[str], options: Sequence[Sequence[str]]) -> list[np.ndarray]: ...


class SpecError(InputError):
    """A model spec that cannot be parsed or loaded (reported by the CLI with exit code 2)."""


class ServerError(RuntimeError):
    """A failure talking to a model server, after the retries its policy allows (the CLI: exit code 3).

    ``url``: the server (endpoint) URL; ``status``: the HTTP status, or ``None`` for a timeout, a refused
    connection or a malformed reply; ``message`` (also ``str(err)``): one line naming the URL and what went
    wrong, e.g. ``http://127.0.0.1:8000/v1/chat/completions: HTTP 401 Unauthorized: check OPENAI_API_KEY ...``.
    Backends never put an API key in it.
    """

    def __init__(self, url: str, status: int | None, message: str):
        super().__init__(message)
        self.url, self.status, self.message = url, status, message

    def __reduce__(self):  # picklable (the default would call ServerError(message) from self.args)
        return (type(self), (self.url, self.status, self.message))

    def __repr__(self) -> str:
        return f"ServerError(url={self.url!r}, status={self.status!r}, message={self.message!r})"


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec. ``kind`` is one of ``hf``, ``gguf``, ``openai``, ``tiny``."""

    kind: str
    target: str = ""
    base_url: str = ""

    @property
    def id(self) -> str:
        if self.kind == "openai":
            return f"openai:{self.target}@{self.base_url}"
        return f"{self.kind}:{self.target}" if self.target else self.kind


def parse_spec(spec: str) -> ModelSpec:
    """Parse a model spec string; raise :class:`SpecError` with the accepted forms on anything else."""
    spec = spec.strip()
    if spec == "gemma-270m":
        return ModelSpec("gguf", "gemma-270m")
    if spec == "tiny" or spec.startswith("tiny:"):
        return ModelSpec("tiny", spec.partition(":")[2])
    kind, sep, rest = spec.partition(":")
    if sep and kind in ("hf", "gguf") and rest:
        return ModelSpec(kind, rest)
    if sep and kind == "openai" and "@" in rest:
        model, _, url = rest.partition("@")
        if model and url:
            return ModelSpec("openai", model, url)
    raise SpecError(
        f"bad model spec {spec!r}: expected gemma-270m, hf:<id or path>, gguf:<file>, "
        "openai:<model>@<base-url> or tiny"
    )


class ContextLengthError(InputError):
    """A prompt longer than the model's context (an input error). ``index`` is the prompt's position in the batch,
    so that callers can name the case it came from."""

    def __init__(self, message: str, index: int = -1, length: int = 0, limit: int = 0):
        super().__init__(message)
        self.index, self.length, self.limit = index, length, limit


def check_spec(option: str, spec: str | None, bayes: bool = False) -> None:
    """Raise ValueError naming ``option`` unless ``spec`` is None, a parsable model spec or, for a scorer option
    (``bayes``), ``bayes`` or ``doctor:<model spec>`` (:class:`promed.doctor.scorer.DoctorScorer`)."""
    if spec is None or (bayes and spec == "bayes"):
        return
    if bayes and spec.startswith("doctor:"):
        spec = spec[len("doctor:"):]
    try:
        parse_spec(spec)
    except SpecError as err:
        raise InputError(f"{option}: {err}{' (or bayes, or doctor:<model spec>)' if bayes else ''}") from None
