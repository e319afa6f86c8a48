"""The contamination guard: which cases a checkpoint learned from, and how many of an evaluation's cases those are.

Every output that learns from cases records their content fingerprints (:func:`promed.data.splits.case_fingerprint`)
in ``learned_cases.json`` beside it, inherited along the chain:

* ``promed pretrain``: the generated train-split cases;
* ``promed mcts``: the cases it searched (its trajectories end in their gold answers);
* ``promed sft``: the lineage beside its trajectories file (the MCTS run's) and its base model's;
* ``promed grpo``: its training cases and its base model's (an SFT checkpoint's, and so on back).

``promed eval`` of an ``llm:``/``ask:`` doctor reads the lineage of the checkpoint (or of the run around a
``checkpoints/checkpoint-N`` directory) and refuses cases it learned from: :func:`check_overlap` raises an
:class:`promed.errors.InputError` naming the checkpoint and the count, unless the caller allows it (``--allow-overlap``),
in which case the count is reported and the table marks the row. No peer tool has such a guard; the SFT
trajectories end in the gold letter, so an evaluation on training cases measures memorisation, not questioning.

A model without a lineage file (a hub model, a checkpoint made before this guard) has nothing recorded: the guard
cannot see what it learned, and says nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from promed.data.splits import case_fingerprint
from promed.errors import InputError
from promed.types import Case

__all__ = ["LINEAGE_FILE", "Lineage", "check_overlap", "lineage_dir", "lineage_of_cases", "model_lineage",
           "read_lineage", "write_lineage"]

LINEAGE_FILE = "learned_cases.json"


@dataclass(frozen=True)
class Lineage:
    """The fingerprints of the cases a checkpoint (or a trajectory file) learned from, with where they came from
    (``sources``: one line per step of the chain, e.g. ``"grpo: 800 cases of synthclinic (train)"``)."""

    fingerprints: frozenset[str] = frozenset()
    sources: tuple[str, ...] = ()

    def union(self, other: "Lineage | None") -> "Lineage":
        if other is None:
            return self
        return Lineage(self.fingerprints | other.fingerprints, (*self.sources, *other.sources))

    def overlap(self, cases: Sequence[Case]) -> list[str]:
        """The ids of ``cases`` whose content this lineage learned from."""
        return [c.id for c in cases if case_fingerprint(c) in self.fingerprints]

    def to_json(self) -> dict:
        return {"sources": list(self.sources), "n_cases": len(self.fingerprints),
                "fingerprints": sorted(self.fingerprints)}


def lineage_of_cases(cases: Iterable[Case], label: str) -> Lineage:
    """A lineage of ``cases`` learned by one step (``label`` says which, e.g. ``"mcts: runs/mcts"``)."""
    prints = frozenset(case_fingerprint(c) for c in cases)
    return Lineage(prints, (f"{label} ({len(prints)} cases)",))


def lineage_dir(target: str | Path) -> Path | None:
    """The directory whose ``learned_cases.json`` describes ``target``: a checkpoint directory itself, the run around
    one of its ``checkpoints/checkpoint-N``, or the directory of a trajectories file; None if none has one."""
    p = Path(target).expanduser()
    for d in (p, p.parent, p.parent.parent) if p.is_dir() else (p.parent,):
        if (d / LINEAGE_FILE).is_file():
            return d
    return None


def read_lineage(target: str | Path) -> Lineage | None:
    """The lineage recorded for ``target`` (:func:`lineage_dir`), or None when nothing is recorded."""
    d = lineage_dir(target)
    if d is None:
        return None
    path = d / LINEAGE_FILE
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
        return Lineage(frozenset(rec["fingerprints"]), tuple(rec.get("sources") or ()))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InputError(f"{path}: not a lineage file ({err})") from None


def model_lineage(spec: str | None) -> Lineage | None:
    """The lineage of a model spec's local checkpoint (``hf:<dir>``, a bare directory), None for anything else."""
    if not spec:
        return None
    target = spec[3:] if spec.startswith("hf:") else spec
    return read_lineage(target) if Path(target).expanduser().is_dir() else None


def write_lineage(out: Path, lineage: Lineage) -> None:
    """``out/learned_cases.json`` (atomic)."""
    from promed.io import atomic_write_json

    atomic_write_json(Path(out) / LINEAGE_FILE, lineage.to_json())


def check_overlap(doctor: str, target: str | Path, cases: Sequence[Case], allow: bool) -> int:
    """How many of ``cases`` the checkpoint behind ``doctor`` learned from; an :class:`InputError` naming the
    checkpoint and the count when there are any and ``allow`` is false. ``target`` is the doctor's model spec or
    checkpoint directory (``hf:<dir>`` or ``<dir>``); anything else (a hub id, ``gemma-270m``) has no lineage."""
    lineage = model_lineage(str(target))
    if lineage is None:
        return 0
    ids = lineage.overlap(cases)
    if ids and not allow:
        shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
        raise InputError(f"--doctor {doctor}: the checkpoint {target} learned from {len(ids)} of these "
                         f"{len(cases)} cases ({shown}; {'; '.join(lineage.sources)}): evaluate on held-out cases "
                         f"(--split test) or pass --allow-overlap to run anyway")
    return len(ids)
