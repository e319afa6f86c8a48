"""``promed patient``: answer a file of questions with a patient simulator and score the revealed facts.

Inputs: the cases (``--data``, as every command reads them) and a questions file (:mod:`promed.data.questions`:
``case_id``, ``question``, optional ``kind`` and expected ``facts``). The patient (``--patient fact|llm``, built by
:class:`promed.runtime.RunModels` as in ``promed eval``) answers the questions in batches of ``--batch-size``, in
file order.

Outputs under ``out/``: ``replies.jsonl`` (one record per question, in file order: ``case_id``, ``question``,
``kind`` if given, ``reply``, the revealed ``facts``, the ``expected`` facts if given), ``summary.json`` (the scores
of :mod:`promed.eval.patient_metrics` over all questions and ``by_kind``; the speed: ``questions_per_second`` over
the reply calls, after one throw-away reply that loads any lazily loaded model, timed with the patient's
construction as ``load_seconds``; the patient and its settings) and ``manifest.json``. Every input problem (options,
data, questions file, ``--out``, a model that fails to load) is found before anything is written, and the outputs
are written only once every question is answered, each through a temp file and a rename, so an interrupted run
leaves no partial file. Re-running with the same settings answers the questions again and replaces the outputs; a
directory of a run with other settings (or of another command) is refused unless ``--overwrite``.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from promed.data.questions import PatientQuestion
from promed.data.sources import DataConfig
from promed.errors import InputError
from promed.eval.patient_metrics import PatientScores, score_replies, scores_by_kind
from promed.io import (
    NON_BINDING, OVERWRITE_HELP, JsonRecord, atomic_write_json, atomic_write_lines, check_out_dir, data_fingerprint,
    prepare_run, start_run,
)
from promed.llm.base import check_spec
from promed.runtime import PatientConfig, ServerConfig
from promed.types import Case

# Replies do not depend on how questions are batched.
PATIENT_NON_BINDING = NON_BINDING | {"batch_size"}
WARM_UP = "How are you?"


@dataclass(frozen=True)
class PatientRunConfig:
    """``promed patient`` settings."""

    data: DataConfig = field(default_factory=DataConfig, metadata={"help": "Cases."})
    questions: Path | None = field(default=None, metadata={
        "help": "JSONL file of questions: {\"case_id\", \"question\"} with optional \"kind\" (groups results) and "
                "\"facts\" (expected answer: 0-based indices into the case's facts; [] = unanswerable). Required."})
    # not "patient": a field named after its command would read as that command's section of a --config file
    simulator: PatientConfig = field(default_factory=PatientConfig, metadata={"help": "Patient simulator (--patient; "
                                                                              "its settings: [simulator.fact], "
                                                                              "[simulator.llm])."})
    model: str | None = field(default=None, metadata={"help": "Model spec of the llm patient (gemma-270m, "
                                                              "hf:<id|path>, gguf:<file>, openai:<model>@<url>, "
                                                              "tiny)."})
    server: ServerConfig = field(default_factory=ServerConfig,
                                 metadata={"help": "Model servers (openai: specs): timeout, retries, concurrency."})
    batch_size: int = field(default=64, metadata={"help": "Questions per patient call."})
    out: Path = field(default=Path("runs/patient"), metadata={"help": "Output directory (replies.jsonl, "
                                                                      "summary.json)."})
    overwrite: bool = field(default=False, metadata={"help": OVERWRITE_HELP})

    def __post_init__(self) -> None:
        check_spec("--model", self.model)
        if self.batch_size < 1:
            raise InputError(f"--batch-size must be >= 1, got {self.batch_size}")


@dataclass(frozen=True)
class PatientRunResult(JsonRecord):
    """What :func:`run_patient` did: the scores (overall and per kind), speed, the patient and its settings, the
    questions file and the cases; :meth:`to_json` is ``summary.json`` (the overall scores at its top level)."""

    overall: PatientScores
    by_kind: dict[str, PatientScores]
    questions_per_second: float | None
    wall_seconds: float
    load_seconds: float
    patient: dict
    questions_file: str
    questions_sha256: str
    data: str
    n_cases: int
    skipped: dict[str, int]

    def to_json(self) -> dict:
        rec = {**self.overall.to_json(), **{k: v for k, v in super().to_json().items() if k not in ("overall",
                                                                                                      "by_kind")}}
        if self.by_kind:
            rec["by_kind"] = {k: s.to_json() for k, s in self.by_kind.items()}
        return rec


def answer_questions(patient, cases: dict[str, Case], questions: Sequence[PatientQuestion], batch_size: int,
                     progress: bool = False) -> list[tuple[str, tuple[int, ...]]]:
    """``(reply, revealed fact ids)`` per question, in order; ``patient.reply`` is called on batches."""
    from tqdm import tqdm

    out: list[tuple[str, tuple[int, ...]]] = []
    with tqdm(total=len(questions), desc="patient", unit="q", disable=not progress) as bar:
        for start in range(0, len(questions), batch_size):
            batch = questions[start:start + batch_size]
            replies = patient.reply([cases[q.case_id] for q in batch], [q.question for q in batch])
            if len(replies) != len(batch):
                raise RuntimeError(f"the patient returned {len(replies)} replies for {len(batch)} questions")
            out += [(text, tuple(sorted(int(i) for i in ids))) for text, ids in replies]
            bar.update(len(batch))
    return out


def reply_record(q: PatientQuestion, reply: str, revealed: tuple[int, ...]) -> dict:
    """One line of ``replies.jsonl``."""
    rec: dict = {"case_id": q.case_id, "question": q.question}
    if q.kind is not None:
        rec["kind"] = q.kind
    rec["reply"] = reply
    rec["facts"] = list(revealed)
    if q.facts is not None:
        rec["expected"] = list(q.facts)
    return rec


def patient_settings(cfg: PatientRunConfig) -> dict:
    """The patient as ``summary.json`` names it: kind, model (llm) and the settings of that kind."""
    kind = cfg.simulator.kind
    settings = asdict(cfg.simulator.fact if kind == "fact" else cfg.simulator.llm)
    return {"kind": kind, "model": cfg.model if kind == "llm" else None, "settings": settings}


def run_patient(cfg: PatientRunConfig, progress: bool = True) -> PatientRunResult:
    """Check every input, answer the questions, write ``out/replies.jsonl`` and ``out/summary.json``."""
    from promed.data.questions import load_questions
    from promed.data.sources import load_data
    from promed.runtime import RunModels, is_synthetic

    # every check before the first byte is written (the option values were checked when cfg was built)
    if cfg.questions is None:
        raise InputError("missing --questions (give it on the command line or in --config)")
    if cfg.simulator.kind == "llm" and not cfg.model:
        raise InputError("--patient llm needs --model SPEC")
    loaded = load_data(cfg.data)
    cases = loaded.cases
    questions = load_questions(cfg.questions, cases)
    out = Path(cfg.out)
    check_out_dir(out)
    run_manifest = prepare_run(out, cfg, "patient", data_fingerprint(cases, cfg.data.data), cfg.overwrite,
                               PATIENT_NON_BINDING)
    by_id = {c.id: c for c in cases}
    t0 = time.perf_counter()
    models = RunModels(cfg.model, None, cfg.simulator, is_synthetic(cfg.data.data, cases), server=cfg.server)
    patient = models.patient()  # a model that fails to load: still nothing written
    # one throw-away reply loads what a patient loads lazily (the fact patient's embedder), outside the timing
    patient.reply([by_id[questions[0].case_id]], [WARM_UP])
    load_s = time.perf_counter() - t0

    t1 = time.perf_counter()
    replies = answer_questions(patient, by_id, questions, cfg.batch_size, progress)
    wall = time.perf_counter() - t1

    revealed = [ids for _, ids in replies]
    expected = [q.facts for q in questions]
    kinds = [q.kind for q in questions]
    overall = score_replies(revealed, expected)
    by_kind = scores_by_kind(revealed, expected, kinds)
    result = PatientRunResult(
        overall=overall, by_kind=by_kind,
        questions_per_second=round(len(questions) / wall, 3) if wall > 0 else None, wall_seconds=round(wall, 3),
        load_seconds=round(load_s, 3), patient=patient_settings(cfg), questions_file=str(cfg.questions),
        questions_sha256=hashlib.sha256(Path(cfg.questions).read_bytes()).hexdigest(), data=cfg.data.data,
        n_cases=len(cases), skipped=dict(loaded.skipped),
    )

    start_run(out, run_manifest, cfg.overwrite)  # the first bytes this run writes
    atomic_write_lines(out / "replies.jsonl", (json.dumps(reply_record(q, text, ids), ensure_ascii=False)
                                               for q, (text, ids) in zip(questions, replies)))
    atomic_write_json(out / "summary.json", result)
    return result
