"""``promed run --preset synthclinic``: the whole method in one resumable command.

pretrain (Stage 0) -> MCTS (Stage 1 search) -> SFT -> GRPO arms from the same SFT checkpoint (by default ProMed's
SIG credit in its ``sig-mixed`` form and the outcome-only baseline; the Shapley values of the training cases computed
once and shared by every arm) -> evaluation of every doctor answering on its own beside the baselines -> the ablation
table (``ablation.md``, ``ablation.json``), ``grpo_curves.png`` (the learning curves of every arm in one figure) and
``eval/accuracy_vs_questions.png`` (accuracy against questions asked, 95% intervals). Every trained doctor is a
Hugging Face checkpoint in a directory named for its arm (``pretrain/``, ``sft/``, ``grpo-sig-mixed/``,
``grpo-outcome/``), loadable by ``promed eval --doctor llm:<dir>``. Each step writes into its own folder and resumes
(a finished step is not repeated), so an interrupted run re-runs only what is missing. ``run.json`` records the
resolved config, the wall time of each step and the peak memory after it.

``--ablation`` adds the ablation rows of the paper's table, each a variant of the SIG arm trained on the same
rollout seeds with the same Shapley values (:data:`ABLATIONS`; e.g. ``grpo-sig-mixed-lam0/``). They are off by
default: each costs one more GRPO arm and its evaluation (up to 8 + 6 minutes on 2 cores), and the default run is
sized to fit an hour.

``--quick`` is a first look: 1,000 pretraining cases, 100 MCTS cases, 10 GRPO steps of 4 cases (over 40 training
cases), 200 test cases (9 min on 2 cores); it checks that every stage runs and writes its files, and its doctors
learn nothing (at chance: BENCHMARKS.md).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

from promed.config import EvalConfig
from promed.data.sources import DataConfig
from promed.env.consultation import EnvConfig
from promed.errors import InputError
from promed.eval.metrics import Metrics
from promed.io import JsonRecord, atomic_write_json, atomic_write_text, manifest
from promed.runs.grpo import GrpoCommandConfig, GrpoSummary, run_grpo_command
from promed.runs.mcts import MctsSummary
from promed.runs.pretrain import PretrainSummary
from promed.runs.stage1 import PRESETS, SftBrief, Stage1Config, peak_rss_mib
from promed.train.advantages import CREDITS
from promed.train.grpo import GRPORunConfig, plot_curves, read_log

ARM_DIR = "grpo-{}"

ABLATIONS: dict[str, str] = {
    "lam0": "uniform information gain: SIG with lam 0, every new fact earns 1/n (no Shapley values)",
    "softmax": "the reference's importance weights, softmax(phi / 2), instead of the positive part of phi",
    "no-stage1": "Stage 2 straight from the pretrained doctor (no MCTS, no SFT)",
}
"""Ablations of ProMed's SIG arm (``--ablation``): name -> what changes."""


