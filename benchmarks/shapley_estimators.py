"""Shapley estimator accuracy vs cost on SynthClinic, against exact ground truth.

For each SynthClinic test case (8 to 16 hidden facts) the exact Shapley values of v(S) = P(gold | initial + S)
(``ScorerValue(BayesScorer())``) are computed by enumerating all 2^n coalitions. Every estimator then runs through
the production path (``ScorerValue`` + ``set_function``) at budgets of b * n distinct evaluations, and we report

    error = mean_i |phi_hat_i - phi_i| / |v(all) - v(empty)|        (cases with |v(all) - v(empty)| < --min-delta
                                                                       are skipped and counted)

against the number of distinct v evaluations (v(empty) and v(all) included). The ProMed reference algorithm runs
at its default settings in the same loop; our estimators are also run at exactly the reference's evaluation count
on each case ("matched"), which is the like-for-like comparison.

Ground truth uses ``BayesScorer.subset_probs`` (one matrix product for all 2^n subsets, equal to ``probs`` by
contract; checked against ``probs`` on the first case) because 2^16 ``Query`` objects per case would take seconds
each; ``ScorerValue`` takes the same fast path for the estimators.

``--interactions s`` adds seeded pairwise fact interactions to every option's log-score, which takes v outside
the family of the kernel estimator's surrogate (a stand-in for LLM scorers): a robustness check.

    python benchmarks/shapley_estimators.py [--cases 240] [--budgets 2,3,5,10,20] [--log] [--interactions 0.5]
                                            [--plot out.png]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field

import numpy as np

from promed.data.synthclinic import BayesScorer, generate_cases
from promed.sig.shapley import ExactShapley, ShapleyEstimator, get_estimator
from promed.sig.value import ScorerValue, keys_to_masks, set_function
from promed.types import Case


@dataclass
class Runs:
    """Errors and evaluation counts of one estimator setting over the cases."""

    label: str
    err: list[float] = field(default_factory=list)
    evals: list[int] = field(default_factory=list)
    queries: list[int] = field(default_factory=list)

    def add(self, err: float, evals: int, queries: int) -> None:
        self.err.append(err)
        self.evals.append(evals)
        self.queries.append(queries)

    def row(self, mean_n: float) -> str:
        e, k = np.array(self.err), np.array(self.evals)
        return (f"{self.label:<26} {k.mean():8.1f} {k.mean() / mean_n:6.2f} {np.mean(self.queries):8.1f} "
                f"{e.mean():9.4f} {np.median(e):9.4f} {np.quantile(e, 0.9):9.4f} {np.mean(e <= 0.02):7.2f}")


HEADER = (f"{'estimator @ budget':<26} {'evals':>8} {'ev/n':>6} {'queries':>8} {'mean err':>9} {'median':>9} "
          f"{'p90':>9} {'<=0.02':>7}")


def truth_fn(scorer: BayesScorer, case: Case, log: bool, floor: float = 1e-6):
    gold = case.gold_index

    def f(masks: np.ndarray) -> np.ndarray:
        p = scorer.subset_probs(case, masks)[:, gold]
        return np.log(np.maximum(p, floor)) if log else p

    return f


def error(est_values: np.ndarray, truth: np.ndarray, delta: float) -> float:
    return float(np.mean(np.abs(est_values - truth)) / abs(delta))


def parse_spec(spec: str) -> ShapleyEstimator:
    """``name[:key=value...]``, e.g. ``kernel:surrogate=none`` or ``kernel:surrogate_classes=1``."""
    name, *opts = spec.split(":")
    kw: dict = {}
    for o in opts:
        key, val = o.split("=", 1)
        for cast in (int, float):
            try:
                kw[key] = cast(val)
                break
            except ValueError:
                continue
        else:
            kw[key] = val
    return get_estimator(name, **kw)


def interacting_fn(scorer: BayesScorer, case: Case, log: bool, strength: float, seed: int, floor: float = 1e-6):
    """SynthClinic's v with random pairwise fact interactions added to every option's log-score (a stand-in for an
    LLM scorer, whose option logits are not additive in the facts): outside the surrogate's family."""
    base, ll = scorer.fact_loglik(case)
    n, k = ll.shape
    rng = np.random.default_rng([seed, int(case.content_hash()[:8], 16)])
    inter = np.triu(rng.normal(size=(k, n, n)), 1) * strength * ll.std() / np.sqrt(n)
    gold = case.gold_index

    def f(masks: np.ndarray) -> np.ndarray:
        m = np.asarray(masks, dtype=float)
        s = base + m @ ll + np.einsum("ri,kij,rj->rk", m, inter, m)
        lp = s[:, gold] - np.logaddexp.reduce(s, axis=1)
        return np.maximum(lp, np.log(floor)) if log else np.exp(lp)

    return f


