"""Where SIG credit pays (issue 31): a resumable grid of GRPO credit arms from Stage 1 doctors with headroom.

The grid is starts x budgets x arms x seeds on SynthClinic, where the exact posterior answers for the policy:

* **start**: a Stage 1 doctor fine-tuned (SFT, the preset's settings) from the shared pretrained doctor on
  trajectories of a weaker source than the preset's SIG-guided search, so that better questions have room to pay:
  ``uniform`` (MCTS with uniform information gain, lam 0), ``correctness`` (MCTS rewarded by correctness only),
  ``random`` (one MCTS iteration with a random rollout and no SIG: close to random questions), ``sig`` (the preset);
* **budget**: the question budget of search, training and evaluation (2, 3 or 5);
* **arm**: the credit of GRPO, every arm trained as a questioner only (``--answerer scorer``: the exact posterior
  names the diagnosis, so the outcome depends on the questions alone, the mirror of ``ask:``): ``outcome``;
  ``sig-mixed`` with ``--mix-scope questions`` (only questions get the SIG term: a right diagnosis is never pushed
  down); ``position`` (sig-mixed, each question compared with the group's questions at the same turn); ``ig-mixed``
  (information gain v(after) - v(before) in place of SIG: IGPO-style, no Shapley values);
* **seed**: the GRPO seed (rollouts, data order).

Each run is evaluated at ``--at`` steps (checkpoints kept at each) on ``--val-cases`` val + ``--test-cases`` test
cases with ``--no-repeat 0`` (repeated questions are not repaired), as ``ask:`` (the scorer answers) and, with
``--own``, ``llm:`` (the doctor answers). The start itself is evaluated too (step 0).

Resumable at two levels: every finished evaluation is one JSON line of ``--results`` (default
``benchmarks/results/sig_regimes.jsonl``, committed, with each case's correctness as a 0/1 string, so that paired
differences can be computed later and the grid resumes across sessions cell by cell); the training state of a run in
progress lives under ``--out`` (``runs/``, not committed) and resumes from its last checkpoint within a machine.
``--max-minutes`` stops cleanly before starting work that would not finish in time.

``--report`` (no training) reads the results and writes ``--report-dir``/sig_regimes.md and .png: each cell's
``ask:`` accuracy with its Wilson interval, questions, SIG per question and repeated-question rate, the paired
difference of each arm against ``outcome`` pooled over seeds (same start, budget, step and cases) with a 95%
interval, and the steps each arm takes to reach 90% of its final ``ask:`` accuracy.

Usage::

    python benchmarks/sig_regimes.py --pretrained runs/stage1/pretrain --starts random --budgets 3 \\
        --arms outcome,sig-mixed --seeds 0 --max-minutes 100
    python benchmarks/sig_regimes.py --report
    python benchmarks/sig_regimes.py --quick --out runs/sig_regimes_quick --results runs/sig_regimes_quick.jsonl
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402

from promed.config import EvalConfig, with_paths  # noqa: E402
from promed.data.sources import DataConfig  # noqa: E402
from promed.env.consultation import EnvConfig  # noqa: E402
from promed.eval.metrics import wilson_interval  # noqa: E402
from promed.io import read_jsonl, safe_name  # noqa: E402
from promed.runs.stage1 import Stage1Config  # noqa: E402

ROOT = Path(__file__).resolve().parent
STARTS = {  # settings of each start's MCTS, by dotted path into MctsRunConfig
    "sig": {},
    "uniform": {"sig.lam": 0.0},
    "correctness": {"sig_enabled": False},
    "random": {"search.iterations": 1, "search.rollout": "random", "sig_enabled": False},
}
ARMS = {  # GRPO settings of each arm (every arm: --answerer scorer)
    "outcome": {"credit": "outcome"},
    "sig-mixed": {"credit": "sig-mixed", "mix_scope": "questions"},
    "position": {"credit": "sig-mixed", "mix_baseline": "position"},
    "ig-mixed": {"credit": "ig-mixed", "mix_scope": "questions"},
}


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--starts", default="random,correctness,uniform")
    ap.add_argument("--budgets", default="3,2,5")
    ap.add_argument("--arms", default="outcome,sig-mixed,position,ig-mixed")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--at", default="25,50,100,300", help="GRPO steps at which to evaluate (the last is the run's)")
    ap.add_argument("--train-cases", type=int, default=2000, help="SynthClinic train cases of MCTS and GRPO")
    ap.add_argument("--val-cases", type=int, default=1000)
    ap.add_argument("--test-cases", type=int, default=1000)
    ap.add_argument("--own", action="store_true", help="also evaluate llm: (the doctor's own answers)")
    ap.add_argument("--pretrained", type=Path, default=None, help="a promed pretrain checkpoint (else trained "
                                                                   "into OUT/pretrain with the preset)")
    ap.add_argument("--out", type=Path, default=Path("runs/sig_regimes"))
    ap.add_argument("--results", type=Path, default=ROOT / "results" / "sig_regimes.jsonl")
    ap.add_argument("--max-minutes", type=float, default=None, help="stop before work that would pass this")
    ap.add_argument("--quick", action="store_true", help="a smoke run: tiny sizes everywhere")
    ap.add_argument("--report", action="store_true", help="only write the table and the figure from --results")
    ap.add_argument("--report-dir", type=Path, default=ROOT / "results")
    a = ap.parse_args(argv)
    for name in ("starts", "budgets", "arms", "seeds", "at"):
        setattr(a, name, [x.strip() for x in getattr(a, name).split(",") if x.strip()])
    a.budgets, a.seeds, a.at = [int(x) for x in a.budgets], [int(x) for x in a.seeds], sorted(int(x) for x in a.at)
    bad = [s for s in a.starts if s not in STARTS] + [x for x in a.arms if x not in ARMS]
    if bad:
        ap.error(f"unknown start or arm: {', '.join(bad)} (starts: {', '.join(STARTS)}; arms: {', '.join(ARMS)})")
    if a.quick:
        a.at, a.train_cases, a.val_cases, a.test_cases = [2, 4], 16, 12, 12
    return a


# ---- results ----------------------------------------------------------------------------------------------------


def key(start: str, budget: int, arm: str, seed: int, step: int, doctor: str) -> tuple:
    return (start, budget, arm, seed, step, doctor)


def done_keys(path: Path) -> set[tuple]:
    return {tuple(r["key"]) for r in read_jsonl(path)} if path.is_file() else set()


def append_result(path: Path, rec: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(rec) + "\n")


# ---- the pieces -------------------------------------------------------------------------------------------------


class Clock:
    def __init__(self, minutes: float | None):
        self.t0, self.limit = time.perf_counter(), None if minutes is None else minutes * 60

    def left(self) -> float:
        return math.inf if self.limit is None else self.limit - (time.perf_counter() - self.t0)


def stage1(a, budget: int) -> Stage1Config:
    s = Stage1Config(train_cases=a.train_cases, seed=0)
    s = with_paths(s, {"search.max_questions": budget})
    if a.quick:
        s = with_paths(s, {"search.iterations": 2, "sft.epochs": 1.0, "pretrain.cases": 200, "pretrain.max_steps": 4})
    return s


def pretrained(a) -> Path:
    if a.pretrained is not None:
        return a.pretrained
    from promed.runs.pretrain import run_pretrain_command

    cfg = stage1(a, 5).pretrain_config(progress=True)
    cfg = dataclasses.replace(cfg, out=a.out / "pretrain")
    res = run_pretrain_command(cfg)
    if not res.completed:
        raise SystemExit("pretraining stopped before its last step; rerun to resume")
    return a.out / "pretrain"


def start_doctor(a, start: str, budget: int, pre: Path) -> Path:
    """The start's SFT doctor (MCTS of the start's source, then SFT from the pretrained doctor); resumes."""
    from promed.runs.mcts import run_mcts
    from promed.train.sft import run_sft

    base = a.out / f"{start}-b{budget}"
    s1 = dataclasses.replace(stage1(a, budget), pretrained=pre, out=base)
    mcfg = with_paths(dataclasses.replace(s1.mcts_config(out=base / "mcts"), shapley_cache=a.out / "shapley.jsonl"),
                      STARTS[start])
    run_mcts(mcfg, progress=True)
    if not (base / "sft" / "config.json").is_file():
        run_sft(base / "mcts" / "trajectories.jsonl", base / "sft", s1.sft_config(progress=True))
    return base / "sft"


def train(a, doctor: Path, start: str, budget: int, arm: str, seed: int, until: int) -> Path:
    """The arm's GRPO run to step ``until`` (resumes; checkpoints kept at every --at step)."""
    from promed.runs.grpo import GrpoCommandConfig, run_grpo_command

    out = a.out / f"{start}-b{budget}" / f"{arm}-s{seed}"
    fields = {"model": f"hf:{doctor}", "data": DataConfig(split="train", limit=a.train_cases),
              "env": EnvConfig(max_questions=budget), "answerer": "scorer", "steps": a.at[-1],
              "save_steps": math.gcd(*a.at), "save_total_limit": a.at[-1] // math.gcd(*a.at) + 1,
              "stop_after_steps": until, "seed": seed, "out": out, **ARMS[arm]}
    if (a.out / "shapley.jsonl").is_file():
        fields["shapley"] = a.out / "shapley.jsonl"
    if a.quick:
        fields.update(cases_per_step=2, group_size=2)
    run_grpo_command(GrpoCommandConfig(**fields), progress=True)
    return out


