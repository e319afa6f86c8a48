"""``promed grpo``: Stage 2, GRPO over consultations with SIG credit (or the outcome-only baseline).

:class:`GrpoCommandConfig` is :class:`promed.train.grpo.GRPORunConfig` (every training setting) plus the output
directory, so that ``--config FILE.toml`` can hold it too and ``manifest.json`` records everything that produced the
checkpoint. The training is :func:`promed.train.grpo.run_grpo` (resumes from the latest checkpoint in ``out``);
``summary.json`` holds its result (steps, wall and rollout times, Shapley preparation, peak memory) and the last
logged step.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from promed.errors import InputError
from promed.io import JsonRecord, atomic_write_json, manifest
from promed.train.grpo import GRPOResult, GRPORunConfig, load_cases, run_grpo
from promed.train.hf_training import check_trainable_spec


@dataclass(frozen=True)
class GrpoCommandConfig(GRPORunConfig):
    """``promed grpo``: the training settings and the output directory (required)."""

    out: Path | None = field(default=None, metadata={"help": "Checkpoint directory (re-running resumes from its "
                                                             "latest checkpoint). Required."})


@dataclass(frozen=True)
class GrpoSummary(GRPOResult, JsonRecord):
    """What ``promed grpo`` did: :class:`promed.train.grpo.GRPOResult` plus the last logged step (TRL's and our
    ``promed/*`` metrics by name, as in ``log.jsonl``) and the credit; ``summary.json`` holds it without the
    per-step log (that is ``log.jsonl``)."""

    last_step: dict | None = None
    credit: str = ""

    @classmethod
    def of(cls, res: GRPOResult, credit: str) -> "GrpoSummary":
        same = {f.name: getattr(res, f.name) for f in fields(GRPOResult)}
        return cls(**same, last_step=res.log[-1] if res.log else None, credit=credit)

    def to_json(self) -> dict:
        rec = super().to_json()
        del rec["log"]
        return rec


def run_grpo_command(cfg: GrpoCommandConfig, progress: bool = True) -> GrpoSummary:
    """Check the inputs, write ``out/manifest.json``, train, write ``out/summary.json``; return the summary."""
    missing = [f"--{name}" for name in ("model", "out") if not getattr(cfg, name)]
    if missing:
        raise InputError(f"missing {' and '.join(missing)} (give it on the command line or in --config)")
    if cfg.shapley is not None and not Path(cfg.shapley).is_file():
        raise InputError(f"{cfg.shapley}: no such file (--shapley takes a promed sig shapley.jsonl)")
    check_trainable_spec(cfg.model)
    cases = load_cases(cfg)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "manifest.json", manifest(cfg, "grpo"))
    res = run_grpo(cfg, out, progress=progress, cases=cases)
    summary = GrpoSummary.of(res, cfg.credit)
    atomic_write_json(out / "summary.json", summary)
    return summary
