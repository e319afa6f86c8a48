"""A doctor's consultations as the viewer shows them, read from ``transcripts/<doctor>.jsonl`` as written.

Each line is parsed by the evaluation's own reader (:func:`promed.eval.records.transcript_from_json`), so the viewer
and ``promed eval`` agree on what a record means; a record that reader rejects is reported by line and skipped.
What the doctor saw at turn 0 is the first user message (:func:`promed.doctor.policy.case_message` wrote it):
:func:`parse_case_message` reads its parts back (initial statement, facts given up front, question, options), and
keeps the raw text when a record holds some other layout.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from promed.errors import InputError
from promed.eval.metrics import Metrics, compute_metrics
from promed.eval.records import transcript_from_json
from promed.types import Transcript
from promed.view.files import read_jsonl_lines

_OPTION = re.compile(r"^([A-J])\. (.*)$")


@dataclass(frozen=True)
class CasePrompt:
    """The first user message of a consultation, in parts (``options``: letter -> text)."""

    raw: str
    initial: str
    given: tuple[str, ...]
    question: str
    options: tuple[tuple[str, str], ...]

    def option(self, letter: str | None) -> str:
        return dict(self.options).get(letter or "", "")


def parse_case_message(text: str) -> CasePrompt:
    """Read back ``Patient: ...``, ``Known facts:`` (``- fact`` lines), ``Question: ...`` and ``Options:``
    (``A. text`` lines); parts that are absent stay empty (the page then shows ``raw``)."""
    initial, question, given, options = "", "", [], []
    section = ""
    for line in text.splitlines():
        if line.startswith("Patient: "):
            initial, section = line[len("Patient: "):], ""
        elif line == "Known facts:":
            section = "facts"
        elif line.startswith("Question: "):
            question, section = line[len("Question: "):], ""
        elif line == "Options:":
            section = "options"
        elif section == "facts" and line.startswith("- "):
            given.append(line[2:])
        elif section == "options" and (m := _OPTION.match(line)):
            options.append((m.group(1), m.group(2)))
        else:
            section = ""
    return CasePrompt(text, initial, tuple(given), question, tuple(options))


@dataclass(frozen=True)
class Consultation:
    """One record: the transcript, its case's fact count and gold letter, what the doctor saw, the file line."""

    transcript: Transcript
    n_facts: int
    gold: str
    prompt: CasePrompt
    line: int

    @property
    def total_sig(self) -> float | None:
        sigs = [t.sig for t in self.transcript.turns if t.sig is not None]
        return sum(sigs) if sigs else None

    @property
    def revealed(self) -> tuple[int, ...]:
        """Facts the patient's replies revealed (not those given up front)."""
        return tuple(sorted({i for t in self.transcript.turns for i in t.revealed} - set(self.transcript.given)))

    def search_text(self) -> str:
        """What the case list's text search looks in: case id, initial statement, questions."""
        parts = [self.transcript.case_id, self.prompt.initial or self.prompt.raw[:300],
                 *(t.question for t in self.transcript.turns)]
        return " ".join(parts).lower()


@dataclass(frozen=True)
class DoctorRecords:
    """A doctor's transcript file: its consultations by ``(case id, sample)`` in file order, and what went wrong."""

    path: Path
    name: str
    consultations: dict[tuple[str, int], Consultation]
    problems: tuple[str, ...]
    torn: bool

    @property
    def has_sig(self) -> bool:
        return any(t.sig is not None for c in self.consultations.values() for t in c.transcript.turns)

    @property
    def has_samples(self) -> bool:
        return any(k[1] != 0 for k in self.consultations)

    def metrics(self, with_sig: bool = False) -> Metrics:
        """The summary of the records written so far, by the evaluation's own metric function (with SIG when the
        run computed it, ``with_sig``, or some turn carries it)."""
        cons = list(self.consultations.values())
        return compute_metrics([c.transcript for c in cons], [c.n_facts for c in cons],
                               with_sig=with_sig or self.has_sig)


def _first_user(messages: object) -> str:
    if isinstance(messages, list):
        for m in messages:
            if isinstance(m, dict) and m.get("role") == "user" and isinstance(m.get("content"), str):
                return m["content"]
    return ""


def load_doctor_records(path: Path) -> DoctorRecords:
    """Parse a ``transcripts/<doctor>.jsonl`` file; never raises on bad content (only when it cannot be read)."""
    read = read_jsonl_lines(path)
    problems = list(read.problems)
    out: dict[tuple[str, int], Consultation] = {}
    name = path.name.removesuffix(".jsonl")
    for line, rec in read.records:
        try:
            if not isinstance(rec, dict):
                raise InputError(f"a record must be a JSON object, got {type(rec).__name__}")
            tr, n_facts = transcript_from_json(rec)
            gold = rec["gold"]
        except KeyError as err:
            problems.append(f"{path}:{line}: missing field {err}; record skipped")
            continue
        except (TypeError, ValueError) as err:
            problems.append(f"{path}:{line}: malformed record ({err}); record skipped")
            continue
        name = tr.doctor or name
        out[tr.key] = Consultation(tr, n_facts, str(gold), parse_case_message(_first_user(rec.get("messages"))),
                                   line)
    return DoctorRecords(path, name, out, tuple(problems), read.torn)
