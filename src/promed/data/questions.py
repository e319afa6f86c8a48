"""The questions file of ``promed patient``: questions to the patients of given cases, optionally labelled.

Format (``docs/data.md``): JSON lines, one object per question,
``{"case_id": "sc-test-00000", "question": "Do you smoke?", "kind": "history", "facts": [3]}``:

* ``case_id`` (required): a case's ``id`` as a string or an integer (compared as strings, so MediQ's integer ids
  match either way);
* ``question`` (required): the doctor's question, not blank;
* ``kind`` (optional): a label that results are grouped by (``summary.json``'s ``by_kind``);
* ``facts`` (optional): the expected answer, as 0-based indices into the case's facts (``[]``: a question the case
  cannot answer). Questions without ``facts`` are answered but not scored.

Blank lines are skipped. Every problem is bad input, found before anything runs: a :class:`DataError` naming file,
line and field (the same messages as the case loader's): text that is not UTF-8 or not a JSON object, a missing or
ill-typed field (``null`` included), an unknown field (a typo such as ``"fact"`` is named, with the field it
resembles), a case id that is not among the cases read, a fact index that is out of range or given twice, a blank
question, and a file without questions.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from promed.data.cases import DataError, _json_type, jsonl_objects
from promed.types import Case

FIELDS = ("case_id", "question", "kind", "facts")


@dataclass(frozen=True)
class PatientQuestion:
    """One question of the file (``line``: its 1-based line). ``facts``: the expected fact ids, sorted; ``None``
    when not labelled."""

    line: int
    case_id: str
    question: str
    kind: str | None = None
    facts: tuple[int, ...] | None = None

    @property
    def labelled(self) -> bool:
        return self.facts is not None


def load_questions(path: str | Path, cases: Sequence[Case]) -> list[PatientQuestion]:
    """The questions of ``path`` in file order, checked against ``cases`` (ids, fact counts).

    Raises :class:`DataError` for bad input (module docstring) and ``FileNotFoundError`` for a missing file.
    """
    path = Path(path)
    n_facts = {c.id: c.n_facts for c in cases}
    out = [_question(rec, n_facts, path, lineno) for lineno, rec in jsonl_objects(path)]
    if not out:
        raise DataError(path, None, None, "no questions: the file is empty (expected one JSON object per line)")
    return out


def _question(rec: dict[str, Any], n_facts: dict[str, int], path: Path, line: int) -> PatientQuestion:
    for key in rec:
        if key not in FIELDS:
            close = difflib.get_close_matches(key, FIELDS, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise DataError(path, line, key, f"unknown field ({hint}fields: {', '.join(FIELDS)})")
    for key in ("case_id", "question"):
        if key not in rec:
            raise DataError(path, line, key, "missing")
    cid = rec["case_id"]
    if isinstance(cid, bool) or not isinstance(cid, (str, int)):
        raise DataError(path, line, "case_id", f"expected str or int, got {_json_type(cid)}")
    cid = str(cid)
    if cid not in n_facts:
        raise DataError(path, line, "case_id", f"unknown case id {cid!r}: not among the {len(n_facts)} cases read "
                                               "(see --data, --split, --limit)")
    question = _string(rec, "question", path, line)
    kind = _string(rec, "kind", path, line) if "kind" in rec else None
    facts = _facts(rec["facts"], n_facts[cid], cid, path, line) if "facts" in rec else None
    return PatientQuestion(line, cid, question, kind, facts)


def _string(rec: dict[str, Any], key: str, path: Path, line: int) -> str:
    val = rec[key]
    if not isinstance(val, str):
        raise DataError(path, line, key, f"expected str, got {_json_type(val)}")
    if not val.strip():
        raise DataError(path, line, key, "empty")
    return val.strip()


def _facts(val: Any, n: int, cid: str, path: Path, line: int) -> tuple[int, ...]:
    if not isinstance(val, list):
        raise DataError(path, line, "facts", f"expected a list of fact indices, got {_json_type(val)}")
    seen: set[int] = set()
    for i, idx in enumerate(val):
        name = f"facts[{i}]"
        if isinstance(idx, bool) or not isinstance(idx, int):
            raise DataError(path, line, name, f"expected int (a 0-based fact index), got {_json_type(idx)}")
        if not 0 <= idx < n:
            raise DataError(path, line, name, f"fact index {idx} out of range: case {cid!r} has {n} facts "
                                              f"(indices 0-{n - 1})")
        if idx in seen:
            raise DataError(path, line, name, f"fact index {idx} given twice")
        seen.add(idx)
    return tuple(sorted(seen))
