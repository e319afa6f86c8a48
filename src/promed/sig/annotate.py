"""Give every question of a transcript its SIG, from the case's cached Shapley values."""

from __future__ import annotations

from pathlib import Path

from promed.sig.cache import EstimatorChoice, ShapleyCache
from promed.sig.reward import SigConfig, annotate, importance_weights
from promed.sig.value import ScorerValue
from promed.types import Case, Scorer, Transcript


class SigAnnotator:
    """``annotator(case, transcript) -> transcript`` with each turn's ``new`` facts, ``sig`` and ``weights``.

    Holds a :class:`ShapleyCache`; :meth:`close` (or ``with``) closes the cache's file.
    """

    def __init__(self, cache: ShapleyCache, cfg: SigConfig = SigConfig()):
        self.cache, self.cfg = cache, cfg

    @classmethod
    def for_eval(cls, scorer: Scorer, estimator: str, path: Path | None, seed: int,
                 cfg: SigConfig = SigConfig()) -> "SigAnnotator":
        return cls(ShapleyCache(ScorerValue(scorer), EstimatorChoice(estimator), path, seed), cfg)

    def weights(self, case: Case):
        return importance_weights(self.cache.phi(case), self.cfg.weighting, self.cfg.temperature)

    def __call__(self, case: Case, transcript: Transcript) -> Transcript:
        return annotate(transcript, self.weights(case), case.n_facts, self.cfg)

    def close(self) -> None:
        self.cache.close()

    def __enter__(self) -> "SigAnnotator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
