"""Reading MedQA-style exam items: the two accepted layouts, the vignette/stem split, validation.

Layouts (one JSON object per line; detected per record):

* **MedQA (US)**: ``{"question": "<vignette> <stem>", "options": {"A": ...} or [...], "answer_idx": "C",
  "answer"?: "<option text>", "id"?: ...}``. ``question`` holds the vignette followed by the question stem; the
  stem is its last sentence (:func:`split_stem`).
* **MediQ**: ``{"context": ["<sentence>", ...], "question": "<stem>", "options": ..., "answer_idx": "C",
  "id"?: ...}``: the vignette is the context sentences joined with spaces. Other fields (``facts``,
  ``patient``, ...) are ignored.

Every problem is bad input, raised as :class:`promed.data.cases.DataError` naming file, line and field before
anything is written: a line that is not a JSON object, a missing or ill-typed field, option keys that are not
letters, fewer than two options, an answer letter that is not among the options, an ``answer`` text that is not
the text of option ``answer_idx``, an empty vignette, an empty stem, a duplicate id, an empty file.

Case ids: the item's ``id`` (a string or number) if it has one, else :func:`item_hash` of question and options.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from promed.data.cases import DataError, _case_id, _json_type, _options, jsonl_objects
from promed.data.convert.sentences import split_sentences
from promed.types import Option


@dataclass(frozen=True)
class ExamItem:
    """One exam item: the vignette and the question stem apart, lettered options and the gold letter.

    ``line`` is the item's line in its file (for error messages); ``key`` a hash of its content (the LLM cache
    key: the same item in another file or at another line is the same work).
    """

    id: str
    vignette: str
    stem: str
    options: tuple[Option, ...]
    answer: str
    line: int
    layout: str

    @property
    def key(self) -> str:
        blob = json.dumps([self.vignette, self.stem, [(o.letter, o.text) for o in self.options], self.answer],
                          ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def item_hash(question: str, options: tuple[Option, ...]) -> str:
    """The id of an item without one: 16 hex digits of SHA-256 over its question and lettered options."""
    blob = json.dumps([question, [(o.letter, o.text) for o in options]], ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def split_stem(question: str) -> tuple[str, str]:
    """MedQA's ``question`` as ``(vignette, stem)``: the stem is the last sentence (``Which of the following is the
    most likely diagnosis?``), or the last sentence that asks something (ends with ``?`` or names *which of the
    following*) when a closing remark follows it; the vignette is everything before the stem."""
    sentences = split_sentences(question)
    if not sentences:
        return "", ""
    idx = len(sentences) - 1
    if not _asks(sentences[idx]):
        asking = [i for i, s in enumerate(sentences) if _asks(s)]
        if asking:
            idx = asking[-1]
    stem = " ".join(sentences[idx:])
    return " ".join(sentences[:idx]), stem


def _asks(sentence: str) -> bool:
    low = sentence.lower()
    return sentence.rstrip().endswith("?") or "which of the following" in low


def _str_field(rec: dict, key: str, path: Path, line: int) -> str:
    if key not in rec:
        raise DataError(path, line, key, "missing")
    val = rec[key]
    if not isinstance(val, str):
        raise DataError(path, line, key, f"expected str, got {_json_type(val)}")
    return val.strip()


def parse_item(rec: dict, path: Path, line: int) -> ExamItem:
    """One record as an :class:`ExamItem` (layout detected: a ``context`` field means MediQ)."""
    question = _str_field(rec, "question", path, line)
    if "context" in rec:
        layout = "mediq"
        ctx = rec["context"]
        if isinstance(ctx, str):
            ctx = [ctx]
        if not isinstance(ctx, list):
            raise DataError(path, line, "context", f"expected list of str, got {_json_type(ctx)}")
        for i, s in enumerate(ctx):
            if not isinstance(s, str):
                raise DataError(path, line, f"context[{i}]", f"expected str, got {_json_type(s)}")
        vignette, stem = " ".join(s.strip() for s in ctx if s.strip()), question
        if not vignette:
            raise DataError(path, line, "context", "empty vignette: no context sentence")
        if not stem:
            raise DataError(path, line, "question", "empty question stem")
    else:
        layout = "medqa"
        if not question:
            raise DataError(path, line, "question", "empty")
        vignette, stem = split_stem(question)
        if not vignette:
            raise DataError(path, line, "question", "empty vignette: no sentence before the question stem "
                                                    f"{stem[:60]!r}")
    options = _options(rec, path, line)
    if len(options) < 2:
        raise DataError(path, line, "options", f"{len(options)} option(s); at least 2 are needed")
    letter = _str_field(rec, "answer_idx", path, line).upper()
    by_letter = {o.letter: o.text for o in options}
    if letter not in by_letter:
        raise DataError(path, line, "answer_idx", f"{letter!r} is not among the options "
                                                  f"({', '.join(by_letter)})")
    if rec.get("answer") is not None:
        text = rec["answer"]
        if not isinstance(text, str):
            raise DataError(path, line, "answer", f"expected str, got {_json_type(text)}")
        if text.strip().casefold() != by_letter[letter].casefold():
            raise DataError(path, line, "answer", f"{text.strip()!r} is not the text of option {letter} "
                                                  f"({by_letter[letter]!r})")
    cid = _case_id(rec, path, line) if "id" in rec else item_hash(question, options)
    return ExamItem(cid, vignette, stem, options, letter, line, layout)


def read_items(path: str | Path) -> list[ExamItem]:
    """Every item of a MedQA-style JSONL file, validated (:class:`DataError` on the first problem)."""
    path = Path(path)
    items: list[ExamItem] = []
    seen: dict[str, int] = {}
    for line, rec in jsonl_objects(path):
        item = parse_item(rec, path, line)
        if item.id in seen:
            raise DataError(path, line, "id", f"duplicate id {item.id!r} (first at line {seen[item.id]})")
        seen[item.id] = line
        items.append(item)
    if not items:
        raise DataError(path, None, None, "no items: the file is empty (expected one JSON object per line)")
    return items