def checkpoint(out: Path, step: int, last: int) -> Path:
    return out if step == last and (out / "config.json").is_file() else out / "checkpoints" / f"checkpoint-{step}"


def evaluate(a, model: Path, budget: int, where: Path) -> dict[str, dict]:
    """``ask:`` (and ``llm:``) metrics and per-case correctness on val + test; resumable (promed eval)."""
    from promed.eval.evaluate import run_eval

    doctors = (f"ask:{model}", *((f"llm:{model}",) if a.own else ()))
    rows: dict[str, dict] = {}
    for split, n in (("val", a.val_cases), ("test", a.test_cases)):
        cfg = EvalConfig(data=DataConfig(split=split, limit=n), doctors=doctors, env=EnvConfig(max_questions=budget),
                         no_repeat=0, out=where / split)
        res = run_eval(cfg, progress=False)
        for name in doctors:
            recs = {r["id"]: r for r in read_jsonl(where / split / "transcripts" / f"{safe_name(name)}.jsonl")}
            row = rows.setdefault(name.split(":")[0], {"correct": "", "questions": 0.0, "sig": 0.0, "n": 0,
                                                       "repeats": 0, "asked": 0})
            for cid in sorted(recs):
                r = recs[cid]
                row["correct"] += "1" if r.get("correct") else "0"
                asked = [t["question"].strip().lower() for t in r.get("turns", [])]
                row["asked"] += len(asked)
                row["repeats"] += len(asked) - len(set(asked))
            m = res[name]
            row["questions"] += m.mean_questions * m.n
            row["sig"] += (m.total_sig or 0.0) * m.n
            row["n"] += m.n
    return rows


