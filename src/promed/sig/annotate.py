"""Give every question of a transcript its SIG, from the case's cached Shapley values."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from promed.sig.cache import EstimatorChoice, ShapleyCache
from promed.sig.reward import SigConfig, annotate, importance_weights, new_facts
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
        """Lazy: a consultation whose replies revealed no fact earns SIG 0 on every turn whatever the weights, so
        the case's Shapley values are computed (and cached) only when some question revealed something."""
        if not any(new_facts([t.revealed for t in transcript.turns])):
            return annotate(transcript, np.zeros(case.n_facts), case.n_facts, self.cfg)
        return annotate(transcript, self.weights(case), case.n_facts, self.cfg)

    def close(self) -> None:
        self.cache.close()

    def __enter__(self) -> "SigAnnotator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
