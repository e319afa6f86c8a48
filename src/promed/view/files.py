"""Reading run files for the viewer: read-only, tolerant of a run still being written, confined to the run roots.

The stages' own readers (:func:`promed.io.load_jsonl`) *repair* a torn last line by rewriting the file; a viewer
must never write into a run another process may be appending to, so :func:`read_jsonl_lines` only reads. Its rules:

* the last line, if it has no newline (or does not parse), is a record being written: it is skipped and reported as
  ``torn`` (a note, not an error);
* any other line that does not parse is a problem naming the file and line; the other records are still shown.

:class:`FileCache` re-reads a file only when its size or modification time changed, so pages stay fast on a
finished run and follow a running one. :func:`confined` is the one gate between a URL and the file system.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Generic, TypeVar

from promed.errors import InputError

T = TypeVar("T")


@dataclass(frozen=True)
class JsonlRead:
    """The complete records of a JSONL file as ``(line number, object)``; ``problems`` names each bad line."""

    records: tuple[tuple[int, object], ...]
    problems: tuple[str, ...] = ()
    torn: bool = False


def read_jsonl_lines(path: Path) -> JsonlRead:
    """Every parsable line of ``path`` (1-based line numbers), without modifying the file.

    Raises OSError if the file cannot be read and UnicodeDecodeError if it is not UTF-8 text; callers turn both into
    a message on the page.
    """
    text = Path(path).read_text(encoding="utf-8")
    lines = text.split("\n")
    last_complete = len(lines) - 1  # the piece after the last "\n" is unterminated ("" for a complete file)
    records: list[tuple[int, object]] = []
    problems: list[str] = []
    torn = bool(lines[-1].strip())
    for i, line in enumerate(lines[:last_complete], 1):
        if not line.strip():
            continue
        try:
            records.append((i, json.loads(line)))
        except json.JSONDecodeError as err:
            if i == last_complete and not torn:  # the last line of a file being appended to: not yet whole
                torn = True
                continue
            problems.append(f"{path}:{i}: not valid JSON ({err.msg} at column {err.colno}); line skipped")
    return JsonlRead(tuple(records), tuple(problems), torn)


def read_json(path: Path) -> object:
    """A whole JSON file; raises ValueError naming the file (and position) if it does not parse."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})") from None


def confined(root: Path, relative: str) -> Path | None:
    """``root / relative`` if it is an existing regular file inside ``root`` after resolving ``..`` and symbolic
    links, else ``None``. Absolute paths, ``..`` escapes and links pointing out of the run are all refused here."""
    if not relative or "\x00" in relative or relative.startswith(("/", "\\")):
        return None
    base = Path(root).resolve()
    try:
        target = (base / relative).resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return None
    if not target.is_relative_to(base) or not target.is_file():
        return None
    return target


@dataclass
class _Entry(Generic[T]):
    stamp: tuple[int, int]
    value: T


@dataclass
class FileCache:
    """Values derived from files, recomputed when a file's (size, mtime) changes; safe across request threads.

    ``get(path, parse)`` returns ``parse(path)``, from the cache while the file is unchanged; a missing file raises
    FileNotFoundError (not cached: it may appear while the run goes on).
    """

    _entries: dict[tuple[Path, str], _Entry] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, path: Path, parse: Callable[[Path], T], kind: str = "") -> T:
        st = Path(path).stat()
        stamp = (st.st_size, st.st_mtime_ns)
        key = (Path(path), kind or getattr(parse, "__qualname__", ""))
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.stamp == stamp:
                return entry.value
        value = parse(path)
        with self._lock:
            self._entries[key] = _Entry(stamp, value)
        return value
