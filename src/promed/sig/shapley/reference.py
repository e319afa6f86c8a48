"""The ProMed reference estimator, reproduced to measure it against ground truth (``get_estimator("reference")``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from promed.sig.shapley.base import CountingSetFunction, SetFn, ShapleyResult, check_players, trivial_result

__all__ = ["ReferenceShapley"]


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
        check_players(n_players)
        n = n_players
        g = CountingSetFunction(f, n)
        if (res := trivial_result(g, n)) is not None:
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
