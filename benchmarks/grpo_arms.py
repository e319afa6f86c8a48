"""Stage 2 ablation on SynthClinic: GRPO with SIG credit vs outcome-only GRPO from the same SFT checkpoint.

For each seed, trains both arms (``promed grpo --credit sig`` / ``--credit outcome``; identical rollout settings),
then evaluates the SFT doctor and every trained doctor answering on their own (``llm:``) on the SynthClinic test
split, and prints one table: accuracy with its 95% interval, questions asked, SIG per question, fact recall, and the
training wall time and peak memory of each arm. It writes ``OUT/arms.json``, ``OUT/table.md`` and
``OUT/curves.png`` (the learning curves of every arm in one figure). Runs resume: a finished arm or evaluation is
not repeated.

    python benchmarks/grpo_arms.py --model runs/stage1/sft --steps 100 --seeds 0 --test-cases 1000 --out runs/grpo_arms
"""

from __future__ import annotations

import argparse
import json
import time
from typing import get_args
from pathlib import Path

from promed.config import EvalConfig
from promed.data.sources import DataConfig
from promed.env.consultation import EnvConfig
from promed.eval.evaluate import run_eval
from promed.io import atomic_write_json
from promed.runs.grpo import GrpoCommandConfig, run_grpo_command
from promed.sig.reward import SigConfig, Weighting
from promed.train.advantages import TURN_BASELINES, TURN_SCOPES
from promed.train.grpo import plot_curves, read_log


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, required=True, help="SFT checkpoint directory (promed stage1's OUT/sft)")
    ap.add_argument("--arms", default="sig,outcome", help="comma-separated --credit values")
    ap.add_argument("--seeds", default="0", help="comma-separated training seeds")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--cases-per-step", type=int, default=8)
    ap.add_argument("--group-size", type=int, default=4)
    ap.add_argument("--learning-rate", type=float, default=1e-4)
    ap.add_argument("--kl", type=float, default=0.04)
    ap.add_argument("--temperature", type=float, default=None,
                    help="rollout sampling temperature (unset: promed grpo's default)")
    ap.add_argument("--lam", type=float, default=None, help="SIG blend (None: the default)")
    ap.add_argument("--weighting", choices=get_args(Weighting), default=None,
                    help="Shapley values -> weights (None: the default; softmax = the reference's softmax(phi / 2))")
    ap.add_argument("--train-cases", type=int, default=1000)
    ap.add_argument("--test-cases", type=int, default=1000, help="evaluation cases (of --eval-split)")
    ap.add_argument("--eval-split", choices=("test", "val"), default="test",
                    help="SynthClinic split of the evaluation (choose settings on val, report test)")
    ap.add_argument("--max-questions", type=int, default=5)
    ap.add_argument("--no-repeat", type=int, default=8, help="evaluation decoding rule, as in the Stage 1 preset")
    ap.add_argument("--mix-baseline", choices=TURN_BASELINES, default=None,
                    help="sig-mixed: questions, turns or position (unset: promed grpo's default; promed grpo --help)")
    ap.add_argument("--mix-scope", choices=TURN_SCOPES, default=None,
                    help="sig-mixed: turn or decision (unset: promed grpo's default; promed grpo --help)")
    ap.add_argument("--skip-start-eval", action="store_true",
                    help="evaluate only the trained arms (the starting checkpoint was evaluated elsewhere)")
    ap.add_argument("--shapley", type=Path, default=None,
                    help="an existing Shapley cache of the training cases (promed sig's shapley.jsonl): read, extended")
    ap.add_argument("--out", type=Path, default=Path("runs/grpo_arms"))
    a = ap.parse_args()

    arms = [x for x in a.arms.split(",") if x]
    seeds = [int(x) for x in a.seeds.split(",") if x]
    rows: dict[str, dict] = {}
    logs: dict[str, list[dict]] = {}
    shared: Path | None = a.shapley
    for seed in seeds:
        for arm in arms:
            name = f"grpo-{arm}-s{seed}"
            out = a.out / name
            sig = {k: v for k, v in (("lam", a.lam), ("weighting", a.weighting)) if v is not None}
            extra = {"sig": SigConfig(**sig)} if sig else {}
            if a.mix_baseline is not None:
                extra["mix_baseline"] = a.mix_baseline
            if a.mix_scope is not None:
                extra["mix_scope"] = a.mix_scope
            if a.temperature is not None:
                extra["temperature"] = a.temperature
            if shared is not None:
                extra["shapley"] = shared  # the cases' Shapley values, computed by the first arm
            cfg = GrpoCommandConfig(model=f"hf:{a.model}", data=DataConfig(split="train", limit=a.train_cases),
                                    credit=arm, env=EnvConfig(max_questions=a.max_questions), steps=a.steps,
                                    cases_per_step=a.cases_per_step, group_size=a.group_size,
                                    learning_rate=a.learning_rate, kl=a.kl, seed=seed, out=out, **extra)
            t0 = time.perf_counter()
            summary = run_grpo_command(cfg, progress=True)
            rows[name] = {"train": summary.to_json(), "train_call_s": round(time.perf_counter() - t0, 1)}
            logs[name] = read_log(out / "log.jsonl")
            shared = shared or out / "shapley.jsonl"
    doctors = (*(() if a.skip_start_eval else (f"llm:{a.model}",)), *(f"llm:{a.out / name}" for name in rows))
    t0 = time.perf_counter()
    results = run_eval(EvalConfig(data=DataConfig(split=a.eval_split, limit=a.test_cases), doctors=doctors,
                                  env=EnvConfig(max_questions=a.max_questions), no_repeat=a.no_repeat,
                                  out=a.out / "eval"), progress=True)
    eval_s = time.perf_counter() - t0
    plot_curves(logs, a.out / "curves.png")
    lines = ["| doctor | accuracy (own answers) | 95% CI | questions | SIG / question | fact recall | train s | "
             "peak MiB |", "|---|---|---|---|---|---|---|---|"]
    record = {"args": {k: str(v) for k, v in vars(a).items()}, "eval_s": round(eval_s, 1), "doctors": {}}
    for name, m in results.items():
        key = Path(name[4:]).name
        tr = rows.get(key, {}).get("train", {})
        js = m.to_json()
        record["doctors"][key] = {"eval": js, "train": tr}
        lo, hi = js["ci95"]
        lines.append(f"| {key} | {js['accuracy']:.3f} | [{lo:.3f}, {hi:.3f}] | {js['mean_questions']:.2f} | "
                     f"{_fmt(js.get('mean_sig'))} | {_fmt(js.get('fact_recall'))} | "
                     f"{tr.get('wall_s', '')} | {tr.get('peak_rss_mb', '')} |")
    table = "\n".join(lines)
    print(table)
    (a.out / "table.md").write_text(table + "\n", encoding="utf-8")
    atomic_write_json(a.out / "arms.json", record)
    print(json.dumps({"eval_s": round(eval_s, 1)}))


def _fmt(x) -> str:
    return "" if x is None else f"{x:.3f}"


if __name__ == "__main__":
    main()
