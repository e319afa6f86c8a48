"""Stage 1 ablation on SynthClinic: MCTS with SIG vs uniform information gain vs correctness only.

What it measures, per arm (same cases, patient, scorer, Shapley cache, seed and search settings):

* trajectory level - mean return (under the arm's own reward), trajectory accuracy (best trajectory correct), mean
  questions, and two arm-independent yardsticks of the questions asked: the fraction of the hidden facts revealed
  (uniform information gain, lam = 0) and the reference SIG (lam = 0.5, softmax(phi / 2) weights), plus the SIG
  under positive-part weights (max(phi, 0) normalised: importance without the softmax's flattening);
  wall time per case.
* downstream (``--sft``) - one ``synthclinic-small`` doctor trained per arm on the exported trajectories with the
  Stage 1 preset's SFT settings, each evaluated on ``--test-cases`` SynthClinic test cases twice, as the preset
  does: ``ask:`` (its questions, the scorer answers, like the baselines) and ``llm:`` (it answers too), with the
  preset's no-repeat decoding rule.

Every arm uses the search settings of the Stage 1 preset (:class:`promed.runs.stage1.Stage1Config`: 32 iterations,
width 4, gamma 0.9, exact Shapley values) and differs only in its reward.

Other modes: ``--timing N`` times the whole ``run_mcts`` of the preset on N train cases (patient load included);
``--mediq`` runs MCTS on 5 MediQ dev cases with Gemma 3 270M (candidates = both, scorer = the same model,
LLM-written fact questions) and checks that the trajectories written are valid.

Arms: ``sig`` (lam 0.5, positive-part weights: the preset), ``uniform`` (lam 0), ``correctness`` (SIG off),
``sig-softmax`` (lam 0.5, the reference's softmax(phi / 2) weights).

Usage::

    python benchmarks/mcts_ablation.py --cases 1000 --arms sig,uniform,correctness --sft
    python benchmarks/mcts_ablation.py --cases 1000 --arms sig --top-k 3 --sft --out runs/bench_topk3
    python benchmarks/mcts_ablation.py --timing 2000 --arms none
    python benchmarks/mcts_ablation.py --mediq --arms none
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from dataclasses import replace  # noqa: E402

from promed.config import with_paths  # noqa: E402
from promed.data.sources import DataConfig  # noqa: E402
from promed.io import read_jsonl  # noqa: E402
from promed.runs.mcts import MctsRunConfig, run_mcts  # noqa: E402
from promed.runs.stage1 import Stage1Config  # noqa: E402
from promed.search.mcts import MctsConfig  # noqa: E402
from promed.sig.cache import read_shapley  # noqa: E402
from promed.sig.reward import importance_weights  # noqa: E402

ARMS = {  # settings of each arm, by dotted path into MctsRunConfig
    "sig": {"sig.lam": 0.5},
    "uniform": {"sig.lam": 0.0},
    "correctness": {"sig_enabled": False},
    "sig-softmax": {"sig.lam": 0.5, "sig.weighting": "softmax"},
}


def preset(args) -> Stage1Config:
    """The Stage 1 preset, sized by the command line."""
    return with_paths(Stage1Config(train_cases=args.cases, test_cases=args.test_cases, top_k=args.top_k,
                                    seed=args.seed),
                      {"search.iterations": args.iterations, "search.width": args.width,
                       "search.max_questions": args.budget})

MEDIQ = Path(__file__).resolve().parents[2] / "shared/data/mediq/imedqa_dev.jsonl"


def yardsticks(out: Path, shapley: Path) -> dict:
    """Arm-independent figures of the best trajectories: facts revealed, reference SIG, positive-weight SIG."""
    phi = {r.id: r.phi_array for r in read_shapley(shapley)}
    frac, sig_ref, sig_pos = [], [], []
    for r in read_jsonl(out / "search.jsonl"):
        if r["best_new"] is None:
            continue
        new = [i for ids in r["best_new"] for i in ids]
        n, p = r["n_facts"], phi[r["id"]]
        w_soft, w_pos = importance_weights(p, "softmax", 2.0), importance_weights(p, "positive")
        frac.append(len(new) / n)
        sig_ref.append(sum(0.5 / n + 0.5 * w_soft[i] for i in new))
        sig_pos.append(sum(0.5 / n + 0.5 * w_pos[i] for i in new))
    return {"facts_revealed": float(np.mean(frac)), "sig_ref": float(np.mean(sig_ref)),
            "sig_positive": float(np.mean(sig_pos))}


def run_arms(args, patient, scorer) -> dict[str, dict]:
    root = Path(args.out)
    rows = {}
    for arm in args.arms:
        cfg = with_paths(replace(preset(args).mcts_config(out=root / arm), shapley_cache=root / "shapley.jsonl"),
                         ARMS[arm])
        s = run_mcts(cfg, progress=False, patient=patient, scorer=scorer)
        rows[arm] = {**s.to_json(), **yardsticks(cfg.out, root / "shapley.jsonl")}
        keys = ("mean_return", "trajectory_accuracy", "mean_questions", "exported_cases", "mean_search_seconds",
                "mean_shapley_seconds", "wall_s")
        print(f"  {arm}: {json.dumps({k: rows[arm][k] for k in keys})}", flush=True)
    return rows


def train_and_eval(args, rows: dict[str, dict]) -> None:
    from promed.eval.evaluate import run_eval
    from promed.train.sft import run_sft

    stage = preset(args)
    for arm in args.arms:
        out = Path(args.out) / arm
        t0 = time.perf_counter()
        res = run_sft(out / "trajectories.jsonl", out / "sft", stage.sft_config(progress=False))
        t1 = time.perf_counter()
        ask, own = f"ask:{res.model_dir}", f"llm:{res.model_dir}"
        ev = replace(stage.eval_config((ask, own), out=out / "eval"), sig_enabled=False)
        m = run_eval(ev, progress=False)
        rows[arm].update(sft_s=t1 - t0, eval_s=time.perf_counter() - t1, sft_steps=res.steps,
                         test_accuracy=m[ask].accuracy, test_questions=m[ask].mean_questions,
                         test_recall=m[ask].fact_recall, test_own_accuracy=m[own].accuracy,
                         test_invalid=m[own].invalid_rate)
        print(f"  {arm}: SFT {t1 - t0:.0f}s ({res.steps} steps), eval {rows[arm]['eval_s']:.0f}s, test accuracy "
              f"ask: {m[ask].accuracy:.3f} / llm: {m[own].accuracy:.3f}, questions {m[ask].mean_questions:.2f}, "
              f"invalid {m[own].invalid_rate:.3f}", flush=True)


def print_table(rows: dict[str, dict], n_cases: int) -> None:
    cols = [("mean return", "mean_return"), ("traj. acc", "trajectory_accuracy"), ("questions", "mean_questions"),
            ("facts revealed", "facts_revealed"), ("SIG (ref)", "sig_ref"), ("SIG (positive)", "sig_positive"),
            ("s/case", "mean_seconds_per_case"), ("SFT ask: acc", "test_accuracy"),
            ("SFT llm: acc", "test_own_accuracy"), ("test questions", "test_questions"),
            ("test fact recall", "test_recall")]
    print(f"\n{n_cases} SynthClinic train cases per arm")
    print("| arm | " + " | ".join(c for c, _ in cols) + " |")
    print("|---|" + "---|" * len(cols))
    for arm, r in rows.items():
        cells = [f"{r[k]:.3f}" if isinstance(r.get(k), float) else str(r.get(k, "-")) for _, k in cols]
        print(f"| {arm} | " + " | ".join(cells) + " |")


def timing(args, patient_factory) -> None:
    t0 = time.perf_counter()
    patient = patient_factory()
    cfg = replace(preset(args).mcts_config(out=Path(args.out) / f"timing-{args.timing}"),
                  data=DataConfig("synthclinic", "train", args.timing))
    s = run_mcts(cfg, progress=True, patient=patient)
    total = time.perf_counter() - t0
    print(f"\ntiming: {args.timing} cases, iterations {cfg.search.iterations}, width {cfg.search.width}, "
          f"gamma {cfg.search.gamma}")
    print(f"  total {total:.1f}s (run_mcts {s.wall_s:.1f}s), {s.mean_search_seconds:.4f}s search + "
          f"{s.mean_shapley_seconds:.4f}s Shapley per case; accuracy {s.trajectory_accuracy}, "
          f"exported {s.exported_cases}")


def mediq_check(args) -> None:
    if not MEDIQ.exists():
        print("MediQ check skipped: shared data not present")
        return
    from promed.doctor.actions import parse_action
    from promed.data.sources import load_data
    from promed.types import Answer, Ask

    cfg = MctsRunConfig(data=DataConfig(str(MEDIQ), split="all", limit=5), candidates="both", model=args.model,
                        search=MctsConfig(iterations=args.mediq_iterations, width=2, max_questions=args.mediq_budget),
                        estimator="permutation",
                        estimator_budget=None, if_none_correct="best", seed=args.seed, out=Path(args.out) / "mediq")
    t0 = time.perf_counter()
    s = run_mcts(cfg, progress=True)
    wall = time.perf_counter() - t0
    cases = {c.id: c for c in load_data(cfg.data).cases}
    recs = list(read_jsonl(cfg.out / "trajectories.jsonl"))
    ok = 0
    for r in recs:
        acts = [parse_action(m["content"], cases[r["id"]].options) for m in r["messages"] if m["role"] == "assistant"]
        ok += all(isinstance(a, Ask) for a in acts[:-1]) and isinstance(acts[-1], Answer)
    print(f"\nMediQ x {args.model}: {len(cases)} cases, {len(recs)} trajectories, {ok} valid, wall {wall:.0f}s; "
          f"accuracy {s.trajectory_accuracy}, mean questions {s.mean_questions}, "
          f"{s.proposal_calls} generate calls, {s.scorer_queries} scorer queries")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", type=int, default=1000, help="SynthClinic train cases per arm")
    ap.add_argument("--budget", type=int, default=5, help="question budget")
    ap.add_argument("--iterations", type=int, default=Stage1Config().search.iterations)
    ap.add_argument("--width", type=int, default=Stage1Config().search.width)
    ap.add_argument("--top-k", type=int, default=Stage1Config().top_k, help="trajectories exported per case")
    ap.add_argument("--arms", default="sig,uniform,correctness", help="comma list (also: sig-softmax), or 'none'")
    ap.add_argument("--sft", action="store_true", help="train and evaluate one doctor per arm")
    ap.add_argument("--test-cases", type=int, default=200)
    ap.add_argument("--timing", type=int, default=0, help="time the preset on this many train cases")
    ap.add_argument("--mediq", action="store_true", help="real-model check on 5 MediQ cases")
    ap.add_argument("--model", default="gemma-270m", help="model spec for --mediq")
    ap.add_argument("--mediq-iterations", type=int, default=3)
    ap.add_argument("--mediq-budget", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/bench_mcts")
    args = ap.parse_args()
    args.arms = [] if args.arms == "none" else args.arms.split(",")
    unknown = set(args.arms) - set(ARMS)
    if unknown:
        ap.error(f"unknown arms {sorted(unknown)}; choose from {sorted(ARMS)}")

    from promed.data.synthclinic import BayesScorer, generate_cases
    from promed.patient import FactPatient

    if args.arms:
        t0 = time.perf_counter()
        patient = FactPatient()
        patient.reply(generate_cases("val", 1), ["Hello?"])  # load MiniLM before timing the arms
        print(f"arms on {args.cases} train cases (patient ready in {time.perf_counter() - t0:.0f}s)", flush=True)
        rows = run_arms(args, patient, BayesScorer())
        if args.sft:
            train_and_eval(args, rows)
        print_table(rows, args.cases)
    if args.timing:
        timing(args, FactPatient)
    if args.mediq:
        mediq_check(args)


if __name__ == "__main__":
    main()
