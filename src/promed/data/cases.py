"""Case loaders: MediQ JSONL and the generic MedQA-style JSONL, with validation.

Two kinds of trouble are kept apart:

* **Bad input** (not JSON, a required field missing or of the wrong type): :class:`DataError` naming file, line
  and field. The CLI prints it and exits with code 2 before writing anything.
* **Unusable cases** (empty facts or context, the answer not among the options, fewer than two options): skipped,
  counted by reason in :class:`LoadResult`, reported in the run summary. Real data has such rows.

Formats (documented in ``docs/data.md``):

* ``mediq``: ``{"id", "question", "context": [sentences], "facts": ["1. ...", ...], "options": {"A": ...},
  "answer_idx": "C", ...}`` as in the MediQ benchmark.
* ``generic``: ``{"id", "initial", "facts": [...], "question", "options": {"A": ...}, "answer": "C",
  "source"?, "synthclinic"?}``; this is what :meth:`promed.types.Case.to_json` writes, so SynthClinic cases
  written by ``promed data synthclinic`` read back identically.

Initial-information protocols (``initial=``):

* ``first-sentence`` (MediQ): the doctor sees ``context[0]``; every atomic fact stays hidden with the patient.
* ``first-half-facts`` (the reference code's training protocol): the doctor sees the first ``ceil(n/2)`` facts,
  joined; the remaining facts are hidden.
  For generic records the ``initial`` field is used as is, whatever the protocol.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promed.types import LETTERS, Case, Fact, Finding, Option

INITIAL_PROTOCOLS = ("first-sentence", "first-half-facts")
_NUMBERING = re.compile(r"^\s*\d+\s*[.)]\s*")


class DataError(ValueError):
    """Bad input data. ``str(err)`` is ``"<file>:<line>: field '<field>': <problem>"``."""

    def __init__(self, path: str | Path, line: int, field_name: str, problem: str):
        self.path, self.line, self.field, self.problem = str(path), line, field_name, problem
        super().__init__(f"{path}:{line}: field '{field_name}': {problem}")


@dataclass(frozen=True)
class LoadResult:
    """Loaded cases plus the unusable ones that were skipped, counted by reason."""

    cases: list[Case]
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def n_skipped(self) -> int:
        return sum(self.skipped.values())


def strip_numbering(text: str) -> str:
    """``"3. Patient complains of fever."`` -> ``"Patient complains of fever."``"""
    return _NUMBERING.sub("", text).strip()


def _require(rec: dict, key: str, kind: type | tuple[type, ...], path: Path, line: int) -> Any:
    if key not in rec:
        raise DataError(path, line, key, "missing")
    val = rec[key]
    if not isinstance(val, kind) or isinstance(val, bool):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise DataError(path, line, key, f"expected {names}, got {type(val).__name__}")
    return val


def _str_list(rec: dict, key: str, path: Path, line: int) -> list[str]:
    vals = _require(rec, key, list, path, line)
    for i, v in enumerate(vals):
        if not isinstance(v, str):
            raise DataError(path, line, f"{key}[{i}]", f"expected str, got {type(v).__name__}")
    return [v.strip() for v in vals if v.strip()]


def _options(rec: dict, path: Path, line: int) -> tuple[Option, ...]:
    raw = _require(rec, "options", (dict, list), path, line)
    if isinstance(raw, list):
        raw = {LETTERS[i]: v for i, v in enumerate(raw)}
    opts = []
    for letter, text in raw.items():
        if not isinstance(text, str):
            raise DataError(path, line, f"options.{letter}", f"expected str, got {type(text).__name__}")
        opts.append(Option(letter=str(letter).strip().upper(), text=text.strip()))
    return tuple(sorted(opts, key=lambda o: o.letter))


def _synth_annotations(rec: dict, facts: list[str], options: tuple[Option, ...], path: Path, line: int):
    ann = rec.get("synthclinic")
    if ann is None:
        return [None] * len(facts), (), options
    try:
        ff = [Finding(str(c), bool(p)) if c is not None else None for c, p in
              ((x if x is not None else (None, None)) for x in ann["fact_findings"])]
        init = tuple(Finding(str(c), bool(p)) for c, p in ann["initial_findings"])
        keys = ann["option_keys"]
        options = tuple(Option(o.letter, o.text, keys.get(o.letter)) for o in options)
    except (KeyError, TypeError, ValueError) as err:
        raise DataError(path, line, "synthclinic", f"malformed annotations ({err})") from None
    if len(ff) != len(facts):
        raise DataError(path, line, "synthclinic.fact_findings", f"{len(ff)} entries for {len(facts)} facts")
    return ff, init, options


def _make_case(rec: dict, fmt: str, initial: str, path: Path, line: int) -> Case | str:
    """Build a case from one record, or return the reason it is unusable."""
    question = _require(rec, "question", str, path, line).strip()
    options = _options(rec, path, line)
    if "id" not in rec:
        raise DataError(path, line, "id", "missing")
    cid = str(rec["id"])
    if fmt == "mediq":
        context = _str_list(rec, "context", path, line)
        facts = [strip_numbering(f) for f in _str_list(rec, "facts", path, line)]
        facts = [f for f in facts if f]
        gold = rec.get("answer_idx")
        if not isinstance(gold, str):
            raise DataError(path, line, "answer_idx", "missing or not a string")
        if not context:
            return "empty context"
        if not facts:
            return "empty facts"
        if initial == "first-sentence":
            init_text, hidden = context[0], facts
        else:
            k = math.ceil(len(facts) / 2)
            init_text, hidden = " ".join(facts[:k]), facts[k:]
        findings, init_findings = [None] * len(hidden), ()
        source = "mediq"
    else:
        init_text = _require(rec, "initial", str, path, line).strip()
        hidden = _str_list(rec, "facts", path, line)
        gold = _require(rec, "answer", str, path, line)
        findings, init_findings, options = _synth_annotations(rec, hidden, options, path, line)
        source = str(rec.get("source") or f"jsonl:{path.name}")
        if not init_text:
            return "empty initial information"
        if not hidden:
            return "empty facts"
    gold = gold.strip().upper()
    if len(options) < 2:
        return "fewer than two options"
    if gold not in {o.letter for o in options}:
        return "answer not among the options"
    facts_t = tuple(Fact(i, t, findings[i]) for i, t in enumerate(hidden))
    return Case(cid, init_text, facts_t, question, options, gold, source, init_findings)


def detect_format(rec: dict) -> str:
    return "mediq" if "context" in rec else "generic"


def load_cases(path: str | Path, initial: str = "first-sentence", fmt: str = "auto", limit: int | None = None) -> LoadResult:
    """Load cases from a JSONL file (MediQ or generic; ``fmt="auto"`` decides per file from the first record).

    Raises :class:`DataError` (file, line, field) on bad input and ``FileNotFoundError`` if the file is missing.
    """
    if initial not in INITIAL_PROTOCOLS:
        raise ValueError(f"unknown initial-information protocol {initial!r}; choose from {INITIAL_PROTOCOLS}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    cases: list[Case] = []
    skipped: Counter[str] = Counter()
    seen: set[str] = set()
    with path.open(encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
            except json.JSONDecodeError as err:
                raise DataError(path, lineno, "<json>", f"not valid JSON ({err.msg} at column {err.colno})") from None
            if not isinstance(rec, dict):
                raise DataError(path, lineno, "<json>", "expected a JSON object per line")
            if fmt == "auto":
                fmt = detect_format(rec)
            made = _make_case(rec, fmt, initial, path, lineno)
            if isinstance(made, str):
                skipped[made] += 1
                continue
            if made.id in seen:
                raise DataError(path, lineno, "id", f"duplicate id {made.id!r}")
            seen.add(made.id)
            cases.append(made)
            if limit is not None and len(cases) >= limit:
                break
    return LoadResult(cases, dict(skipped))


def write_cases(cases: list[Case], path: str | Path) -> None:
    """Write cases as generic JSONL, atomically (temp file + rename)."""
    from promed.io import atomic_write_lines

    atomic_write_lines(Path(path), (json.dumps(c.to_json(), ensure_ascii=False) for c in cases))