def record(a, start, budget, arm, seed, step, rows, seconds) -> None:
    for doctor, r in rows.items():
        n = r["n"]
        append_result(a.results, {
            "key": list(key(start, budget, arm, seed, step, doctor)), "accuracy": r["correct"].count("1") / n,
            "questions": r["questions"] / n, "sig_per_question": r["sig"] / max(r["questions"], 1e-9),
            "repeat_rate": r["repeats"] / max(r["asked"], 1), "n": n, "correct": r["correct"],
            "eval_cases": f"val {a.val_cases} + test {a.test_cases}", "seconds": round(seconds, 1),
            "date": time.strftime("%Y-%m-%d")})


# ---- the grid ---------------------------------------------------------------------------------------------------


def run_grid(a) -> None:
    clock = Clock(a.max_minutes)
    done = done_keys(a.results)
    pre = pretrained(a)
    for budget in a.budgets:
        for start in a.starts:
            if clock.left() < 60:
                return print("time box reached", flush=True)
            doctor = start_doctor(a, start, budget, pre)
            if key(start, budget, "start", 0, 0, "ask") not in done:
                t0 = time.perf_counter()
                rows = evaluate(a, doctor, budget, a.out / f"{start}-b{budget}" / "eval-start")
                record(a, start, budget, "start", 0, 0, rows, time.perf_counter() - t0)
            for step in a.at:  # every arm and seed at one step before the next step: comparable cells first
                for seed in a.seeds:
                    for arm in a.arms:
                        if key(start, budget, arm, seed, step, "ask") in done:
                            continue
                        if clock.left() < 60:
                            return print("time box reached", flush=True)
                        t0 = time.perf_counter()
                        out = train(a, doctor, start, budget, arm, seed, until=step)
                        rows = evaluate(a, checkpoint(out, step, a.at[-1]), budget, out / f"eval-{step}")
                        record(a, start, budget, arm, seed, step, rows, time.perf_counter() - t0)
                        print(f"{start} b{budget} {arm} s{seed} step {step}: ask "
                              f"{rows['ask']['correct'].count('1') / rows['ask']['n']:.3f} "
                              f"({time.perf_counter() - t0:.0f} s)", flush=True)


# ---- the report -------------------------------------------------------------------------------------------------


