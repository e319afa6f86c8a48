"""Antithetic permutation sampling under an evaluation budget (``get_estimator("permutation")``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from promed.sig.shapley.base import SetFn, ShapleyResult, budgeted_start

__all__ = ["PermutationShapley"]


def _walk_keys(perms: np.ndarray) -> np.ndarray:
    """Keys of the proper, non-empty prefixes of each permutation: ``(k, n)`` perms -> ``(k, n-1)`` keys."""
    bits = np.int64(1) << perms.astype(np.int64)
    return np.cumsum(bits, axis=1)[:, :-1]


def _walk_marginals(perms: np.ndarray, vals: np.ndarray, base: float, full: float) -> np.ndarray:
    """Marginal contributions along each walk: ``vals`` (k, n-1) prefix values -> phi samples (k, n)."""
    k, n = perms.shape
    path = np.concatenate([np.full((k, 1), base), vals, np.full((k, 1), full)], axis=1)
    out = np.zeros((k, n))
    np.put_along_axis(out, perms, np.diff(path, axis=1), axis=1)
    return out


@dataclass(frozen=True)
class PermutationShapley:
    """Antithetic permutation sampling (as shap's Permutation explainer) under an evaluation budget.

    Each sample is a pair of walks over one random permutation: forward (add players in order) and backward (add
    them in reverse order, i.e. remove them in order). Each walk telescopes to v(all) - v(empty), so the estimate
    is exactly efficient; the backward walk is the antithetic partner of the forward one, which cancels the
    second-order interaction noise (for games with at most pairwise interactions one pair is exact).

    A pair costs at most 2(n-1) new coalitions (v(empty) and v(all) are shared). Pairs are drawn in batches and
    evaluated in one call; coalitions that repeat earlier ones are free (memoised), so further pairs are drawn
    while the budget has room. With budget < 2n a single forward walk is used (needs budget >= n+1).
    ``stderr`` is the standard error of the mean over pairs (NaN with fewer than two pairs).
    """

    max_pairs: int = field(default=100_000, metadata={"help": "hard cap on permutation pairs"})
    name: str = "permutation"

    def estimate(self, f: SetFn, n_players: int, budget: int | None, rng: np.random.Generator) -> ShapleyResult:
        n = n_players
        res, started = budgeted_start(f, n, budget, "permutation sampling")
        if res is not None:
            return res
        g, budget, base, full = started
        if budget < 2 * n:  # one forward walk only
            perms = rng.permutation(n)[None, :]
            vals = g.by_keys(_walk_keys(perms)).reshape(1, n - 1)
            phi = _walk_marginals(perms, vals, base, full)[0]
            return ShapleyResult(phi, base, full, np.full(n, np.nan), g.n_evals, g.n_queries)
        samples: list[np.ndarray] = []
        while len(samples) < self.max_pairs:
            k = min((budget - g.n_evals) // (2 * (n - 1)), self.max_pairs - len(samples))
            if k < 1:
                break
            before = g.n_evals
            fwd = rng.permuted(np.tile(np.arange(n), (k, 1)), axis=1)
            bwd = fwd[:, ::-1]
            both = np.concatenate([fwd, bwd])
            vals = g.by_keys(_walk_keys(both)).reshape(2 * k, n - 1)
            marg = _walk_marginals(both, vals, base, full)
            samples.extend(0.5 * (marg[:k] + marg[k:]))
            if g.n_evals == before:  # every coalition already known: more pairs cost nothing but add no information
                break
        s = np.asarray(samples)
        phi = s.mean(axis=0)
        stderr = s.std(axis=0, ddof=1) / math.sqrt(len(s)) if len(s) > 1 else np.full(n, np.nan)
        return ShapleyResult(phi, base, full, stderr, g.n_evals, g.n_queries)
