"""What every Shapley estimator shares: the result type, the estimator protocol, the counting set function, the
budgeted start of the sampling estimators and exact Shapley values from a full value table.

A set function ``f`` maps a boolean mask matrix ``(m, n)`` to values ``(m,)`` (see
:func:`promed.sig.value.set_function`). Costs are counted in the one unit that matters when v is an LLM call: the
number of *distinct* coalitions evaluated (``n_evals``, v(empty) and v(all) included); :class:`CountingSetFunction`
memoises what an estimator asked for, so a coalition seen twice is paid once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from promed.sig.value import keys_to_masks, masks_to_keys

__all__ = [
    "SetFn",
    "ShapleyResult",
    "ShapleyEstimator",
    "CountingSetFunction",
    "default_budget",
    "check_players",
    "trivial_result",
    "budgeted_start",
    "shapley_weights",
    "popcount",
    "exact_from_table",
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


def trivial_result(g: CountingSetFunction, n: int) -> ShapleyResult | None:
    """Results for 0 or 1 players (no estimation needed); None otherwise."""
    if n == 0:
        base = float(g.by_keys(np.array([0]))[0])
        return ShapleyResult(np.zeros(0), base, base, np.zeros(0), g.n_evals, g.n_queries)
    if n == 1:
        base, full = g.by_keys(np.array([0, 1]))
        return ShapleyResult(np.array([full - base]), float(base), float(full), np.zeros(1), g.n_evals, g.n_queries)
    return None


def check_players(n_players: int) -> None:
    """Raise ValueError unless 0 <= n_players <= 62 (coalitions are 63-bit integer keys)."""
    if n_players < 0:
        raise ValueError(f"n_players must be >= 0, got {n_players}")
    if n_players > 62:
        raise ValueError(f"at most 62 players are supported, got {n_players}")


def budgeted_start(f: SetFn, n: int, budget: int | None, what: str):
    """Common start of the budgeted sampling estimators.

    Returns ``(result, None)`` for a trivial game, else ``(None, (g, budget, base, full))`` with the counting set
    function, the resolved budget (default: :func:`default_budget`) and v(empty), v(all) already evaluated.
    """
    check_players(n)
    budget = default_budget(n) if budget is None else int(budget)
    g = CountingSetFunction(f, n)
    if (res := trivial_result(g, n)) is not None:
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