def paired(results: list[dict], arm: str, start: str, budget: int, step: int) -> tuple[float, float, int] | None:
    """Mean paired difference (arm - outcome) of ``ask:`` correctness over every seed both have at this cell, with
    its 95% half-width (normal approximation over the pooled case-level differences)."""
    by = {tuple(r["key"]): r for r in results}
    diffs: list[int] = []
    for r in results:
        s, b, ar, seed, st, doc = r["key"]
        if (s, b, ar, st, doc) != (start, budget, arm, step, "ask"):
            continue
        base = by.get((start, budget, "outcome", seed, step, "ask"))
        if base is None or len(base["correct"]) != len(r["correct"]):
            continue
        diffs.extend(int(x) - int(y) for x, y in zip(r["correct"], base["correct"]))
    if not diffs:
        return None
    d = np.asarray(diffs, dtype=float)
    return float(d.mean()), float(1.96 * d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else math.inf, len(d)


def report(a) -> None:
    results = list(read_jsonl(a.results)) if a.results.is_file() else []
    if not results:
        raise SystemExit(f"{a.results}: no results yet")
    lines = ["| start | budget | arm | seed | step | ask: accuracy | 95% CI | questions | SIG / question | "
             "repeats | n |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(results, key=lambda r: tuple(str(x) for x in r["key"])):
        s, b, arm, seed, step, doc = r["key"]
        if doc != "ask":
            continue
        lo, hi = wilson_interval(r["correct"].count("1"), r["n"])
        lines.append(f"| {s} | {b} | {arm} | {seed} | {step} | {r['accuracy']:.3f} | [{lo:.3f}, {hi:.3f}] | "
                     f"{r['questions']:.2f} | {r['sig_per_question']:.3f} | {r['repeat_rate']:.3f} | {r['n']} |")
    lines += ["", "Paired differences against outcome (ask:, pooled over seeds):", "",
              "| start | budget | arm | step | difference | 95% interval | pairs |", "|---|---|---|---|---|---|---|"]
    cells = sorted({(r["key"][0], r["key"][1], r["key"][2], r["key"][4]) for r in results
                    if r["key"][2] not in ("outcome", "start")}, key=str)
    diffs = {}
    for s, b, arm, step in cells:
        p = paired(results, arm, s, b, step)
        if p is not None:
            diffs[(s, b, arm, step)] = p
            lines.append(f"| {s} | {b} | {arm} | {step} | {p[0]:+.3f} | +-{p[1]:.3f} | {p[2]} |")
    lines += ["", "Steps to 90% of the final ask: accuracy (mean over seeds):", ""]
    for s, b, arm in sorted({(r["key"][0], r["key"][1], r["key"][2]) for r in results if r["key"][2] != "start"},
                            key=str):
        curves = {}
        for r in results:
            if tuple(r["key"][:3]) == (s, b, arm) and r["key"][5] == "ask":
                curves.setdefault(r["key"][3], {})[r["key"][4]] = r["accuracy"]
        reach = []
        for c in curves.values():
            final = c[max(c)]
            reach.append(min(st for st, acc in c.items() if acc >= 0.9 * final))
        lines.append(f"- {s}, budget {b}, {arm}: {np.mean(reach):.0f} steps ({len(reach)} seeds)")
    a.report_dir.mkdir(parents=True, exist_ok=True)
    (a.report_dir / "sig_regimes.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    _figure(diffs, a.report_dir / "sig_regimes.png")
    print("\n".join(lines))
    print(f"wrote {a.report_dir / 'sig_regimes.md'} and {a.report_dir / 'sig_regimes.png'}")


def _figure(diffs: dict, path: Path) -> None:
    """Gain of each credit over outcome-only at the last step of each start and budget, with 95% intervals."""
    from matplotlib.figure import Figure

    last = {}
    for (s, b, arm, step), p in diffs.items():
        if step >= last.get((s, b, arm), (-1, None))[0]:
            last[(s, b, arm)] = (step, p)
    cells = sorted({(s, b) for s, b, _ in last}, key=str)
    arms = sorted({arm for _, _, arm in last})
    fig = Figure(figsize=(max(6, 1.6 * len(cells)), 4), dpi=110)
    ax = fig.add_subplot()
    width = 0.8 / max(len(arms), 1)
    for k, arm in enumerate(arms):
        xs, ys, es = [], [], []
        for i, cell in enumerate(cells):
            if (*cell, arm) in last:
                _, (mean, half, _) = last[(*cell, arm)]
                xs.append(i + (k - (len(arms) - 1) / 2) * width)
                ys.append(mean)
                es.append(half)
        ax.bar(xs, ys, width, yerr=es, capsize=3, label=arm)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(range(len(cells)), [f"{s}\nbudget {b}" for s, b in cells])
    ax.set_ylabel("ask: accuracy minus outcome-only")
    ax.set_title("Gain of each credit over outcome-only (paired, pooled over seeds; last step)")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)


def main(argv=None) -> None:
    a = parse_args(argv)
    if a.report:
        return report(a)
    run_grid(a)
    if a.results.is_file():
        report(a)


if __name__ == "__main__":
    main()
