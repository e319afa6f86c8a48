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
    """``promed stage1``: the preset that runs Stage 1 end to end (defaults: the SynthClinic CPU preset).

    The defaults were chosen by measurement on a 2-core CPU (BENCHMARKS.md, Stage 1): ``gamma`` < 1 makes the
    search put the most informative questions first and answer once the case is settled (shorter trajectories, a
    sharper imitation target, half the search and SFT time at the same accuracy); five epochs at batch 16 bring the
    small doctor's held-out loss to within 0.01 of where more epochs end; ``no_repeat`` replaces a repeated question
    by the model's best new one at evaluation (a decoding rule; the small doctor learns which questions matter
    faster than it learns not to repeat itself).
    """

    train_cases: int = field(default=2000, metadata={"help": "SynthClinic training cases searched by MCTS."})
    test_cases: int = field(default=500, metadata={"help": "SynthClinic test cases for the evaluation."})
    iterations: int = field(default=32, metadata={"help": "MCTS iterations per case."})
    width: int = field(default=4, metadata={"help": "Candidates expanded per node."})
    max_questions: int = field(default=5, metadata={"help": "Question budget (search depth and evaluation)."})
    gamma: float = field(default=0.9, metadata={"help": "MCTS discount: < 1 favours informative questions early "
                                                        "and answering once the case is settled."})
    top_k: int = field(default=1, metadata={"help": "Trajectories kept per training case."})
    lam: float = field(default=0.5, metadata={"help": "SIG blend (0 = uniform information gain)."})
    weighting: str = field(default="positive", metadata={"help": "Shapley -> importance weights: positive or "
                                                                 "softmax (the reference's)."})
    sig: bool = field(default=True, metadata={"help": "Search with SIG step rewards (False: correctness only)."})
    epochs: float = field(default=5.0, metadata={"help": "SFT epochs."})
    batch_size: int = field(default=16, metadata={"help": "SFT sequences per step."})
    learning_rate: float = field(default=3e-3, metadata={"help": "SFT peak learning rate (model trained from "
                                                                 "scratch)."})
    sft_threads: int | None = field(default=2, metadata={"help": "torch threads for SFT of the small model."})
    no_repeat: int = field(default=8, metadata={"help": "Evaluation: a repeated question is replaced by the best "
                                                        "new one among the model's N best beams (0 = off)."})
    baselines: tuple[str, ...] = field(default=("reactive", "random-5", "greedy-eig", "full-info"),
                                       metadata={"help": "Baseline doctors evaluated beside the fine-tuned one."})
    seed: int = field(default=0, metadata={"help": "Seed of every step."})
    out: Path = field(default=Path("runs/stage1"), metadata={"help": "Output directory (mcts/, sft/, eval/)."})

    def mcts_config(self, out: Path | None = None):
        from promed.search.run import MctsRunConfig

        return MctsRunConfig(data=DataConfig(split="train", limit=self.train_cases), iterations=self.iterations,
                             width=self.width, max_questions=self.max_questions, gamma=self.gamma, lam=self.lam,
                             weighting=self.weighting, sig_enabled=self.sig, top_k=self.top_k, seed=self.seed,
                             out=out or self.out / "mcts")

    def sft_config(self, progress: bool = True):
        from promed.train.sft import SFTRunConfig

        return SFTRunConfig(epochs=self.epochs, batch_size=self.batch_size, learning_rate=self.learning_rate,
                            seed=self.seed, num_threads=self.sft_threads, progress_bar=progress)

    def eval_config(self, doctors: tuple[str, ...], out: Path | None = None) -> EvalConfig:
        return EvalConfig(data=DataConfig(split="test", limit=self.test_cases), doctors=doctors,
                          env=EnvConfig(max_questions=self.max_questions), no_repeat=self.no_repeat,
                          seed=self.seed, out=out or self.out / "eval")


def peak_rss_mib() -> float:
    """Peak resident memory of this process and its finished children, in MiB (Linux reports KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024


def run_stage1(cfg: Stage1Config, progress: bool = True) -> dict:
    from promed.eval.evaluate import run_eval
    from promed.search.run import run_mcts
    from promed.train.sft import run_sft

    out = Path(cfg.out)
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    mcts = run_mcts(cfg.mcts_config(), progress=progress)
    times["mcts_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    sft = run_sft(out / "mcts" / "trajectories.jsonl", out / "sft", cfg.sft_config(progress))
    times["sft_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    doctor = f"llm:{out / 'sft'}"
    asker = f"ask:{out / 'sft'}"  # the same policy's questions, answered by the scorer like the baselines
    results = run_eval(cfg.eval_config((*cfg.baselines, doctor, asker)), progress=progress)
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

