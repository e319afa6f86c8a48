"""Run configuration: one dataclass per command, help text on every field.

Stage-specific settings live beside their code and are re-exported here: :class:`EnvConfig` (consultation),
``SigConfig`` (SIG weights), ``MctsConfig`` (search), ``SFTRunConfig`` (fine-tuning). The CLI builds these from its
options; ``--config FILE.toml`` supplies defaults for any field (command-line options win).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar

from promed.env.consultation import EnvConfig

T = TypeVar("T")


@dataclass(frozen=True)
class DataConfig:
    """Which cases to use."""

    data: str = field(default="synthclinic", metadata={"help": "'synthclinic' or a JSONL file (MediQ or generic)."})
    split: str = field(default="test", metadata={"help": "SynthClinic split: train, val or test."})
    limit: int | None = field(default=None, metadata={"help": "Use at most this many cases."})
    initial: str = field(
        default="first-sentence",
        metadata={"help": "Initial-information protocol for MediQ files: first-sentence or first-half-facts."},
    )
    data_seed: int = field(default=0, metadata={"help": "Seed of the SynthClinic generator (0 = the standard benchmark)."})


@dataclass(frozen=True)
class EvalConfig:
    """``promed eval``: evaluate doctors in the consultation environment."""

    data: DataConfig = field(default_factory=DataConfig, metadata={"help": "Cases."})
    doctors: tuple[str, ...] = field(default=("reactive", "full-info"), metadata={"help": "Doctor names."})
    patient: str = field(default="fact", metadata={"help": "Patient simulator: fact (embedding retrieval) or llm."})
    model: str | None = field(
        default=None, metadata={"help": "Model spec for the prompted doctor, LLM patient and (if no --scorer) scorer."}
    )
    scorer: str | None = field(
        default=None, metadata={"help": "'bayes' (SynthClinic exact posterior) or a model spec; default: bayes on "
                                        "SynthClinic, else --model."}
    )
    env: EnvConfig = field(default_factory=EnvConfig, metadata={"help": "Consultation settings."})
    no_repeat: int = field(default=0, metadata={"help": "LLM doctors: replace a repeated question by the most likely "
                                                        "new one among the model's N best (0 = off)."})
    sig: bool = field(default=True, metadata={"help": "Annotate every question with its SIG (needs the scorer)."})
    estimator: str = field(default="auto", metadata={"help": "Shapley estimator for SIG: auto, exact, permutation, "
                                                            "kernel or reference."})
    seed: int = field(default=0, metadata={"help": "Run seed (rollouts, random doctors, forced answers)."})
    batch_size: int = field(default=64, metadata={"help": "Consultations stepped together."})
    out: Path = field(default=Path("runs/eval"), metadata={"help": "Output directory."})


def load_toml_defaults(path: Path | None, cls: type[T], base: T) -> T:
    """Overlay the top-level keys of a TOML file that name fields of ``cls`` onto ``base``."""
    if path is None:
        return base
    with Path(path).open("rb") as fh:
        raw: dict[str, Any] = tomllib.load(fh)
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ValueError(f"{path}: unknown settings {unknown}; known: {sorted(names)}")
    return replace(base, **raw)
