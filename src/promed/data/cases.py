"""Case loaders: MediQ JSONL and the generic MedQA-style JSONL, with validation.

Two kinds of trouble are kept apart:

* **Bad input**: :class:`DataError` naming file, line and field (``<file>:<line>: field '<field>': <problem>``),
  or the file alone for whole-file problems (``<file>: <problem>``). The CLI prints it and exits with code 2
  before writing anything. Bad input is: a directory or unreadable file; bytes that are not UTF-8 text (binary,
  Latin-1: the line is named); a line that is not a JSON object; a required field missing or of the wrong type
  (``facts[3]``, ``options.B`` name the element); an ``id`` that is null, empty or a duplicate; option keys that
  are not letters A-J (numbered keys ``"1"``..``"4"`` included: give such options as a list), more than ten
  options, or two keys for one letter; an empty file; and a file in which no case is usable (the message says how
  many were skipped and why).
* **Unusable cases** (empty facts or context, the answer not among the options, fewer than two options): skipped,
  counted by reason in :class:`LoadResult`, reported in the run summary. Real data has such rows; as long as one
  case is usable the others are skipped, not fatal.

Formats (documented in ``docs/data.md``):

* ``mediq``: ``{"id", "question", "context": [sentences], "facts": ["1. ...", ...], "options": {"A": ...},
  "answer_idx": "C", ...}`` as in the MediQ benchmark.
* ``generic``: ``{"id", "initial", "facts": [...], "question", "options": {"A": ...}, "answer": "C",
  "source"?, "synthclinic"?, "split"?}``; this is what :meth:`promed.types.Case.to_json` writes, so SynthClinic cases
  written by ``promed data synthclinic`` read back identically.

Initial-information protocols (``initial=``):

* ``first-sentence`` (MediQ): the doctor sees ``context[0]``; every atomic fact stays hidden with the patient.
* ``first-half-facts`` (the reference code's training protocol): the doctor sees the first ``ceil(n/2)`` facts,
  joined; the remaining facts are hidden.
  For generic records the ``initial`` field is used as is, whatever the protocol.

Splits (``split=``, :mod:`promed.data.splits`): a record's own ``split`` field (either format; ``train``, ``val``
or ``test``, else a :class:`DataError` naming file, line and field ``split``) wins; other records are split by the
content hash of their case. ``limit`` counts the cases of the split, and a split without a case is a
:class:`DataError` naming the counts of the others.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, Mapping

from promed.data.splits import (
    DEFAULT_SHARES,
    SPLIT_CHOICES,
    SPLITS,
    SplitShares,
    case_fingerprint,
    check_split_value,
    split_of,
)
from promed.errors import InputError
from promed.types import LETTERS, Case, Fact, Finding, Option

INITIAL_PROTOCOLS = ("first-sentence", "first-half-facts")
_NUMBERING = re.compile(r"^\s*\d+\s*[.)]\s*")


class DataError(InputError):
    """Bad input data. ``str(err)`` is ``"<file>:<line>: field '<field>': <problem>"``; without a field to blame
    (text that is not UTF-8) ``"<file>:<line>: <problem>"``; for the whole file (``line=None``)
    ``"<file>: <problem>"``."""

    def __init__(self, path: str | Path, line: int | None, field_name: str | None, problem: str):
        self.path, self.line, self.field, self.problem = str(path), line, field_name, problem
        where = f"{path}" if line is None else f"{path}:{line}"
        super().__init__(f"{where}: field '{field_name}': {problem}" if field_name else f"{where}: {problem}")


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


def _json_type(val: Any) -> str:
    """The JSON name of a parsed value's type, for messages (``null`` rather than ``NoneType``)."""
    return "null" if val is None else type(val).__name__


def _require(rec: dict, key: str, kind: type | tuple[type, ...], path: Path, line: int) -> Any:
    if key not in rec:
        raise DataError(path, line, key, "missing")
    val = rec[key]
    if not isinstance(val, kind) or isinstance(val, bool):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise DataError(path, line, key, f"expected {names}, got {_json_type(val)}")
    return val


def _str_list(rec: dict, key: str, path: Path, line: int) -> list[str]:
    vals = _require(rec, key, list, path, line)
    for i, v in enumerate(vals):
        if not isinstance(v, str):
            raise DataError(path, line, f"{key}[{i}]", f"expected str, got {_json_type(v)}")
    return [v.strip() for v in vals if v.strip()]


