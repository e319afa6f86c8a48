"""Which runs the viewer shows: the directories given on the command line and the runs nested in them.

A run is a directory holding any of :data:`RUN_MARKERS` (what ``promed eval``, ``sig``, ``mcts``, ``sft``,
``pretrain`` write). ``promed stage1`` writes one run per step under its own directory (``pretrain/``, ``mcts/``,
``sft/``, ``eval/``), so the sub-directories of a given directory are searched too (two levels), and each run found
is shown under its own label. Nothing is read here but directory listings, so the viewer starts at once whatever the
size of the runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from promed.errors import InputError

RUN_MARKERS = ("manifest.json", "summary.json", "transcripts", "shapley.jsonl", "trajectories.jsonl",
               "train_log.json", "log.jsonl", "checkpoints")
SKIP_DIRS = {"transcripts", "checkpoints", "base", "__pycache__"}
NESTING = 2


@dataclass(frozen=True)
class RunDir:
    """One run. ``rid``: its key in URLs; ``path``: its directory (the root that pages may read files from);
    ``label``: the directory given on the command line, plus the sub-directory for a nested run."""

    rid: str
    path: Path
    label: str

    def file(self, name: str) -> Path:
        return self.path / name


def is_run(path: Path) -> bool:
    return any((path / m).exists() for m in RUN_MARKERS)


def _nested(path: Path, depth: int) -> list[Path]:
    if depth == 0:
        return []
    try:
        subs = sorted(p for p in path.iterdir() if p.is_dir() and p.name not in SKIP_DIRS
                      and not p.name.startswith("."))
    except OSError:
        return []
    out = []
    for sub in subs:
        if is_run(sub):
            out.append(sub)
        out += _nested(sub, depth - 1)
    return out


def discover(paths: Sequence[Path]) -> list[RunDir]:
    """The runs in ``paths``, in the order given (each directory, then its nested runs by name).

    Raises ValueError naming a path that is not a directory or holds no run (an input error: exit code 2).
    """
    if not paths:
        raise InputError("no run directory given: promed view RUN_DIR [RUN_DIR ...] (or --live)")
    found: list[tuple[Path, str]] = []
    for given in paths:
        given = Path(given)
        if not given.exists():
            raise InputError(f"{given}: no such run directory")
        if not given.is_dir():
            raise InputError(f"{given}: not a directory (give a run directory, e.g. the --out of promed eval)")
        runs = ([given] if is_run(given) else []) + _nested(given, NESTING)
        if not runs:
            raise InputError(f"{given}: not a promed run directory (none of {', '.join(RUN_MARKERS)} in it or in "
                             "its sub-directories)")
        for run in runs:
            rel = run.relative_to(given)
            found.append((run, str(given) if rel == Path(".") else f"{given}/{rel.as_posix()}"))
    seen: set[Path] = set()
    out = []
    for run, label in found:
        key = run.resolve()
        if key not in seen:  # the same run given twice (or nested in another given directory) is shown once
            seen.add(key)
            out.append(RunDir(str(len(out)), run, label))
    return out
