"""``promed eval``: run doctors through consultations and summarise them.

Outputs under ``out/``: ``transcripts/<doctor>.jsonl`` (one chat-format record per case, appended as episodes
end), ``summary.json`` (per doctor: the fields of :class:`promed.eval.metrics.Metrics`), ``table.md`` and
``manifest.json`` (config, versions). Re-running with the same ``out`` resumes: cases already in a doctor's
transcript file are not run again. Every input problem (data file, doctor name, model spec) is detected before
anything is written.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import replace
from pathlib import Path
from typing import Callable

from promed.config import EvalConfig
from promed.data.lineage import check_overlap
from promed.data.sources import load_data
from promed.doctor.registry import DoctorEntry, build_doctor
from promed.env.rollout import Episode, run_consultations
from promed.eval.metrics import Metrics, compute_metrics, group_metrics
from promed.eval.records import transcript_from_json, transcript_to_json
from promed.eval.report import markdown_table
from promed.io import (
    NON_BINDING, JsonlAppender, atomic_write_json, atomic_write_lines, atomic_write_text, check_out_dir, data_fingerprint, load_jsonl,
    prepare_run, safe_name, start_run,
)
from promed.runtime import RunModels, check_scorer_fits, is_synthetic
from promed.sig.cache import EstimatorChoice, check_estimator_budget
from promed.types import Case, Transcript


# An episode's result depends only on (seed, case, sample), not on how it was batched, and each doctor has its
# own records: neither binds an evaluation's directory.
EVAL_NON_BINDING = NON_BINDING | {"batch_size", "doctors", "allow_overlap"}


def run_eval(cfg: EvalConfig, progress: bool = True, sig_annotator=None) -> dict[str, Metrics]:
    """Evaluate every doctor in ``cfg.doctors`` on the configured cases; write and return the summary.

    ``sig_annotator(case, transcript) -> transcript`` fills each turn's SIG (see :mod:`promed.sig.annotate`).
    """
    loaded = load_data(cfg.data)
    cases = loaded.cases
    models = RunModels(cfg.model, cfg.scorer, cfg.patient, is_synthetic(cfg.data.data, cases),
                       server=cfg.server)
    overlaps = {name: check_overlap(name, name[4:], cases, cfg.allow_overlap) for name in cfg.doctors
                if name.startswith(("llm:", "ask:"))}  # the contamination guard: an InputError before any write
    entries = [build_doctor(name, models.scorer, models.llm, models.load_llm, cfg.no_repeat) for name in cfg.doctors]
    out = Path(cfg.out)
    check_out_dir(out)
    if cfg.scorer is not None or models.synthetic:
        check_scorer_fits(models.scorer_spec(), models.synthetic, cfg.data.data)
    if cfg.sig_enabled:
        check_estimator_budget(EstimatorChoice(cfg.estimator), cases, cheap=models.scorer_spec() == "bayes")
    run_manifest = prepare_run(out, cfg, "eval", data_fingerprint(cases, cfg.data.data), cfg.overwrite,
                               EVAL_NON_BINDING)  # nothing written yet
    patient = models.patient()
    scorer = models.scorer() if cfg.sig_enabled and sig_annotator is None and cases else None

    start_run(out, run_manifest, cfg.overwrite)  # the first bytes this run writes
    (out / "transcripts").mkdir(parents=True, exist_ok=True)
    own_annotator = None
    if scorer is not None:
        from promed.sig.annotate import SigAnnotator

        sig_annotator = own_annotator = SigAnnotator.for_eval(scorer, cfg.estimator, out / "shapley.jsonl", cfg.seed)
    by_id = {c.id: c for c in cases}
    results: dict[str, Metrics] = {}
    try:
        for entry in entries:
            metrics = _run_doctor(entry, cases, by_id, patient, cfg, out, progress, sig_annotator, loaded.skipped)
            results[entry.name] = dataclasses.replace(metrics, overlap=overlaps.get(entry.name, 0))
    finally:
        if own_annotator is not None:
            own_annotator.close()
    atomic_write_json(out / "summary.json", {name: m.to_json() for name, m in results.items()})
    atomic_write_text(out / "table.md", f"Cases: {cfg.data.data}, split {cfg.data.split}, {len(cases)} cases, "
                                        f"budget {cfg.env.max_questions}\n\n" + markdown_table(results))
    from promed.eval.figures import plot_accuracy_vs_questions

    plot_accuracy_vs_questions(results, out / "accuracy_vs_questions.png",
                               title=f"{cfg.data.data}: accuracy vs questions (budget {cfg.env.max_questions})")
    return results


def _run_doctor(entry: DoctorEntry, cases: list[Case], by_id: dict[str, Case], patient, cfg: EvalConfig, out: Path,
                progress: bool, sig_annotator, skipped: dict[str, int]) -> Metrics:
    """The greedy run (``<doctor>.jsonl``) and, with ``--samples``/``--temperature``, the sampled groups
    (``<doctor>.samples.jsonl``); both resume by ``(case id, sample index)``."""
    env_cfg = dataclasses.replace(cfg.env, reveal_all=entry.reveal_all)
    path = out / "transcripts" / f"{safe_name(entry.name)}.jsonl"
    trs, n_facts = _run_records(path, [Episode(c) for c in cases], entry.doctor, entry.name, by_id, patient,
                                env_cfg, cfg, progress, sig_annotator)
    metrics = compute_metrics(trs, n_facts, skipped, with_sig=sig_annotator is not None)
    if cfg.samples > 1 or cfg.temperature > 0:
        doctor = entry.doctor
        if hasattr(doctor, "with_sampling"):
            doctor = doctor.with_sampling(replace(doctor.sampling, temperature=cfg.temperature))
        spath = out / "transcripts" / f"{safe_name(entry.name)}.samples.jsonl"
        episodes = [Episode(c, s) for c in cases for s in range(cfg.samples)]
        strs, _ = _run_records(spath, episodes, doctor, f"{entry.name} x{cfg.samples}", by_id, patient, env_cfg, cfg,
                               progress, sig_annotator)
        g = cfg.samples  # episodes are case-major: each case's samples are contiguous
        mean, pass_k = group_metrics([strs[i * g:(i + 1) * g] for i in range(len(cases))])
        metrics = dataclasses.replace(metrics, samples=cfg.samples, sampled_accuracy=mean, pass_at_k=pass_k)
    return metrics


def _run_records(path: Path, episodes: list[Episode], doctor, label: str, by_id: dict[str, Case], patient,
                 env_cfg, cfg: EvalConfig, progress: bool, sig_annotator) -> tuple[list[Transcript], list[int]]:
    """Run the episodes not yet in ``path`` (appending each as it ends); return every wanted record, in order.

    Records are appended as episodes end (completion order); once all are there the file is rewritten in episode
    order, so a resumed run's file is byte for byte the uninterrupted run's."""
    done = {(r["id"], int(r.get("sample", 0))) for r in load_jsonl(path)}  # repairs a torn last line
    todo = [e for e in episodes if (e.case.id, e.sample) not in done]
    with JsonlAppender(path, repair=False) as sink, _progress(progress, label, len(episodes), len(episodes) - len(todo)) as tick:
        def on_done(tr: Transcript) -> None:
            case = by_id[tr.case_id]
            if sig_annotator is not None:
                tr = sig_annotator(case, tr)
            sink.write(transcript_to_json(case, tr, env_cfg.max_questions))
            tick()

        run_consultations(todo, doctor, patient, env_cfg, seed=cfg.seed, batch_size=cfg.batch_size, on_done=on_done)
    lines, recs = {}, {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            r = json.loads(line)
            key = (r["id"], int(r.get("sample", 0)))
            lines[key], recs[key] = line, r
    order = [(e.case.id, e.sample) for e in episodes]
    if list(lines) != order and set(lines) == set(order):  # completion order -> case order: resumed == uninterrupted
        atomic_write_lines(path, [lines[k] for k in order])
    pairs = [transcript_from_json(recs[k]) for k in order]
    return [t for t, _ in pairs], [n for _, n in pairs]


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