@dataclass(frozen=True)
class RunConfig:
    """``promed run``: every stage of the method on a preset (defaults: the SynthClinic CPU preset)."""

    preset: str = field(default="synthclinic", metadata={"help": "Preset: synthclinic (the CPU preset)."})
    stage1: Stage1Config = field(default_factory=Stage1Config,
                                 metadata={"help": "Stages 0 and 1 (pretraining, MCTS, SFT): promed stage1's settings; "
                                                   "its out, seed and evaluation are this run's."})
    grpo: GRPORunConfig = field(default_factory=GRPORunConfig,
                                metadata={"help": "Stage 2 settings shared by every arm (model: OUT/sft; credit: per "
                                                  "arm)."})
    arms: tuple[str, ...] = field(default=("sig-mixed", "outcome"),
                                  metadata={"help": "GRPO arms, each a --credit value, trained from the same SFT "
                                                    "checkpoint into OUT/grpo-<arm>. The preset's SIG arm is "
                                                    "sig-mixed: the reference's token scheme (sig) stops the small "
                                                    "doctor asking within 30 steps (BENCHMARKS.md, Stage 2)."})
    ablations: tuple[str, ...] = field(default=(),
                                       metadata={"help": "Ablation rows, each a variant of the first SIG arm trained "
                                                         "into OUT/grpo-<arm>-<name> (up to 14 more minutes each on 2 "
                                                         "cores): " + "; ".join(f"{k} = {v}" for k, v in ABLATIONS.items())
                                                 + "."})
    baselines: tuple[str, ...] = field(default=("reactive", "full-info", "random-5", "abstain-numeric", "greedy-eig"),
                                       metadata={"help": "Baseline doctors of the ablation table."})
    test_cases: int = field(default=1000, metadata={"help": "SynthClinic test cases for the evaluation."})
    no_repeat: int = field(default=8, metadata={"help": "Evaluation of trained doctors: replace a repeated question "
                                                        "by the best new one among the model's N best beams (0 = off)."})
    quick: bool = field(default=False, metadata={"help": "A first look in a few minutes (module docs: what it cuts)."})
    seed: int = field(default=0, metadata={"help": "Seed of every step."})
    out: Path = field(default=Path("runs/promed"), metadata={"help": "Output directory (re-running resumes)."})

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise InputError(f"unknown preset {self.preset!r}: available: {', '.join(PRESETS)}")
        bad = [a for a in self.arms if a not in CREDITS]
        if bad or not self.arms:
            raise InputError(f"--arms: each arm is one of {', '.join(CREDITS)}; got {','.join(self.arms) or 'none'}")
        bad = [a for a in self.ablations if a not in ABLATIONS]
        if bad:
            raise InputError(f"--ablation: each is one of {', '.join(ABLATIONS)}; got {','.join(bad)}")
        if self.ablations and self.sig_arm is None:
            raise InputError("--ablation varies the SIG arm: --arm needs one that is not outcome")
        if self.test_cases < 1:
            raise InputError(f"--test-cases must be >= 1, got {self.test_cases}")

    @property
    def sig_arm(self) -> str | None:
        """The arm the ablations vary: the first one with SIG credit."""
        return next((a for a in self.arms if a != "outcome"), None)

    def arm_rows(self) -> dict[str, str]:
        """Every GRPO arm: its row name (the folder is ``ARM_DIR.format(row)``) -> a ``--credit`` value or an
        :data:`ABLATIONS` name; the main arms first, then the ablations."""
        return {**{a: a for a in self.arms}, **{f"{self.sig_arm}-{name}": name for name in self.ablations}}

    def resolved(self) -> "RunConfig":
        """The config with ``quick``'s cuts applied and the stage configs pointed at this run's folders."""
        cfg = self
        if cfg.quick:
            s1 = cfg.stage1
            cfg = dataclasses.replace(
                cfg, test_cases=min(cfg.test_cases, 200),
                stage1=dataclasses.replace(s1, train_cases=min(s1.train_cases, 100),
                                           pretrain=dataclasses.replace(s1.pretrain, cases=min(s1.pretrain.cases, 1000))),
                grpo=dataclasses.replace(cfg.grpo, steps=min(cfg.grpo.steps, 10),
                                         cases_per_step=min(cfg.grpo.cases_per_step, 4),
                                         data=dataclasses.replace(cfg.grpo.data, limit=40)))
        stage1 = dataclasses.replace(cfg.stage1, out=cfg.out, seed=cfg.seed, pretrained=None, from_scratch=False)
        grpo = dataclasses.replace(cfg.grpo, model=f"hf:{cfg.out / 'sft'}", seed=cfg.seed,
                                   env=EnvConfig(max_questions=stage1.search.max_questions))
        return dataclasses.replace(cfg, stage1=stage1, grpo=grpo)


def arm_config(cfg: RunConfig, arm: str, shapley: Path | None, progress: bool) -> GrpoCommandConfig:
    """The ``promed grpo`` settings of one arm of a resolved run: a ``--credit`` value or an :data:`ABLATIONS` name."""
    fields = {f.name: getattr(cfg.grpo, f.name) for f in dataclasses.fields(GRPORunConfig)}
    if arm in ABLATIONS:
        name, credit = f"{cfg.sig_arm}-{arm}", cfg.sig_arm
        if arm == "lam0":
            fields["sig"] = dataclasses.replace(cfg.grpo.sig, lam=0.0)
        elif arm == "softmax":
            fields["sig"] = dataclasses.replace(cfg.grpo.sig, weighting="softmax")
        else:
            fields["model"] = f"hf:{cfg.out / 'pretrain'}"
    else:
        name, credit = arm, arm
    fields.update(credit=credit, shapley=shapley, progress_bar=progress, out=cfg.out / ARM_DIR.format(name))
    return GrpoCommandConfig(**fields)


@dataclass(frozen=True)
class StepCost(JsonRecord):
    """One step of a run: wall time (s) and the process's peak memory so far (MiB)."""

    wall_s: float
    peak_rss_mib: float