def _case_id(rec: dict, path: Path, line: int) -> str:
    """The record's id as a string: a non-empty string or a number (``null``, booleans, objects are errors)."""
    if "id" not in rec:
        raise DataError(path, line, "id", "missing")
    val = rec["id"]
    if isinstance(val, bool) or not isinstance(val, (str, int, float)):
        raise DataError(path, line, "id", f"expected str or number, got {_json_type(val)}")
    cid = str(val)
    if not cid.strip():
        raise DataError(path, line, "id", "empty")
    return cid


def _options(rec: dict, path: Path, line: int) -> tuple[Option, ...]:
    """Options as lettered :class:`Option`s, sorted by letter.

    An object's keys must be letters A-J (either case); a list is lettered A, B, ... in order. Numbered keys
    (``"1"``..``"4"``) are an error rather than a guess (0- or 1-based? and the answer would need mapping too).
    """
    raw = _require(rec, "options", (dict, list), path, line)
    if len(raw) > len(LETTERS):
        raise DataError(path, line, "options", f"{len(raw)} options; at most {len(LETTERS)} are supported "
                                               f"(letters {LETTERS[0]}-{LETTERS[-1]})")
    if isinstance(raw, list):
        items = [(LETTERS[i], f"options[{i}]", text) for i, text in enumerate(raw)]
    else:
        items = []
        for key, text in raw.items():
            letter = key.strip().upper()
            if len(letter) != 1 or letter not in LETTERS:
                raise DataError(path, line, f"options.{key}",
                                f"option keys must be letters {LETTERS[0]}-{LETTERS[-1]}, got {key!r} (give "
                                "unlettered options as a list: they are lettered A, B, ... in order)")
            items.append((letter, f"options.{key}", text))
    opts: dict[str, Option] = {}
    for letter, name, text in items:
        if not isinstance(text, str):
            raise DataError(path, line, name, f"expected str, got {_json_type(text)}")
        if letter in opts:
            raise DataError(path, line, name, f"a second option with the letter {letter!r}")
        opts[letter] = Option(letter=letter, text=text.strip())
    return tuple(sorted(opts.values(), key=lambda o: o.letter))


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
    cid = _case_id(rec, path, line)
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


def _text(raw: bytes, path: Path, line: int) -> str:
    """One line of the file as text: UTF-8 (a byte-order mark on the first line is dropped), else a DataError."""
    if b"\0" in raw:
        raise DataError(path, line, None, f"binary data (a NUL byte at byte {raw.index(0) + 1} of the line), not "
                                          "JSONL text")
    try:
        return raw.decode("utf-8-sig" if line == 1 else "utf-8")
    except UnicodeDecodeError as err:
        raise DataError(path, line, None, f"not UTF-8 text (byte 0x{raw[err.start]:02x} at byte {err.start + 1} of "
                                          "the line): save the file as UTF-8") from None


def _open(path: Path):
    if path.is_dir():
        raise DataError(path, None, None, "is a directory, not a JSONL file")
    if not path.exists():
        raise DataError(path, None, None, "no such file")
    try:
        return path.open("rb")
    except OSError as err:
        raise DataError(path, None, None, f"cannot read ({err.strerror or err})") from None


def jsonl_objects(path: Path) -> Iterator[tuple[int, dict]]:
    """``(line number, object)`` for each non-blank line of a JSONL file; :class:`DataError` (file, line) for a line
    that is not UTF-8, not JSON or not a JSON object."""
    with _open(path) as fh:
        for lineno, raw_bytes in enumerate(fh, start=1):
            raw = _text(raw_bytes, path, lineno)
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
            except json.JSONDecodeError as err:
                raise DataError(path, lineno, "<json>", f"not valid JSON ({err.msg} at column {err.colno})") from None
            if not isinstance(rec, dict):
                raise DataError(path, lineno, "<json>", f"expected a JSON object per line, got {_json_type(rec)}")
            yield lineno, rec


def _record_split(rec: dict, path: Path, line: int) -> str | None:
    """The record's own ``split`` field (validated), or None when it has none."""
    if "split" not in rec:
        return None
    problem = check_split_value(rec["split"])
    if problem:
        raise DataError(path, line, "split", problem)
    return rec["split"]


def _canonical(made: Case, rec: dict, fmt: str, initial: str, path: Path, line: int) -> Case:
    """The case the split is computed from: a MediQ record as read with ``first-sentence`` (so that ``--initial``
    never moves a case between splits); any other case as it is."""
    if fmt != "mediq" or initial == "first-sentence":
        return made
    canon = _make_case(rec, fmt, "first-sentence", path, line)
    return canon if isinstance(canon, Case) else made


