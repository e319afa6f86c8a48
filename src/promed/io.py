"""Run storage: atomic writes and resumable JSONL outputs (ARCHITECTURE.md section 6).

Every stage writes its outputs so that an interruption loses no finished record and duplicates none:

* whole files (summaries, tables, cases) are written to a temp file and renamed into place;
* per-record outputs (transcripts, Shapley values, trajectories) are appended one JSON line at a time and
  flushed; on resume :func:`read_jsonl` keeps the complete lines and :func:`repair_jsonl` drops a partial last line
  left by a crash, so the stage skips the ids already done.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

from promed.errors import InputError


def safe_name(name: str) -> str:
    """``name`` made safe as a file name: runs of characters other than ``A-Za-z0-9_.-`` become ``_`` (``doctor``
    if nothing is left; eval transcripts are named after their doctor)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "doctor"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temp file and a rename; the file gets the usual mode (0666 less the
    umask, like every other output), not the temp file's private 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_lines(path: Path, lines: Iterable[str]) -> None:
    atomic_write_text(path, "".join(line + "\n" for line in lines))


def atomic_write_json(path: Path, obj: object) -> None:
    """``obj`` (plain JSON values, or a runner's result: :func:`jsonable`) as indented JSON, atomically."""
    atomic_write_text(path, json.dumps(jsonable(obj), indent=2, ensure_ascii=False) + "\n")


def jsonable(obj: object) -> object:
    """``obj`` as JSON values: an object with ``to_json()`` by it, other dataclasses field by field, paths as
    strings, tuples as lists, dicts and lists element by element."""
    if hasattr(obj, "to_json") and not isinstance(obj, type):
        return obj.to_json()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    return obj


class JsonRecord:
    """Mixin of the runners' frozen results (``promed.runs``): ``to_json()`` is the result's fields as JSON values,
    what its summary file holds; the CLI formats the result from its attributes."""

    def to_json(self) -> dict:
        return {f.name: jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]


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
    _drop_unbound(cfg, config)
    return {"stage": stage, "config": config, "versions": versions}


def _drop_unbound(cfg: object, config: dict) -> None:
    """Leave out of ``config`` (``cfg`` as a dict) the settings a nested config names in ``unbound_fields()``: ones
    that cannot change its records (the split shares of SynthClinic data), so that runs made before they existed
    still resume."""
    import dataclasses

    for name in getattr(cfg, "unbound_fields", lambda: ())():
        config.pop(name, None)
    for f in dataclasses.fields(cfg):  # type: ignore[arg-type]
        sub = getattr(cfg, f.name)
        if dataclasses.is_dataclass(sub) and not isinstance(sub, type) and isinstance(config.get(f.name), dict):
            _drop_unbound(sub, config[f.name])


def check_out_dir(out: Path, option: str = "--out") -> None:
    """Raise ValueError naming ``option`` if ``out`` cannot be (or become) a directory.

    ``out`` may be missing (it is created later) or an existing directory; an existing file there, or a file in
    place of one of its parents, is an input error rather than a traceback from ``mkdir``.
    """
    out = Path(out)
    for path in (out, *out.parents):
        if path.exists():
            if not path.is_dir():
                problem = "exists and is not a directory" if path == out else f"{path} is not a directory"
                raise InputError(f"{option} {out}: {problem}")
            return


# ---- runs bound to their settings -------------------------------------------------------------------------------

# Settings that do not change any run's records: where it is written, how it is shown, how servers are reached,
# how many threads work, run control (a time box, resuming), and how many cases are taken (records are per case,
# and a source's cases are prefix-stable, so a larger --limit extends a run). Everything else binds the directory
# to the run; a stage adds its own (promed eval: batch size and the list of doctors, see EVAL_NON_BINDING).
NON_BINDING = frozenset({"out", "progress", "progress_bar", "server", "overwrite", "debug", "num_threads",
                         "data_workers", "limit", "stop_after_steps", "resume"})


OVERWRITE_HELP = ("Start afresh when --out holds a run made with other settings (its outputs are deleted); without "
                  "it such a directory is refused and the same settings resume.")


class RunMismatch(InputError):
    """An output directory that holds a run made with other settings (an input error: exit code 2)."""


def data_fingerprint(cases, source: str | Path | None = None) -> str:
    """A hash of the data a run reads, so that changed data is never resumed silently.

    A data file: its bytes (any edit changes it). Generated cases (SynthClinic, whose source settings are compared
    as config): the content of the first case, which catches a changed generator while staying the same for every
    ``--limit``. Otherwise: every case's id and content.
    """
    h = hashlib.sha256()
    path = Path(source) if source is not None else None
    if path is not None and path.is_file():
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    else:
        for c in (cases[:1] if source is not None else cases):
            h.update(f"{c.id}\t{c.content_hash()}\n".encode())
    return h.hexdigest()[:16]


def _flatten(d: object, prefix: str = "") -> dict[str, object]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, object] = {}
    for k, v in d.items():
        out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def setting_differences(old: dict, new: dict, ignore: frozenset[str] = NON_BINDING) -> list[str]:
    """``"key: old -> new"`` for every binding setting that differs (dotted keys for nested configs)."""
    a, b = _flatten(old), _flatten(new)
    diffs = []
    for key in sorted(set(a) | set(b)):
        if any(part in ignore for part in key.split(".")):
            continue
        if a.get(key, "<unset>") != b.get(key, "<unset>"):
            diffs.append(f"{key}: {a.get(key, '<unset>')!r} -> {b.get(key, '<unset>')!r}")
    return diffs


def prepare_run(out: Path, cfg: object, stage: str, fingerprint: str, overwrite: bool = False,
                ignore: frozenset[str] = NON_BINDING) -> dict:
    """Check that ``out`` can hold this run, before anything is written; return the manifest to write.

    A directory whose ``manifest.json`` records other binding settings, another stage or other data is refused
    (:class:`RunMismatch`, naming the differences) unless ``overwrite``; resuming with the same settings is the
    default. ``--out`` naming a file is refused too. Nothing is created or deleted here: :func:`start_run` does it.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a directory")
    new = {**manifest(cfg, stage), "data_fingerprint": fingerprint}
    mpath = out / "manifest.json"
    if overwrite or not mpath.is_file():
        if overwrite and out.is_dir() and any(out.iterdir()) and not mpath.is_file():
            raise InputError(f"--out {out}: not a promed run directory (no manifest.json); --overwrite deletes only "
                             "run directories")
        return new
    try:
        old = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise RunMismatch(f"{mpath}: unreadable manifest ({err}); pass --overwrite to start afresh") from None
    diffs = []
    if old.get("stage") != stage:
        diffs.append(f"stage: {old.get('stage')!r} -> {stage!r}")
    diffs += setting_differences(old.get("config") or {}, new["config"], ignore)
    if old.get("data_fingerprint") not in (None, fingerprint):
        diffs.append("data: other cases (content differs)")
    if diffs:
        shown = "; ".join(diffs[:8]) + (f"; and {len(diffs) - 8} more" if len(diffs) > 8 else "")
        raise RunMismatch(f"{out}: holds a run with other settings ({shown}); pass --overwrite to start afresh, or "
                          "choose another --out")
    return new


def start_run(out: Path, new_manifest: dict, overwrite: bool = False) -> None:
    """Create ``out`` (emptied first with ``overwrite``) and write its manifest: the first bytes a run writes."""
    import shutil

    out = Path(out)
    if overwrite and (out / "manifest.json").is_file():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "manifest.json", new_manifest)
