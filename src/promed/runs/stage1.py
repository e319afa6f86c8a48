"""Whole stages in one command: ``promed stage1`` runs pretraining -> search -> SFT -> evaluation.

Stage 0 (SynthClinic only, :mod:`promed.train.pretrain`): the small doctor learns medicine from generated train-split
vignettes and becomes a knowledgeable, reactive doctor (``out/pretrain``; skipped once its checkpoint is complete,
or replaced by ``--pretrained CKPT``, or left out with ``--from-scratch``). Stage 1 (paper section 3): SIG-guided
MCTS over training consultations writes the best trajectories, their answer turns in the pretrained doctor's answer
format (``ANSWER: <option text>``); the pretrained doctor is fine-tuned on them (loss on doctor turns only) and
evaluated next to the baselines on the test split twice: answering on its own (``llm:``, the headline) and asking
while the scorer answers (``ask:``, a diagnostic), which is how the baselines answer. Each step writes into its own
folder under ``out`` and resumes, so an interrupted stage re-runs only what is missing. ``stage1.json`` records the
resolved config, the wall time of each step and the peak memory of the process; ``manifest.json`` the config and
library versions.
"""

from __future__ import annotations

import dataclasses
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

from promed.config import EvalConfig
from promed.data.sources import DataConfig
from promed.env.consultation import EnvConfig
from promed.errors import InputError
from promed.eval.metrics import Metrics
from promed.io import JsonRecord, atomic_write_json, manifest
from promed.runs.mcts import MctsRunConfig, MctsSummary
from promed.runs.pretrain import PretrainSummary
from promed.search.mcts import MctsConfig
from promed.sig.reward import SigConfig
from promed.train.pretrain import PretrainConfig
from promed.train.sft import SFTResult, SFTRunConfig

PRESETS = ("synthclinic",)


@dataclass(frozen=True)
class Stage1Config:
    """``promed stage1``: the preset that runs Stage 1 end to end (defaults: the SynthClinic CPU preset).

    The stage configs are nested (``search``, ``sig``, ``sft``); the preset's own values are the defaults given
    here, chosen by measurement on a 2-core CPU (BENCHMARKS.md, Stage 1): ``search.gamma`` 0.9 makes the search put
    the most informative questions first and answer once the case is settled (shorter trajectories, a sharper
    imitation target, half the search and SFT time at the same accuracy); five SFT epochs at batch 16 and lr 3e-3
    bring the small doctor's held-out loss to within 0.01 of where more epochs end; ``no_repeat`` replaces a
    repeated question by the model's best new one at evaluation (a decoding rule; the small doctor learns which
    questions matter faster than it learns not to repeat itself). ``search.max_questions`` is the question budget
    of the search and of the evaluation.
    """

    preset: str = field(default="synthclinic", metadata={"help": "Preset: synthclinic (the CPU preset: MCTS on "
                                                                 "SynthClinic train cases, SFT of the small doctor, "
                                                                 "eval on the test split)."})
    train_cases: int = field(default=2000, metadata={"help": "SynthClinic training cases searched by MCTS."})
    test_cases: int = field(default=500, metadata={"help": "SynthClinic test cases for the evaluation."})
    search: MctsConfig = field(default_factory=lambda: MctsConfig(gamma=0.9),
                               metadata={"help": "MCTS settings (the preset: gamma 0.9)."})
    sig: SigConfig = field(default_factory=SigConfig, metadata={"help": "SIG step reward of the search."})
    sig_enabled: bool = field(default=True, metadata={"help": "Search with SIG step rewards (false: correctness "
                                                              "only)."})
    top_k: int = field(default=1, metadata={"help": "Trajectories exported per training case (more: better "
                                                    "questions, longer SFT)."})
    sft: SFTRunConfig = field(
        default_factory=lambda: SFTRunConfig(epochs=5.0, batch_size=16, learning_rate=3e-3, num_threads=2),
        metadata={"help": "SFT of the doctor (the preset: synthclinic-small, 5 epochs, batch 16, lr 3e-3, 2 "
                          "threads); its seed and progress bar are the stage's."},
    )
    pretrain: PretrainConfig = field(default_factory=lambda: PretrainConfig(num_threads=2),
                                     metadata={"help": "Stage 0: pretraining of the small doctor (its out is "
                                                       "OUT/pretrain; its own seed)."})
    pretrained: Path | None = field(default=None, metadata={"help": "Start SFT from this pretrained doctor "
                                                                    "checkpoint (a promed pretrain OUT) instead of "
                                                                    "pretraining one in OUT/pretrain."})
    from_scratch: bool = field(default=False, metadata={"help": "No pretraining: SFT a freshly initialised "
                                                                "synthclinic-small on the trajectories (answers as "
                                                                "letters; the Stage 1 of before Stage 0)."})
    no_repeat: int = field(default=8, metadata={"help": "Evaluation: replace a repeated question by the best new "
                                                        "one among the model's N best beams (0 = off)."})
    baselines: tuple[str, ...] = field(default=("reactive", "random-5", "greedy-eig", "full-info"),
                                       metadata={"help": "Baseline doctors evaluated beside the fine-tuned one."})
    seed: int = field(default=0, metadata={"help": "Seed of every step."})
    out: Path = field(default=Path("runs/stage1"), metadata={"help": "Output directory (mcts/, sft/, eval/; "
                                                                     "re-running resumes every step)."})

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise InputError(f"unknown preset {self.preset!r}: available: {', '.join(PRESETS)}")
        for name, value in (("train-cases", self.train_cases), ("test-cases", self.test_cases), ("top-k", self.top_k)):
            if value < 1:
                raise InputError(f"--{name} must be >= 1, got {value}")
        if self.from_scratch and self.pretrained is not None:
            raise InputError("--from-scratch and --pretrained exclude each other")

    def pretrain_config(self, progress: bool = True) -> PretrainConfig:
        return dataclasses.replace(self.pretrain, out=self.out / "pretrain", progress_bar=progress)

    def pretrained_dir(self) -> Path | None:
        """The checkpoint SFT starts from (None: a fresh synthclinic-small)."""
        if self.from_scratch:
            return None
        return Path(self.pretrained) if self.pretrained is not None else self.out / "pretrain"

    def answer_format(self) -> str:
        """The answer turn of the exported trajectories: the pretrained doctor's (a fresh doctor: letters)."""
        if self.from_scratch:
            return "letter"
        if self.pretrained is not None:
            from promed.runs.pretrain import checkpoint_answer_format

            return checkpoint_answer_format(Path(self.pretrained))
        return self.pretrain.answer_format

    def mcts_config(self, out: Path | None = None) -> MctsRunConfig:
        return MctsRunConfig(data=DataConfig(split="train", limit=self.train_cases), search=self.search,
                             sig=self.sig, sig_enabled=self.sig_enabled, top_k=self.top_k, seed=self.seed,
                             answer_format=self.answer_format(), out=out or self.out / "mcts")

    def sft_config(self, progress: bool = True) -> SFTRunConfig:
        start = self.pretrained_dir()
        model = self.sft.model if start is None else f"hf:{start}"
        return dataclasses.replace(self.sft, model=model, seed=self.seed, progress_bar=progress)

    def eval_config(self, doctors: tuple[str, ...], out: Path | None = None) -> EvalConfig:
        return EvalConfig(data=DataConfig(split="test", limit=self.test_cases), doctors=doctors,
                          env=EnvConfig(max_questions=self.search.max_questions), no_repeat=self.no_repeat,
                          seed=self.seed, out=out or self.out / "eval")