def _read(path: Path, initial: str, fmt: str, shares: SplitShares | None) -> Iterator[tuple[int, Case | str, str | None]]:
    """``(line, case or the reason it is unusable, split)`` per record; the split is the record's own ``split``
    field, else (with ``shares``) the content hash of a usable case, else None. Ids are checked for duplicates."""
    seen: set[str] = set()
    for lineno, rec in jsonl_objects(path):
        if fmt == "auto":
            fmt = detect_format(rec)
        made = _make_case(rec, fmt, initial, path, lineno)
        cid = made.id if isinstance(made, Case) else _case_id(rec, path, lineno)
        if cid in seen:
            raise DataError(path, lineno, "id", f"duplicate id {cid!r}")
        seen.add(cid)
        if isinstance(made, Case) and fmt == "mediq" and initial != "first-sentence":
            made = replace(made, origin=case_fingerprint(_canonical(made, rec, fmt, initial, path, lineno)))
        split = _record_split(rec, path, lineno)
        if split is None and shares is not None and isinstance(made, Case):
            split = split_of(made, shares)
        yield lineno, made, split


def _no_usable(path: Path, skipped: Counter[str]) -> DataError:
    n = sum(skipped.values())
    if not n:
        return DataError(path, None, None, "no cases: the file is empty (expected one JSON object per line)")
    why = ", ".join(f"{reason}: {k}" for reason, k in skipped.most_common())
    return DataError(path, None, None, f"no usable case: all {n} case{'s' if n != 1 else ''} skipped ({why})")


def load_cases(path: str | Path, initial: str = "first-sentence", fmt: str = "auto", limit: int | None = None,
               split: str = "all", shares: SplitShares = DEFAULT_SHARES) -> LoadResult:
    """Load cases from a JSONL file (MediQ or generic; ``fmt="auto"`` decides per file from the first record).

    ``split`` (train, val, test or all) keeps the cases of one split (:mod:`promed.data.splits`: a record's own
    ``split`` field, else the content hash cut by ``shares``); ``limit`` counts the cases kept. Raises
    :class:`DataError` (file, line, field; or the file alone) on bad input - including an empty file, a file with
    no usable case and a split with no case - and ``FileNotFoundError`` if the file is missing.
    """
    if initial not in INITIAL_PROTOCOLS:
        raise InputError(f"unknown initial-information protocol {initial!r}; choose from {INITIAL_PROTOCOLS}")
    if split not in SPLIT_CHOICES:
        raise InputError(f"--split: unknown split {split!r}; choose from {', '.join(SPLIT_CHOICES)}")
    path = Path(path)
    cases: list[Case] = []
    skipped: Counter[str] = Counter()
    others: Counter[str] = Counter()  # usable cases of the other splits
    for _, made, case_split in _read(path, initial, fmt, None if split == "all" else shares):
        if isinstance(made, str):
            skipped[made] += 1
            continue
        if split != "all" and case_split != split:
            others[case_split] += 1
            continue
        cases.append(made)
        if limit is not None and len(cases) >= limit:
            break
    if not cases and not others:
        raise _no_usable(path, skipped)
    if not cases:
        counts = ", ".join(f"{s} {others[s]}" for s in SPLITS if s != split)
        raise DataError(path, None, None, f"no case in split {split!r} (usable cases of the other splits: {counts}); "
                                          "choose another --split, or --split all for every case")
    return LoadResult(cases, dict(skipped))


def split_lines(path: str | Path, shares: SplitShares = DEFAULT_SHARES) -> tuple[dict[str, list[str]], dict[str, int]]:
    """The lines of a JSONL case file sorted into splits, verbatim (``promed data split``), and the unusable
    records left out, counted by reason. Every record is validated first, as :func:`load_cases` does; a file with no
    usable case is a :class:`DataError`."""
    path = Path(path)
    where: dict[int, str] = {}
    skipped: Counter[str] = Counter()
    for lineno, made, case_split in _read(path, "first-sentence", "auto", shares):
        if isinstance(made, str):
            skipped[made] += 1
        else:
            where[lineno] = case_split
    if not where:
        raise _no_usable(path, skipped)
    out: dict[str, list[str]] = {s: [] for s in SPLITS}
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if lineno in where:
                out[where[lineno]].append(_text(raw, path, lineno).rstrip("\r\n"))
    return out, dict(skipped)


def write_cases(cases: list[Case], path: str | Path, splits: Mapping[str, str] | None = None) -> None:
    """Write cases as generic JSONL, atomically (temp file + rename); ``splits`` (case id -> train, val or test)
    adds each record's ``split`` field, which :func:`load_cases` honours over the content hash."""
    from promed.io import atomic_write_lines

    def record(c: Case) -> dict:
        return c.to_json() if splits is None else {**c.to_json(), "split": splits[c.id]}

    atomic_write_lines(Path(path), (json.dumps(record(c), ensure_ascii=False) for c in cases))
