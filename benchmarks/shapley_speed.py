"""Exact Shapley values under the SynthClinic Bayes scorer: time per case, the mask fast path against the memo path.

Every Stage 1 search, evaluation with SIG and GRPO run computes exact Shapley values of its SynthClinic cases
(2^n coalitions, n = 8-16 facts) under ``BayesScorer``. ``ScorerValue.v_masks`` hands the estimator's coalition
masks straight to the scorer's ``subset_probs`` (one matrix product); ``ScorerValue.v`` builds one frozenset per
coalition for its memo first. This script times both on the same train-split cases (seed 0), checks that they give
the same values, and prints milliseconds per case and the share of cases whose values differ by more than 1e-12.

    python benchmarks/shapley_speed.py [--cases 300] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


class MemoOnly:
    """The value function without its fast path: what every estimator used before ``v_masks``."""

    def __init__(self, value):
        self.value, self.id = value, value.id

    def v(self, case, subsets):
        return self.value.v(case, subsets)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=300, help="train-split SynthClinic cases (seed 0)")
    ap.add_argument("--repeats", type=int, default=3, help="timed passes per path (the best is reported)")
    args = ap.parse_args(argv)

    from promed.data.synthclinic import BayesScorer, generate_cases
    from promed.sig.shapley import ExactShapley
    from promed.sig.value import ScorerValue, set_function

    cases = generate_cases("train", args.cases, seed=0)
    exact = ExactShapley()

    def run(make_value):
        best, values = float("inf"), []
        for _ in range(args.repeats):
            value = make_value()  # fresh memo each pass: every case is new to it, as in a run
            t0 = time.perf_counter()
            values = [exact.estimate(set_function(value, c), c.n_facts, None, np.random.default_rng(0)).values
                      for c in cases]
            best = min(best, time.perf_counter() - t0)
        return best, values

    fast_s, fast = run(lambda: ScorerValue(BayesScorer(), max_cases=2))
    memo_s, memo = run(lambda: MemoOnly(ScorerValue(BayesScorer(), max_cases=2)))
    differ = sum(not np.allclose(a, b, rtol=0, atol=1e-12) for a, b in zip(fast, memo))
    n = np.array([c.n_facts for c in cases])
    print(f"{len(cases)} cases, facts mean {n.mean():.1f} (min {n.min()}, max {n.max()}), 2^n coalitions each")
    print(f"mask fast path (v_masks): {1000 * fast_s / len(cases):8.2f} ms per case")
    print(f"memo path (v, frozensets): {1000 * memo_s / len(cases):8.2f} ms per case   ({memo_s / fast_s:.1f}x)")
    print(f"cases whose values differ by more than 1e-12: {differ}")


if __name__ == "__main__":
    main()
