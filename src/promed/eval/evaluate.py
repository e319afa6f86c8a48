"""``promed eval``: run doctors through consultations and summarise them.

Outputs under ``out/``: ``transcripts/<doctor>.jsonl`` (one chat-format record per case, appended as episodes
end), ``summary.json`` (per doctor: the fields of :class:`promed.eval.metrics.Metrics`), ``table.md`` and
``manifest.json`` (config, versions). Re-running with the same ``out`` resumes: cases already in a doctor's
transcript file are not run again. Every input problem (data file, doctor name, model spec) is detected before
anything is written.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Callable

from promed.config import EvalConfig
from promed.data.sources import load_data
from promed.doctor.registry import DoctorEntry, build_doctor
from promed.env.rollout import run_episodes
from promed.eval.metrics import Metrics, compute_metrics
from promed.eval.records import transcript_from_json, transcript_to_json
from promed.eval.report import markdown_table
from promed.io import JsonlAppender, atomic_write_json, atomic_write_text, manifest, read_jsonl, repair_jsonl
from promed.runtime import RunModels, is_synthetic
from promed.types import Case, Transcript


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "doctor"


def run_eval(cfg: EvalConfig, progress: bool = True, sig_annotator=None) -> dict[str, Metrics]:
    """Evaluate every doctor in ``cfg.doctors`` on the configured cases; write and return the summary.

    ``sig_annotator(case, transcript) -> transcript`` fills each turn's SIG (see :mod:`promed.sig.annotate`).
    """
    loaded = load_data(cfg.data)
    cases = loaded.cases
    models = RunModels(cfg.model, cfg.scorer, cfg.patient, is_synthetic(cfg.data.data, cases))
    entries = [build_doctor(name, models.scorer, models.llm, models.load_llm, cfg.no_repeat) for name in cfg.doctors]
    if cfg.sig and sig_annotator is None and cases:
        from promed.sig.annotate import SigAnnotator

        sig_annotator = SigAnnotator.for_eval(models.scorer(), cfg.estimator, cfg.out / "shapley.jsonl", cfg.seed)
    patient = models.patient()

    out = Path(cfg.out)
    (out / "transcripts").mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "manifest.json", manifest(cfg, "eval"))
    by_id = {c.id: c for c in cases}
    results: dict[str, Metrics] = {}
    for entry in entries:
        results[entry.name] = _run_doctor(entry, cases, by_id, patient, cfg, out, progress, sig_annotator,
                                          loaded.skipped)
    atomic_write_json(out / "summary.json", {name: m.to_json() for name, m in results.items()})
    atomic_write_text(out / "table.md", markdown_table(results))
    from promed.eval.figures import plot_accuracy_vs_questions

    plot_accuracy_vs_questions(results, out / "accuracy_vs_questions.png",
                               title=f"{cfg.data.data}: accuracy vs questions (budget {cfg.env.max_questions})")
    return results


def _run_doctor(entry: DoctorEntry, cases: list[Case], by_id: dict[str, Case], patient, cfg: EvalConfig, out: Path,
                progress: bool, sig_annotator, skipped: dict[str, int]) -> Metrics:
    path = out / "transcripts" / f"{safe_name(entry.name)}.jsonl"
    repair_jsonl(path)
    done = {rec["id"] for rec in read_jsonl(path)}
    todo = [c for c in cases if c.id not in done]
    env_cfg = dataclasses.replace(cfg.env, reveal_all=entry.reveal_all)
    with JsonlAppender(path) as sink, _progress(progress, entry.name, len(cases), len(cases) - len(todo)) as tick:
        def on_done(tr: Transcript) -> None:
            case = by_id[tr.case_id]
            if sig_annotator is not None:
                tr = sig_annotator(case, tr)
            sink.write(transcript_to_json(case, tr, env_cfg.max_questions))
            tick()

        run_episodes(todo, entry.doctor, patient, env_cfg, seed=cfg.seed, batch_size=cfg.batch_size, on_done=on_done)
    records = [transcript_from_json(rec) for rec in read_jsonl(path) if rec["id"] in by_id]
    trs = [t for t, _ in records]
    return compute_metrics(trs, [n for _, n in records], skipped, with_sig=sig_annotator is not None)


class _progress:
    """A rich progress bar for one doctor's consultations (a no-op when disabled)."""

    def __init__(self, enabled: bool, name: str, total: int, completed: int):
        self.enabled, self.name, self.total, self.completed = enabled, name, total, completed

    def __enter__(self) -> Callable[[], None]:
        if not self.enabled:
            return lambda: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeRemainingColumn(), transient=False)
        self.bar.start()
        task = self.bar.add_task(self.name, total=self.total, completed=self.completed)
        return lambda: self.bar.advance(task)

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.bar.stop()