def run_one(est: ShapleyEstimator, value: ScorerValue, case: Case, budget: int | None, rng: np.random.Generator,
            direct=None):
    """One estimate through the production path (``set_function(value, case)``), or through ``direct``."""
    f = set_function(value, case) if direct is None else direct
    return est.estimate(f, case.n_facts, budget, rng)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=240, help="SynthClinic test cases")
    ap.add_argument("--budgets", default="2,3,5,10,20", help="budgets as multiples of n (comma-separated)")
    ap.add_argument("--estimators", default="permutation,kernel:surrogate=none,kernel",
                    help="budgeted estimators to compare: name[:key=value...] (comma-separated)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--log", action="store_true", help="v = log P(gold) (clipped at 1e-6) instead of P(gold)")
    ap.add_argument("--min-delta", type=float, default=1e-3, help="skip cases with |v(all) - v(empty)| below this")
    ap.add_argument("--interactions", type=float, default=0.0,
                    help="add pairwise fact interactions of this strength to v (robustness outside the surrogate's "
                         "family; v is then computed directly, not through ScorerValue)")
    ap.add_argument("--plot", default=None, help="write an error-vs-evaluations PNG here")
    args = ap.parse_args()

    t0 = time.perf_counter()
    scorer = BayesScorer()
    value = ScorerValue(scorer, log=args.log, max_cases=2)
    cases = [c for c in generate_cases("test", args.cases, seed=args.seed) if 8 <= c.n_facts <= 16]
    mults = [float(b) for b in args.budgets.split(",")]
    names = [s for s in args.estimators.split(",") if s]
    runs: dict[tuple[str, float], Runs] = {(nm, b): Runs(f"{nm} @ {b:g}n") for nm in names for b in mults}
    ref = Runs("reference (default)")
    matched = {nm: Runs(f"{nm} @ reference evals") for nm in names}
    skipped, used_n = 0, []
    exact = ExactShapley()
    for ci, case in enumerate(cases):
        n = case.n_facts
        f_true = truth_fn(scorer, case, args.log)
        direct = None
        if args.interactions > 0:
            f_true = direct = interacting_fn(scorer, case, args.log, args.interactions, args.seed)
        elif ci == 0:  # the matrix fast path equals one Query per subset through BayesScorer.probs
            keys = np.random.default_rng(0).integers(0, 2**n, size=64)
            masks = keys_to_masks(keys, n)
            rows = scorer.probs([case.query(np.flatnonzero(m).tolist()) for m in masks])
            slow = np.array([r[case.gold_index] for r in rows])
            slow = np.log(np.maximum(slow, 1e-6)) if args.log else slow
            assert np.allclose(slow, f_true(masks), atol=1e-12), "subset_probs disagrees with probs"
        truth = exact.estimate(f_true, n, None, np.random.default_rng(0))
        delta = truth.full - truth.base
        if abs(delta) < args.min_delta:
            skipped += 1
            continue
        used_n.append(n)
        res = run_one(get_estimator("reference"), value, case, None, np.random.default_rng([args.seed, ci, 99]), direct)
        ref.add(error(res.values, truth.values, delta), res.n_evals, res.n_queries)
        for ei, nm in enumerate(names):
            est = parse_spec(nm)
            for bi, b in enumerate(mults):
                r = run_one(est, value, case, int(round(b * n)), np.random.default_rng([args.seed, ci, ei, bi]), direct)
                runs[(nm, b)].add(error(r.values, truth.values, delta), r.n_evals, r.n_queries)
            r = run_one(est, value, case, max(res.n_evals, n + 1), np.random.default_rng([args.seed, ci, ei, 77]),
                        direct)
            matched[nm].add(error(r.values, truth.values, delta), r.n_evals, r.n_queries)
    mean_n = float(np.mean(used_n))
    print(f"SynthClinic test: {len(cases)} cases, {len(used_n)} used (n = {min(used_n)}..{max(used_n)}, "
          f"mean {mean_n:.1f}), {skipped} skipped (|v(all) - v(empty)| < {args.min_delta}); "
          f"v = {'log P(gold)' if args.log else 'P(gold)'}"
          f"{f' with pairwise interactions {args.interactions:g}' if args.interactions else ''}; seed {args.seed}")
    print("error = mean |phi_hat - phi| / |v(all) - v(empty)| per case; evals = distinct coalitions (incl. empty, "
          "all); queries = requests incl. repeats")
    print(HEADER)
    print(ref.row(mean_n))
    for nm in names:
        print(matched[nm].row(mean_n))
    for nm in names:
        for b in mults:
            print(runs[(nm, b)].row(mean_n))
    ref_err, ref_ev = np.mean(ref.err), np.mean(ref.evals)
    for nm in names:
        m_err = np.mean(matched[nm].err)
        wins = np.mean(np.array(matched[nm].err) < np.array(ref.err))
        print(f"{nm} at the reference's evaluations: error {m_err:.4f} vs {ref_err:.4f} "
              f"({ref_err / m_err:.1f}x lower), lower on {wins:.0%} of cases, evals {np.mean(matched[nm].evals):.1f} "
              f"vs {ref_ev:.1f}")
        below = [b for b in mults if np.mean(runs[(nm, b)].err) <= ref_err]
        if below:
            b = min(below)
            print(f"{nm} reaches the reference's error with {np.mean(runs[(nm, b)].evals):.1f} evals at {b:g}n "
                  f"({ref_ev / np.mean(runs[(nm, b)].evals):.1f}x fewer)")
    print(f"wall time {time.perf_counter() - t0:.1f} s")

    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4.2))
        for nm in names:
            xs = [np.mean(runs[(nm, b)].evals) for b in mults]
            ys = [np.mean(runs[(nm, b)].err) for b in mults]
            ax.plot(xs, ys, "o-", label=nm)
        ax.plot([ref_ev], [ref_err], "k*", ms=12, label="reference (default)")
        ax.axhline(0.02, color="grey", ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("distinct v evaluations per case (mean)")
        ax.set_ylabel("mean |phi error| / |v(all) - v(empty)|")
        ax.set_title(f"Shapley estimators on SynthClinic ({len(used_n)} cases, n={min(used_n)}..{max(used_n)})")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
        print(f"plot written to {args.plot}")


if __name__ == "__main__":
    main()
