"""``promed grpo``: Stage 2, GRPO over consultations with SIG credit (or the outcome-only baseline).

:class:`GrpoCommandConfig` is :class:`promed.train.grpo.GRPORunConfig` (every training setting) plus the output
directory, so that ``--config FILE.toml`` can hold it too and ``manifest.json`` records everything that produced the
checkpoint. The training is :func:`promed.train.grpo.run_grpo` (resumes from the latest checkpoint in ``out``);
``summary.json`` holds its result (steps, wall and rollout times, Shapley preparation, peak memory) and the last
logged step.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from promed.io import atomic_write_json, manifest
from promed.train.grpo import GRPORunConfig, load_cases, run_grpo


@dataclass(frozen=True)
class GrpoCommandConfig(GRPORunConfig):
    """``promed grpo``: the training settings and the output directory (required)."""

    out: Path | None = field(default=None, metadata={"help": "Checkpoint directory (re-running resumes from its "
                                                             "latest checkpoint). Required."})


def check_model_spec(spec: str) -> None:
    """A trainable model spec whose local checkpoint exists (checked before anything is computed or written)."""
    from promed.llm.base import SpecError, parse_spec

    parsed = parse_spec(spec)
    if parsed.kind not in ("hf", "gguf"):
        raise SpecError(f"--model {spec!r}: GRPO trains hf:<id or dir>, gguf:<file> or gemma-270m")
    target = parsed.target
    local = target.startswith((".", "/", "~")) or Path(target).exists() or target.count("/") > 1
    if parsed.kind == "hf" and local and not (Path(target).expanduser() / "config.json").is_file():
        raise FileNotFoundError(f"--model {spec!r}: {target} is not a checkpoint directory (no config.json)")
    if parsed.kind == "gguf" and target != "gemma-270m" and not Path(target).expanduser().is_file():
        raise FileNotFoundError(f"--model {spec!r}: no such file")


def run_grpo_command(cfg: GrpoCommandConfig, progress: bool = True) -> dict:
    """Check the inputs, write ``out/manifest.json``, train, write ``out/summary.json``; return the summary."""
    missing = [f"--{name}" for name in ("model", "out") if not getattr(cfg, name)]
    if missing:
        raise ValueError(f"missing {' and '.join(missing)} (give it on the command line or in --config)")
    if cfg.shapley is not None and not Path(cfg.shapley).is_file():
        raise FileNotFoundError(f"{cfg.shapley}: no such file (--shapley takes a promed sig shapley.jsonl)")
    check_model_spec(cfg.model)
    cases = load_cases(cfg)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "manifest.json", manifest(cfg, "grpo"))
    res = run_grpo(cfg, out, progress=progress, cases=cases)
    summary = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(res).items() if k != "log"}
    summary["last_step"] = res.log[-1] if res.log else None
    summary["reward"] = cfg.reward
    atomic_write_json(out / "summary.json", summary)
    return summary
