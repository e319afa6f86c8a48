"""``promed pretrain``: Stage 0 on SynthClinic, the small doctor that knows medicine before it learns to ask.

The settings are :class:`promed.train.pretrain.PretrainConfig` (every field with help; the command exposes the
common ones, the rest through ``--config``); the training is :func:`promed.train.pretrain.run_pretrain`. Outputs
under ``out/``: the final Hugging Face checkpoint (``hf:OUT``, ``--doctor llm:OUT``), ``base/`` (the tokenizer and
untrained model), ``checkpoints/``, ``loss.png``, ``train_log.json``, ``summary.json`` and ``manifest.json``.

Like every runner, the directory is bound to its settings (:func:`promed.io.prepare_run`): re-running with the same
settings resumes from the latest checkpoint, other settings are refused unless ``--overwrite``. The run-control
fields ``stop_after_steps`` (a time box) and ``resume`` do not bind it (``promed.io.NON_BINDING``), so a time-boxed
run is continued by the same command without ``--stop-after-steps``. A completed run is not repeated: re-running
the same command returns its summary without generating the data again (what ``promed stage1`` relies on).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, replace
from pathlib import Path

from promed.io import JsonRecord, atomic_write_json, check_out_dir, data_fingerprint, prepare_run, start_run
from promed.train.pretrain import DEFAULT_ANSWER_FORMAT, PretrainConfig, run_pretrain


def checkpoint_answer_format(ckpt: Path) -> str:
    """The answer format a ``promed pretrain`` checkpoint was trained to write (the config in its manifest or
    training log; else the default)."""
    runs = (ckpt, ckpt.parent.parent)  # the run, or one of its checkpoints
    for p in (d / name for d in runs for name in ("manifest.json", "train_log.json")):
        if p.is_file():
            fmt = (json.loads(p.read_text(encoding="utf-8")).get("config") or {}).get("answer_format")
            if fmt:
                return str(fmt)
    return DEFAULT_ANSWER_FORMAT


@dataclass(frozen=True)
class PretrainSummary(JsonRecord):
    """What ``promed pretrain`` did (``summary.json``): ``model_dir`` is ``out`` once ``completed``, else the last
    checkpoint; ``skipped``: the run had completed before and was not repeated (not stored in its own
    ``summary.json``)."""

    completed: bool
    model_dir: str
    steps: int
    params: int
    examples: int
    dropped_too_long: int
    final_loss: float | None
    data_seconds: float
    wall_seconds_this_run: float
    resumed_from: str | None
    skipped: bool = False


def _completed_summary(out: Path) -> PretrainSummary | None:
    """The summary of a run in ``out`` that already finished (its final model written), else None."""
    path = out / "summary.json"
    if not (path.is_file() and (out / "config.json").is_file()):
        return None
    rec = json.loads(path.read_text(encoding="utf-8"))
    names = {f.name for f in dataclasses.fields(PretrainSummary)}
    summary = PretrainSummary(**{k: v for k, v in rec.items() if k in names})
    return summary if summary.completed else None


def run_pretrain_command(cfg: PretrainConfig, progress: bool = True) -> PretrainSummary:
    """Check ``--out``, write the manifest, train (resuming), write ``summary.json``; return the summary. A run
    that already completed with these settings is not repeated (its summary comes back with ``skipped`` true)."""
    from promed.data.synthclinic import generate_cases

    out = Path(cfg.out)
    check_out_dir(out)
    first = generate_cases("train", 1, seed=cfg.data_seed)  # the stream is prefix-stable: its first case names it
    run_manifest = prepare_run(out, cfg, "pretrain", data_fingerprint(first, "synthclinic"), cfg.overwrite)
    start_run(out, run_manifest, cfg.overwrite)
    done = _completed_summary(out)
    if done is not None:
        return replace(done, skipped=True)
    res = run_pretrain(replace(cfg, progress_bar=progress and cfg.progress_bar, resume=True), out)
    sft = res.sft
    summary = PretrainSummary(
        completed=sft.completed, model_dir=str(sft.model_dir), steps=sft.steps, params=res.n_params,
        examples=sft.n_examples, dropped_too_long=sft.n_dropped, final_loss=sft.losses[-1] if sft.losses else None,
        data_seconds=res.data_s, wall_seconds_this_run=sft.wall_s,
        resumed_from=str(sft.resumed_from) if sft.resumed_from else None,
    )
    atomic_write_json(out / "summary.json", {k: v for k, v in summary.to_json().items() if k != "skipped"})
    return summary