def peak_rss_mib() -> float:
    """Peak resident memory of this process and its finished children, in MiB (Linux reports KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024


@dataclass(frozen=True)
class SftBrief(JsonRecord):
    """An SFT step of a pipeline: optimizer steps, last logged loss, examples trained on, wall time."""

    steps: int
    final_loss: float | None
    examples: int
    wall_s: float

    @classmethod
    def of(cls, res: SFTResult) -> "SftBrief":
        return cls(steps=res.steps, final_loss=res.losses[-1] if res.losses else None, examples=res.n_examples,
                   wall_s=res.wall_s)


@dataclass(frozen=True)
class Stage1Summary(JsonRecord):
    """What ``promed stage1`` did (``stage1.json``): the resolved config, each step's result (``pretrain`` None
    when a pretrained doctor was given or none is used), every doctor's metrics on the test cases, the fine-tuned
    doctor's spec, each step's wall time in seconds (``pretrain_s`` None without pretraining) and the peak memory."""

    config: dict
    pretrain: PretrainSummary | None
    mcts: MctsSummary
    sft: SftBrief
    eval: dict[str, Metrics]
    sft_doctor: str
    pretrain_s: float | None
    mcts_s: float
    sft_s: float
    eval_s: float
    total_s: float
    peak_rss_mib: float

    def to_json(self) -> dict:
        rec = super().to_json()
        if self.pretrain_s is None:
            del rec["pretrain_s"]
        return rec


def run_stage1(cfg: Stage1Config, progress: bool = True) -> Stage1Summary:
    from promed.eval.evaluate import run_eval
    from promed.runs.mcts import run_mcts
    from promed.train.sft import run_sft

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    resolved = manifest(cfg, "stage1")
    atomic_write_json(out / "manifest.json", resolved)
    times: dict[str, float] = {}
    pretrain: PretrainSummary | None = None
    if not cfg.from_scratch and cfg.pretrained is None:
        from promed.runs.pretrain import run_pretrain_command

        t0 = time.perf_counter()
        pretrain = run_pretrain_command(cfg.pretrain_config(progress), progress=progress)
        times["pretrain_s"] = time.perf_counter() - t0
        if not pretrain.completed:
            raise RuntimeError(f"pretraining stopped before its last step ({out / 'pretrain'}); re-run to resume")
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

    seconds = {k: round(v, 1) for k, v in times.items()}
    summary = Stage1Summary(
        config=resolved["config"], pretrain=pretrain, mcts=mcts, sft=SftBrief.of(sft), eval=dict(results),
        sft_doctor=doctor, pretrain_s=seconds.get("pretrain_s"), mcts_s=seconds["mcts_s"], sft_s=seconds["sft_s"],
        eval_s=seconds["eval_s"], total_s=round(sum(times.values()), 1), peak_rss_mib=round(peak_rss_mib(), 1),
    )
    atomic_write_json(out / "stage1.json", summary)
    return summary

