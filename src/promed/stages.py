"""Whole stages in one command: ``promed stage1`` runs search -> SFT -> evaluation.

Stage 1 (paper section 3): SIG-guided MCTS over training consultations writes the best trajectories; a doctor is
fine-tuned on them (loss on doctor turns only); the fine-tuned doctor is evaluated next to the baselines on the
test split twice: answering on its own (``llm:``) and asking while the scorer answers (``ask:``), which is how the
baselines answer. Each step writes into its own folder under ``out`` and resumes, so an interrupted stage re-runs only
what is missing. ``stage1.json`` records the wall time of each step and the peak memory of the process.
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

from promed.config import DataConfig, EvalConfig
from promed.env.consultation import EnvConfig
from promed.io import atomic_write_json


@dataclass(frozen=True)
class Stage1Config:
    """``promed stage1``: the preset that runs Stage 1 end to end (defaults: the SynthClinic CPU preset)."""

    train_cases: int = field(default=2000, metadata={"help": "SynthClinic training cases searched by MCTS."})
    test_cases: int = field(default=500, metadata={"help": "SynthClinic test cases for the evaluation."})
    iterations: int = field(default=32, metadata={"help": "MCTS iterations per case."})
    width: int = field(default=4, metadata={"help": "Candidates expanded per node."})
    max_questions: int = field(default=5, metadata={"help": "Question budget (search depth and evaluation)."})
    top_k: int = field(default=1, metadata={"help": "Trajectories kept per training case."})
    lam: float = field(default=0.5, metadata={"help": "SIG blend (0 = uniform information gain)."})
    sig: bool = field(default=True, metadata={"help": "Search with SIG step rewards (False: correctness only)."})
    epochs: float = field(default=3.0, metadata={"help": "SFT epochs."})
    sft_threads: int | None = field(default=1, metadata={"help": "torch threads for SFT of the small model."})
    baselines: tuple[str, ...] = field(default=("reactive", "random-5", "greedy-eig", "full-info"),
                                       metadata={"help": "Baseline doctors evaluated beside the fine-tuned one."})
    seed: int = field(default=0, metadata={"help": "Seed of every step."})
    out: Path = field(default=Path("runs/stage1"), metadata={"help": "Output directory (mcts/, sft/, eval/)."})


def peak_rss_mib() -> float:
    """Peak resident memory of this process and its finished children, in MiB (Linux reports KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024


def run_stage1(cfg: Stage1Config, progress: bool = True) -> dict:
    from promed.eval.evaluate import run_eval
    from promed.search.run import MctsRunConfig, run_mcts
    from promed.train.sft import SFTRunConfig, run_sft

    out = Path(cfg.out)
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    mcts_cfg = MctsRunConfig(data=DataConfig(split="train", limit=cfg.train_cases), iterations=cfg.iterations,
                             width=cfg.width, max_questions=cfg.max_questions, lam=cfg.lam, sig_enabled=cfg.sig,
                             top_k=cfg.top_k, seed=cfg.seed, out=out / "mcts")
    mcts = run_mcts(mcts_cfg, progress=progress)
    times["mcts_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    sft = run_sft(out / "mcts" / "trajectories.jsonl", out / "sft",
                  SFTRunConfig(epochs=cfg.epochs, seed=cfg.seed, num_threads=cfg.sft_threads,
                               progress_bar=progress))
    times["sft_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    doctor = f"llm:{out / 'sft'}"
    asker = f"ask:{out / 'sft'}"  # the same policy's questions, answered by the scorer like the baselines
    eval_cfg = EvalConfig(data=DataConfig(split="test", limit=cfg.test_cases),
                          doctors=(*cfg.baselines, doctor, asker),
                          env=EnvConfig(max_questions=cfg.max_questions), seed=cfg.seed, out=out / "eval")
    results = run_eval(eval_cfg, progress=progress)
    times["eval_s"] = time.perf_counter() - t0

    summary = {
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in cfg.__dict__.items()},
        "mcts": mcts,
        "sft": {"steps": sft.steps, "final_loss": sft.losses[-1] if sft.losses else None,
                "examples": sft.n_examples, "wall_s": sft.wall_s},
        "eval": {name: m.to_json() for name, m in results.items()},
        "sft_doctor": doctor,
        **{k: round(v, 1) for k, v in times.items()},
        "total_s": round(sum(times.values()), 1),
        "peak_rss_mib": round(peak_rss_mib(), 1),
    }
    atomic_write_json(out / "stage1.json", summary)
    return summary

