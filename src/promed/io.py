"""Run storage: atomic writes and resumable JSONL outputs (ARCHITECTURE.md section 6).

Every stage writes its outputs so that an interruption loses no finished record and duplicates none:

* whole files (summaries, tables, cases) are written to a temp file and renamed into place;
* per-record outputs (transcripts, Shapley values, trajectories) are appended one JSON line at a time and
  flushed; on resume :func:`read_jsonl` keeps the complete lines and :func:`repair_jsonl` drops a partial last line
  left by a crash, so the stage skips the ids already done.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Iterable, Iterator


def safe_name(name: str) -> str:
    """``name`` made safe as a file name: runs of characters other than ``A-Za-z0-9_.-`` become ``_`` (``doctor``
    if nothing is left; eval transcripts are named after their doctor)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "doctor"


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_lines(path: Path, lines: Iterable[str]) -> None:
    atomic_write_text(path, "".join(line + "\n" for line in lines))


def atomic_write_json(path: Path, obj: object) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def repair_jsonl(path: Path) -> int:
    """Drop a partial (unterminated or unparsable) last line left by an interrupted run; return lines kept."""
    return _repair(path, keep=False)[0]


def load_jsonl(path: Path) -> list[dict]:
    """:func:`repair_jsonl` and :func:`read_jsonl` in one pass over the file: repair it, return its records."""
    return _repair(path, keep=True)[1]


def _repair(path: Path, keep: bool) -> tuple[int, list[dict]]:
    """(complete lines, their records if ``keep``); rewrites the file without its partial tail if it has one."""
    if not path.exists():
        return 0, []
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    n_good, records = 0, []
    for line in lines:
        if not line.endswith("\n"):
            break
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            break
        if keep:
            records.append(rec)
        n_good += 1
    if n_good != len(lines):
        atomic_write_text(path, "".join(lines[:n_good]))
    return n_good, records


def read_jsonl(path: Path) -> Iterator[dict]:
    """The complete records of a JSONL output (after :func:`repair_jsonl`)."""
    if not path.exists():
        return
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


class JsonlAppender:
    """Appends records to a JSONL file, one flushed line per record (use as a context manager).

    Opening repairs the file first (:func:`repair_jsonl`, which reads all of it); a caller that has just repaired
    and read the file itself passes ``repair=False`` so that a run parses it once.
    """

    def __init__(self, path: Path, repair: bool = True):
        path.parent.mkdir(parents=True, exist_ok=True)
        if repair:
            repair_jsonl(path)
        self.path = path
        self._fh = path.open("a", encoding="utf-8")

    def write(self, record: dict) -> None:
        self._fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> "JsonlAppender":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def manifest(cfg: object, stage: str) -> dict:
    """What produced a run (``manifest.json``): the stage, its config dataclass and the library versions."""
    import dataclasses
    import importlib.metadata as md

    versions = {}
    for pkg in ("promed", "torch", "transformers", "trl", "sentence-transformers", "numpy"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    config = json.loads(json.dumps(dataclasses.asdict(cfg), default=str))
    return {"stage": stage, "config": config, "versions": versions}
