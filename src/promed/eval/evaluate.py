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
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from promed.config import EvalConfig
from promed.data.sources import load_data
from promed.doctor.registry import DoctorEntry, build_doctor
from promed.env.rollout import run_episodes
from promed.eval.metrics import Metrics, compute_metrics
from promed.eval.records import transcript_from_json, transcript_to_json
from promed.eval.report import markdown_table
from promed.io import JsonlAppender, atomic_write_json, atomic_write_text, read_jsonl, repair_jsonl
from promed.types import Case, Transcript


@dataclass
class Models:
    """Lazily built models shared by the doctors, patient and scorer of one run (each loads at most once)."""

    cfg: EvalConfig
    synthetic: bool
    _cache: dict | None = None

    def _get(self, key: str, make: Callable):
        self._cache = self._cache or {}
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def llm(self):
        if not self.cfg.model:
            raise LookupError("this needs a model: pass --model SPEC")
        from promed.llm import load_llm

        return self._get(f"llm:{self.cfg.model}", lambda: load_llm(self.cfg.model))

    def load_llm(self, spec: str):
        from promed.llm import load_llm

        return self._get(f"llm:{spec}", lambda: load_llm(spec))

    def scorer_spec(self) -> str:
        if self.cfg.scorer:
            return self.cfg.scorer
        if self.synthetic:
            return "bayes"
        if self.cfg.model:
            return self.cfg.model
        raise LookupError("real data needs a scorer: pass --scorer SPEC or --model SPEC")

    def scorer(self):
        return self._get("scorer", lambda: make_scorer(self.scorer_spec(), self.load_llm))

    def patient(self):
        if self.cfg.patient == "fact":
            from promed.patient import FactPatient

            return self._get("patient", FactPatient)
        if self.cfg.patient == "llm":
            from promed.patient import LLMPatient

            return self._get("patient", lambda: LLMPatient(self.llm()))
        raise ValueError(f"unknown patient {self.cfg.patient!r}: choose fact or llm")


def make_scorer(spec: str, load_llm: Callable):
    """``bayes`` -> the SynthClinic exact posterior; anything else -> an LLM scoring the options."""
    if spec == "bayes":
        from promed.data.synthclinic import BayesScorer

        return BayesScorer()
    from promed.llm.scorer import LLMScorer

    return LLMScorer(load_llm(spec))


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "doctor"


def run_eval(cfg: EvalConfig, progress: bool = True, sig_annotator=None) -> dict[str, Metrics]:
    """Evaluate every doctor in ``cfg.doctors`` on the configured cases; write and return the summary.

    ``sig_annotator(case, transcript) -> transcript`` fills each turn's SIG (see :mod:`promed.sig.annotate`).
    """
    loaded = load_data(cfg.data)
    cases = loaded.cases
    models = Models(cfg, synthetic=cfg.data.data == "synthclinic" or all(all(o.key for o in c.options) for c in cases))
    entries = [build_doctor(name, models.scorer, models.llm, models.load_llm, cfg.no_repeat) for name in cfg.doctors]
    if cfg.sig and sig_annotator is None and cases:
        from promed.sig.annotate import SigAnnotator

        sig_annotator = SigAnnotator.for_eval(models.scorer(), cfg.estimator, cfg.out / "shapley.jsonl", cfg.seed)
    patient = models.patient()

    out = Path(cfg.out)
    (out / "transcripts").mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "manifest.json", manifest(cfg))
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


def manifest(cfg: EvalConfig) -> dict:
    """What produced a run: its config and the versions of the libraries that matter."""
    import importlib.metadata as md

    versions = {}
    for pkg in ("promed", "torch", "transformers", "sentence-transformers", "numpy"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    return {"config": json.loads(json.dumps(dataclasses.asdict(cfg), default=str)), "versions": versions}
