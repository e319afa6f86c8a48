"""The pretrained SynthClinic doctor as the SIG scorer: its Shapley values against the exact ones.

v(S) = P(gold | initial + S) under :class:`promed.doctor.scorer.DoctorScorer` on a ``promed pretrain`` checkpoint
(``--scorer doctor:hf:<ckpt>``: the doctor's consultation prompt with the facts S known, each option's answer turn
``ANSWER: <option text>`` scored after it), through the production path (``ScorerValue`` + ``set_function``). For
SynthClinic test cases (seed 0) with at most ``--max-facts`` facts, every coalition is scored, so both sides are
exact: the doctor's Shapley values by enumeration of its v, the ground truth by enumeration of the exact posterior
(``BayesScorer``). Printed per run:

* the mean over cases of the per-case Pearson correlation between the doctor's and the exact Shapley values
  (cases whose values are constant on either side are skipped and counted);
* the mean absolute difference of v(all) and of v(empty) from the exact posterior's;
* the kernel estimator on the doctor's v at 10n distinct evaluations: error = mean_i |phi_hat_i - phi_i| /
  |v(all) - v(empty)| against the doctor's own exact values (the estimator's error on an LLM scorer, which the
  exact posterior cannot show), cases with |v(all) - v(empty)| < 0.05 skipped;
* wall time and the number of prompts scored.

    python benchmarks/doctor_scorer.py runs/pretrain [--cases 40] [--max-facts 10] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ckpt", help="a promed pretrain output directory (or any checkpoint of the doctor)")
    ap.add_argument("--cases", type=int, default=40, help="test cases with at most --max-facts facts")
    ap.add_argument("--max-facts", type=int, default=10, help="largest case (2^n coalitions are scored)")
    ap.add_argument("--budget-per-fact", type=int, default=10, help="kernel estimator budget, evaluations per fact")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from promed.data.synthclinic import BayesScorer, generate_cases
    from promed.runtime import make_scorer
    from promed.sig.shapley import ExactShapley, get_estimator
    from promed.sig.value import ScorerValue, set_function

    pool = generate_cases("test", 500, seed=0)
    cases = [c for c in pool if c.n_facts <= args.max_facts][:args.cases]
    doctor = ScorerValue(make_scorer(f"doctor:hf:{args.ckpt}"), max_cases=2)
    bayes = ScorerValue(BayesScorer(), max_cases=2)
    exact, kernel = ExactShapley(), get_estimator("kernel")
    corr, skipped, d_full, d_empty, k_err, k_skip = [], 0, [], [], [], 0
    t0 = time.perf_counter()
    for i, case in enumerate(cases):
        n = case.n_facts
        truth = exact.estimate(set_function(bayes, case), n, None, np.random.default_rng(0))
        mine = exact.estimate(set_function(doctor, case), n, None, np.random.default_rng(0))
        d_full.append(abs(mine.full - truth.full))
        d_empty.append(abs(mine.base - truth.base))
        a, b = np.asarray(mine.values), np.asarray(truth.values)
        if a.std() < 1e-12 or b.std() < 1e-12:
            skipped += 1
        else:
            corr.append(float(np.corrcoef(a, b)[0, 1]))
        delta = abs(mine.full - mine.base)
        if delta < 0.05:
            k_skip += 1
        else:
            est = kernel.estimate(set_function(doctor, case), n, args.budget_per_fact * n,
                                  np.random.default_rng([1, i]))
            k_err.append(float(np.mean(np.abs(np.asarray(est.values) - a)) / delta))
        print(f"case {i + 1}/{len(cases)} ({case.id}, {n} facts): r = {corr[-1] if corr else float('nan'):.3f}, "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
    wall = time.perf_counter() - t0
    print(f"\ncheckpoint {args.ckpt}: {len(cases)} SynthClinic test cases with <= {args.max_facts} facts "
          f"(mean {np.mean([c.n_facts for c in cases]):.1f}); {doctor.n_scored:,} coalitions scored in {wall:.0f} s")
    print(f"Pearson r (doctor vs exact Shapley values), mean over {len(corr)} cases: {np.mean(corr):.3f} "
          f"(median {np.median(corr):.3f}, min {np.min(corr):.3f}; {skipped} skipped: constant values)")
    print(f"|v(all) - exact|: {np.mean(d_full):.3f}; |v(empty) - exact|: {np.mean(d_empty):.3f}")
    print(f"kernel @ {args.budget_per_fact}n on the doctor's v: normalised error {np.mean(k_err):.4f} "
          f"(median {np.median(k_err):.4f}; {len(k_err)} cases, {k_skip} skipped: |v(all) - v(empty)| < 0.05)")


if __name__ == "__main__":
    main()
