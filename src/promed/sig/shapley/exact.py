"""Exact Shapley values by enumerating all 2^n coalitions (``get_estimator("exact")``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from promed.sig.shapley.base import (
    CountingSetFunction,
    SetFn,
    ShapleyResult,
    check_players,
    exact_from_table,
    trivial_result,
)

__all__ = ["ExactShapley"]


@dataclass(frozen=True)
class ExactShapley:
    """Exact Shapley values by evaluating all 2^n coalitions.

    Coalitions are evaluated in batches (``f`` is batched, so the Gray-code ordering that shap's Exact explainer
    uses to minimise re-evaluations of a masked model buys nothing here), then phi_i = sum_S w(|S|) (v(S+i) - v(S))
    is computed with vectorised weights. Cost: 2^n evaluations; refuses more than ``max_players`` players and any
    budget below 2^n.
    """

    max_players: int = field(default=20, metadata={"help": "largest n accepted (2^n evaluations)"})
    name: str = "exact"

    def estimate(self, f: SetFn, n_players: int, budget: int | None, rng: np.random.Generator) -> ShapleyResult:
        check_players(n_players)
        n = n_players
        if n > self.max_players:
            raise ValueError(f"exact Shapley over {n} players needs 2^{n} evaluations (max_players={self.max_players})")
        if budget is not None and budget < 2**n:
            raise ValueError(f"exact Shapley over {n} players needs {2**n} evaluations, budget is {budget}")
        g = CountingSetFunction(f, n)
        if (res := trivial_result(g, n)) is not None:
            return res
        v = g.by_keys(np.arange(2**n, dtype=np.int64))
        phi = exact_from_table(v, n)
        return ShapleyResult(phi, float(v[0]), float(v[-1]), np.zeros(n), g.n_evals, g.n_queries)