@dataclass(frozen=True)
class RunSummary(JsonRecord):
    """What ``promed run`` did (``run.json``): the resolved config, each step's cost and result, every doctor's
    metrics on the test cases (row name -> metrics, as in ``ablation.md``) and the checkpoints behind the rows."""

    config: dict
    steps: dict[str, StepCost]
    total_s: float
    pretrain: PretrainSummary
    mcts: MctsSummary
    sft: SftBrief
    grpo: dict[str, GrpoSummary]
    doctors: dict[str, Metrics]
    checkpoints: dict[str, Path]


def run_pipeline(cfg: RunConfig, progress: bool = True) -> RunSummary:
    """Run every step (module docs) into ``cfg.out``; write and return ``run.json``'s content."""
    from promed.eval.evaluate import run_eval
    from promed.runs.mcts import run_mcts
    from promed.runs.pretrain import run_pretrain_command
    from promed.train.sft import run_sft

    cfg = cfg.resolved()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    resolved = manifest(cfg, "run")
    atomic_write_json(out / "manifest.json", resolved)
    s1 = cfg.stage1
    steps: dict[str, StepCost] = {}

    def timed(name: str, fn):
        t0 = time.perf_counter()
        result = fn()
        steps[name] = StepCost(wall_s=round(time.perf_counter() - t0, 1), peak_rss_mib=round(peak_rss_mib(), 1))
        return result

    pretrain = timed("pretrain", lambda: run_pretrain_command(s1.pretrain_config(progress), progress=progress))
    if not pretrain.completed:
        raise RuntimeError(f"pretraining stopped before its last step ({out / 'pretrain'}); re-run to resume")
    mcts = timed("mcts", lambda: run_mcts(s1.mcts_config(), progress=progress))
    sft = timed("sft", lambda: run_sft(out / "mcts" / "trajectories.jsonl", out / "sft", s1.sft_config(progress)))
    arms: dict[str, GrpoSummary] = {}
    shared: Path | None = None
    rows = cfg.arm_rows()
    for row, arm in rows.items():
        d = ARM_DIR.format(row)
        arms[row] = timed(d, lambda: run_grpo_command(arm_config(cfg, arm, shared, progress), progress=progress))
        shared = shared or out / d / "shapley.jsonl"
    plot_curves({row: read_log(out / ARM_DIR.format(row) / "log.jsonl") for row in rows}, out / "grpo_curves.png")
    doctors = {"pretrain": out / "pretrain", "mcts-sft": out / "sft",
               **{ARM_DIR.format(row): out / ARM_DIR.format(row) for row in rows}}
    names = (*cfg.baselines, *(f"llm:{d}" for d in doctors.values()))
    results = timed("eval", lambda: run_eval(EvalConfig(
        data=DataConfig(split="test", limit=cfg.test_cases), doctors=names,
        env=EnvConfig(max_questions=s1.search.max_questions), no_repeat=cfg.no_repeat, seed=cfg.seed,
        out=out / "eval"), progress=progress))
    label = {f"llm:{d}": name for name, d in doctors.items()}
    table = {label.get(name, name): m for name, m in results.items()}
    reactive = table.get("reactive")
    atomic_write_text(out / "ablation.md", ablation_markdown(table, reactive.accuracy if reactive else None))
    summary = RunSummary(
        config=resolved["config"], steps=steps, total_s=round(sum(s.wall_s for s in steps.values()), 1),
        pretrain=pretrain, mcts=mcts, sft=SftBrief.of(sft), grpo=arms, doctors=table, checkpoints=doctors,
    )
    atomic_write_json(out / "ablation.json", {"doctors": table, "checkpoints": doctors})
    atomic_write_json(out / "run.json", summary)
    return summary


def ablation_markdown(table: dict, reactive: float | None) -> str:
    """The ablation table: each doctor's own accuracy with its interval, the gain over the reactive doctor, questions
    asked and SIG per question."""
    lines = ["| doctor | accuracy | 95% CI | vs reactive | questions | SIG / question | fact recall |",
             "|---|---|---|---|---|---|---|"]
    for name, m in table.items():
        lo, hi = m.ci95
        gain = f"{(m.accuracy / reactive - 1) * 100:+.0f}%" if reactive else ""
        sig = "" if m.mean_sig is None else f"{m.mean_sig:.3f}"
        lines.append(f"| {name} | {m.accuracy:.3f} | [{lo:.3f}, {hi:.3f}] | {gain} | {m.mean_questions:.2f} | {sig} | "
                     f"{m.fact_recall:.3f} |")
    return "\n".join(lines) + "\n"
