"""Is SIG informative? On SynthClinic, with exact posteriors as ground truth.

1. Mean SIG per question of the greedy information-gain doctor vs random questions (same cases, budget 5).
2. Rank correlation (Spearman) between a question's SIG and the drop in the exact posterior's error that its
   reply causes: error = 1 - P(gold | initial + facts known), before vs after the turn.
3. The same correlation for uniform information gain (lam = 0: every new fact counts 1/n) and for other
   weightings, to show what the Shapley weighting adds; also among questions that revealed a new fact only
   (where the weighting, not the reveal/no-reveal split, must do the work).

    python benchmarks/sig_informative.py [--limit 500]
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from promed.config import DataConfig, EvalConfig
from promed.data.sources import load_data
from promed.data.synthclinic import BayesScorer
from promed.eval.evaluate import run_eval
from promed.eval.records import transcript_from_json
from promed.io import read_jsonl
from promed.sig.annotate import SigAnnotator
from promed.sig.reward import SigConfig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=500)
    ap.add_argument("--out", type=Path, default=Path("runs/bench_sig_informative"))
    args = ap.parse_args()
    cfg = EvalConfig(data=DataConfig(split="test", limit=args.limit), doctors=("random-5", "greedy-eig"),
                     out=args.out)
    res = run_eval(cfg, progress=False)
    cases = {c.id: c for c in load_data(cfg.data).cases}
    scorer = BayesScorer()
    arms = {
        "SIG, positive-part weights, lam 0.5 (default)": SigConfig(lam=0.5, weighting="positive"),
        "positive-part weights only (lam 1)": SigConfig(lam=1.0, weighting="positive"),
        "SIG, softmax(phi / 2) weights (the reference's), lam 0.5": SigConfig(lam=0.5, weighting="softmax"),
        "softmax(phi / 2) weights only (lam 1)": SigConfig(lam=1.0, weighting="softmax"),
        "uniform information gain (lam 0)": SigConfig(lam=0.0),
    }
    annot = {k: SigAnnotator.for_eval(scorer, "auto", args.out / "shapley.jsonl", 0, c) for k, c in arms.items()}
    print("| doctor | accuracy | mean SIG / question | questions |")
    print("|---|---|---|---|")
    for name, m in res.items():
        print(f"| {name} | {m.accuracy:.3f} | {m.mean_sig:.4f} | {m.mean_questions:.2f} |")
    sig: dict[str, list[float]] = {k: [] for k in annot}
    drop = []
    for name in res:
        for rec in read_jsonl(args.out / "transcripts" / f"{name}.jsonl"):
            tr, _ = transcript_from_json(rec)
            case = cases[tr.case_id]
            known: list[int] = []
            queries = [case.query(known)]
            for t in tr.turns:
                known = sorted(set(known) | set(t.revealed))
                queries.append(case.query(known))
            p_gold = np.array([p[case.gold_index] for p in scorer.probs(queries)])
            drop += list(p_gold[1:] - p_gold[:-1])  # error drop = increase of P(gold)
            for k, a in annot.items():
                sig[k] += [t.sig for t in a(case, replace(tr)).turns]
    drop_arr = np.array(drop)
    print(f"\n{len(drop)} questions (both doctors)")
    print("| reward | Spearman, all questions | Spearman, questions that revealed a new fact |")
    print("|---|---|---|")
    mask = np.array(sig["uniform information gain (lam 0)"]) > 0
    for k, vals in sig.items():
        v = np.array(vals)
        print(f"| {k} | {spearmanr(v, drop_arr)[0]:.3f} | {spearmanr(v[mask], drop_arr[mask])[0]:.3f} |")
    print(f"\nquestions that revealed a new fact: {mask.sum()}; mean error drop {drop_arr[mask].mean():+.4f}")


if __name__ == "__main__":
    main()
