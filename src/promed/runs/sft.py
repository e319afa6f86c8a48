"""``promed sft``: fine-tune a doctor on chat trajectories (loss on doctor turns only).

:class:`SftCommandConfig` is :class:`promed.train.sft.SFTRunConfig` (every training setting, defaults for the CPU
``synthclinic-small`` run) plus the command's paths, so that ``--config FILE.toml`` can hold them too and the run's
``manifest.json`` records everything that produced the checkpoint. The training itself is
:func:`promed.train.sft.run_sft` (resumes from the latest checkpoint in ``out``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from promed.errors import InputError
from promed.io import atomic_write_json, manifest
from promed.train.data import load_chat_jsonl
from promed.train.hf_training import check_trainable_spec
from promed.train.sft import SMALL_SPEC, SFTResult, SFTRunConfig, run_sft


@dataclass(frozen=True)
class SftCommandConfig(SFTRunConfig):
    """``promed sft``: the training settings and the command's input and output paths (both required)."""

    train: Path | None = field(default=None, metadata={"help": "Chat-format trajectories (promed mcts's "
                                                               "trajectories.jsonl). Required."})
    eval: Path | None = field(default=None, metadata={"help": "Held-out trajectories for an eval loss."})
    out: Path | None = field(default=None, metadata={"help": "Checkpoint directory (re-running resumes from its "
                                                             "latest checkpoint). Required."})


def run_sft_command(cfg: SftCommandConfig) -> SFTResult:
    """Check every input (paths, the model spec, the trajectories), then write ``out/manifest.json`` and train (see
    :func:`promed.train.sft.run_sft`); bad input leaves nothing behind."""
    missing = [f"--{name}" for name in ("train", "out") if getattr(cfg, name) is None]
    if missing:
        raise InputError(f"missing {' and '.join(missing)} (give it on the command line or in --config)")
    for path in (cfg.train, cfg.eval):
        if path is not None and not Path(path).is_file():
            raise InputError(f"{path}: no such file")
    if cfg.model != SMALL_SPEC:
        check_trainable_spec(cfg.model)
    for path in (cfg.train, cfg.eval):
        if path is not None:
            load_chat_jsonl(path)  # a malformed file is an input error now, not after the directory exists
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "manifest.json", manifest(cfg, "sft"))
    return run_sft(cfg.train, out, cfg, eval_path=cfg.eval)
