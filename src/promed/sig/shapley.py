"""Shapley value estimators for set functions over a few dozen players at most (the hidden facts of a case).

One interface: an estimator takes ``f`` - a batched set function mapping a boolean mask matrix ``(m, n)`` to
values ``(m,)`` (see :func:`promed.sig.value.set_function`) - the number of players, an evaluation budget and a
``np.random.Generator``, and returns a :class:`ShapleyResult`. Costs are counted in the one unit that matters when
v is an LLM call: the number of *distinct* coalitions evaluated (``n_evals``, v(empty) and v(all) included).
Every estimator memoises what it asked for, so a coalition seen twice is paid once.

Estimators (``get_estimator(name)``):

* ``exact`` - :class:`ExactShapley`: all 2^n coalitions, vectorised Shapley weights.
* ``reference`` - :class:`ReferenceShapley`: the ProMed reference algorithm, reproduced for comparison.
* ``permutation`` - :class:`PermutationShapley`: antithetic permutation sampling under a budget.
* ``kernel`` - :class:`promed.sig.kernel.KernelShapley`: KernelSHAP regression with paired, stratified coalition
  sampling, exact enumeration of the heaviest coalition sizes and a fitted surrogate as control variate; the
  default for SIG.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from promed.sig.value import keys_to_masks, masks_to_keys

__all__ = [
    "SetFn",
    "ShapleyResult",
    "ShapleyEstimator",
    "CountingSetFunction",
    "ExactShapley",
    "ReferenceShapley",
    "PermutationShapley",
    "get_estimator",
    "default_budget",
]

SetFn = Callable[[np.ndarray], np.ndarray]
"""A batched set function: boolean masks ``(m, n)`` -> values ``(m,)``."""

DEFAULT_EVALS_PER_PLAYER = 10


def default_budget(n_players: int) -> int:
    """The budget used when an estimator is given ``budget=None``: 10 evaluations per player, at most 2^n."""
    return int(min(DEFAULT_EVALS_PER_PLAYER * max(n_players, 1), 2**n_players)) if n_players < 62 else 10 * n_players


@dataclass(frozen=True, eq=False)
class ShapleyResult:
    """Estimated Shapley values of one game.

    Attributes:
        values: phi, shape ``(n,)``.
        base: v(empty).
        full: v(all players).
        stderr: per-player standard error of ``values`` (zeros when exact; NaN when the estimator cannot say).
        n_evals: distinct coalitions evaluated, v(empty) and v(all) included.
        n_queries: coalition evaluations requested, repeats included (what an un-memoised caller would pay; equal
            to ``n_evals`` for estimators that never ask twice).
    """

    values: np.ndarray
    base: float
    full: float
    stderr: np.ndarray
    n_evals: int
    n_queries: int = -1

    def __post_init__(self) -> None:
        if self.n_queries < 0:
            object.__setattr__(self, "n_queries", self.n_evals)

    @property
    def n_players(self) -> int:
        return int(self.values.shape[0])

    @property
    def efficiency_gap(self) -> float:
        """sum(phi) - (v(all) - v(empty)); zero for efficient estimators."""
        return float(self.values.sum() - (self.full - self.base))


class ShapleyEstimator(Protocol):
    """Estimates Shapley values of ``f`` over ``n_players`` players with at most ``budget`` distinct evaluations."""

    name: str

    def estimate(self, f: SetFn, n_players: int, budget: int | None, rng: np.random.Generator) -> ShapleyResult: ...


class CountingSetFunction:
    """Wraps a set function: memoises by coalition and counts distinct coalitions and requests.

    Used inside every estimator so that ``n_evals`` is the estimator's own cost, whatever ``f`` does.
    """

    def __init__(self, f: SetFn, n_players: int):
        self.f = f
        self.n = n_players
        self.memo: dict[int, float] = {}
        self.n_queries = 0

    @property
    def n_evals(self) -> int:
        return len(self.memo)

    def is_known(self, keys: np.ndarray) -> np.ndarray:
        return np.array([int(k) in self.memo for k in np.asarray(keys).ravel()], dtype=bool)

    def by_keys(self, keys: np.ndarray, chunk: int = 1 << 14) -> np.ndarray:
        """Values for integer coalition keys; evaluates the unknown ones in batches of ``chunk`` masks."""
        keys = np.asarray(keys, dtype=np.int64).ravel()
        self.n_queries += len(keys)
        todo = np.array([k for k in dict.fromkeys(keys.tolist()) if k not in self.memo], dtype=np.int64)
        for start in range(0, len(todo), chunk):
            part = todo[start : start + chunk]
            vals = np.asarray(self.f(keys_to_masks(part, self.n)), dtype=float).reshape(-1)
            if vals.shape[0] != part.shape[0]:
                raise ValueError(f"set function returned {vals.shape[0]} values for {part.shape[0]} masks")
            self.memo.update(zip(part.tolist(), vals.tolist()))
        return np.array([self.memo[k] for k in keys.tolist()], dtype=float)

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        return self.by_keys(masks_to_keys(np.atleast_2d(masks)))


def _trivial(g: CountingSetFunction, n: int) -> ShapleyResult | None:
    """Results for 0 or 1 players (no estimation needed); None otherwise."""
    if n == 0:
        base = float(g.by_keys(np.array([0]))[0])
        return ShapleyResult(np.zeros(0), base, base, np.zeros(0), g.n_evals, g.n_queries)
    if n == 1:
        base, full = g.by_keys(np.array([0, 1]))
        return ShapleyResult(np.array([full - base]), float(base), float(full), np.zeros(1), g.n_evals, g.n_queries)
    return None


def _check_n(n_players: int) -> None:
    if n_players < 0:
        raise ValueError(f"n_players must be >= 0, got {n_players}")
    if n_players > 62:
        raise ValueError(f"at most 62 players are supported, got {n_players}")


# ---- exact ---------------------------------------------------------------------------------------------------

def _budgeted_start(f: SetFn, n: int, budget: int | None, what: str):
    """Common start of the budgeted sampling estimators.

    Returns ``(result, None)`` for a trivial game, else ``(None, (g, budget, base, full))`` with the counting set
    function, the resolved budget (default: :func:`default_budget`) and v(empty), v(all) already evaluated.
    """
    _check_n(n)
    budget = default_budget(n) if budget is None else int(budget)
    g = CountingSetFunction(f, n)
    if (res := _trivial(g, n)) is not None:
        return res, None
    if budget < n + 1:
        raise ValueError(f"{what} over {n} players needs a budget >= {n + 1}, got {budget}")
    base, full = (float(x) for x in g.by_keys(np.array([0, (1 << n) - 1])))
    return None, (g, budget, base, full)



def shapley_weights(n: int) -> np.ndarray:
    """w[s] = s! (n-1-s)! / n!: the weight of the marginal v(S+i) - v(S) for |S| = s, s = 0..n-1 (w[n] = 0)."""
    return np.array([1.0 / (n * math.comb(n - 1, s)) for s in range(n)] + [0.0])


def popcount(keys: np.ndarray) -> np.ndarray:
    """Number of set bits of each integer key."""
    keys = np.asarray(keys, dtype=np.int64)
    out = np.zeros(keys.shape, dtype=np.int64)
    for b in range(63):
        out += (keys >> b) & 1
        if not (keys >> (b + 1)).any():
            break
    return out


def exact_from_table(v: np.ndarray, n: int, chunk: int = 1 << 15) -> np.ndarray:
    """Shapley values from the full table ``v[key]`` of all 2^n coalitions (key bit i = player i).

    phi_i = sum_{S ni i} w(|S|-1) v(S) - sum_{S not ni i} w(|S|) v(S) = sum_S M_Si (a_S + b_S) - sum_S b_S with
    a_S = w(|S|-1) v(S), b_S = w(|S|) v(S) and M the membership matrix: one matrix-vector product per chunk.
    """
    v = np.asarray(v, dtype=float)
    if v.shape != (2**n,):
        raise ValueError(f"table must have 2^{n} = {2**n} entries, got {v.shape}")
    w = shapley_weights(n)  # w[s] for s = 0..n (w[n] = 0)
    w_on = np.concatenate([[0.0], w[:-1]])  # w(|S| - 1), unused for |S| = 0
    phi = np.zeros(n)
    for start in range(0, 2**n, chunk):
        keys = np.arange(start, min(start + chunk, 2**n), dtype=np.int64)
        m = keys_to_masks(keys, n)
        size = m.sum(axis=1)
        part = v[start : start + len(keys)]
        a, b = w_on[size] * part, w[size] * part
        phi += (a + b) @ m - b.sum()
    return phi


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
        _check_n(n_players)
        n = n_players
        if n > self.max_players:
            raise ValueError(f"exact Shapley over {n} players needs 2^{n} evaluations (max_players={self.max_players})")
        if budget is not None and budget < 2**n:
            raise ValueError(f"exact Shapley over {n} players needs {2**n} evaluations, budget is {budget}")
        g = CountingSetFunction(f, n)
        if (res := _trivial(g, n)) is not None:
            return res
        v = g.by_keys(np.arange(2**n, dtype=np.int64))
        phi = exact_from_table(v, n)
        return ShapleyResult(phi, float(v[0]), float(v[-1]), np.zeros(n), g.n_evals, g.n_queries)


# ---- the ProMed reference algorithm ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ReferenceShapley:
    """The ProMed reference estimator, reproduced to measure it against ground truth.

    Source: ``compute_equal_shapley_values`` in huangbaixiang100/ProMed (``src/mcts_sampling/cal_shapley.py`` and
    ``src/models/doctor_reward.py``, commit aa62c4e), called with ``max_samples=50, min_samples=3, tol=1e-2``.
    What we reproduce, step by step:

    1. v(empty) and v(all) are computed first.
    2. For t = 1..max_samples: draw a uniform random permutation; walk it from the empty coalition, adding one
       player at a time and computing v(prefix). Each visited player's estimate is a running mean over
       permutations: ``phi[i] = (t-1)/t * phi[i] + m/t`` with m the marginal v(prefix) - v(previous prefix).
    3. Early exit inside a permutation: after a player is added, if ``|v(prefix) - v(all)| < 0.01`` the walk
       stops. The players not reached are *not updated at all* in that permutation - their running mean keeps its
       old value instead of being averaged with a zero marginal (this is what the code does; it is a biased
       estimator, and efficiency holds only approximately).
    4. Convergence: from t >= min_samples on, stop when ``mean(|phi - phi_before_this_permutation|) < tol``.

    Deviations: the permutation comes from the passed ``rng`` instead of Python's global ``random.shuffle``; the
    values come from our v (the reference scores the mean token log-probability of the gold answer text, which
    corresponds to ``ScorerValue(log=True)`` with a different prompt). The walk is evaluated one coalition at a
    time, as in the reference, because where it stops depends on each value. An optional ``budget`` stops it
    before a permutation that could exceed the budget (``None`` = the reference behaviour).

    Cost accounting: ``n_evals`` counts distinct coalitions (as if the caller memoised v); ``n_queries`` counts
    the model calls the reference code itself makes (2 + one per step; it re-scores the full set at the end of
    every permutation that runs to completion, and re-scores repeated prefixes). ``stderr`` is NaN: the reference
    reports none and its estimator is not a plain mean.
    """

    max_samples: int = field(default=50, metadata={"help": "maximum number of permutations"})
    min_samples: int = field(default=3, metadata={"help": "permutations before convergence is checked"})
    tol: float = field(default=1e-2, metadata={"help": "stop when mean |phi change| over one permutation < tol"})
    exit_tol: float = field(default=1e-2, metadata={"help": "stop a walk once |v(prefix) - v(all)| < exit_tol"})
    name: str = "reference"

    def estimate(self, f: SetFn, n_players: int, budget: int | None, rng: np.random.Generator) -> ShapleyResult:
        _check_n(n_players)
        n = n_players
        g = CountingSetFunction(f, n)
        if (res := _trivial(g, n)) is not None:
            return res
        full_key = (1 << n) - 1
        v_empty, v_full = g.by_keys(np.array([0, full_key]))
        calls = 2
        phi = np.zeros(n)
        for t in range(1, self.max_samples + 1):
            if budget is not None and g.n_evals + n - 1 > budget:
                break
            perm = rng.permutation(n)
            prev_phi = phi.copy()
            key, v_prev = 0, v_empty
            for idx in perm:
                key |= 1 << int(idx)
                v_j = float(g.by_keys(np.array([key]))[0])
                calls += 1
                phi[idx] = (t - 1) / t * phi[idx] + (v_j - v_prev) / t
                v_prev = v_j
                if abs(v_j - v_full) < self.exit_tol:
                    break
            if t >= self.min_samples and float(np.mean(np.abs(phi - prev_phi))) < self.tol:
                break
        nan = np.full(n, np.nan)
        return ShapleyResult(phi, float(v_empty), float(v_full), nan, g.n_evals, calls)


# ---- antithetic permutation sampling ----------------------------------------------------------------------------


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
        res, started = _budgeted_start(f, n, budget, "permutation sampling")
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


# ---- registry ---------------------------------------------------------------------------------------------------


def get_estimator(name: str, **kw) -> ShapleyEstimator:
    """The estimator called ``name`` ("exact", "reference", "permutation", "kernel"), built with ``kw``."""
    from promed.sig.kernel import KernelShapley

    table: dict[str, type] = {
        "exact": ExactShapley,
        "reference": ReferenceShapley,
        "permutation": PermutationShapley,
        "kernel": KernelShapley,
    }
    if name not in table:
        raise ValueError(f"unknown Shapley estimator {name!r}; choose from {sorted(table)}")
    return table[name](**kw)


def __getattr__(name: str):  # ``from promed.sig.shapley import KernelShapley`` without an import cycle
    if name == "KernelShapley":
        from promed.sig.kernel import KernelShapley

        return KernelShapley
    raise AttributeError(name)
