"""Train / val / test splits of a case file by content hash (pure functions; no file is read here).

A case's split is a function of its content alone, never of its line number, its id or the rest of the file:
shuffle the file, append cases, delete others, and every case stays where it was. That is what lets a command that
trains (``--split train``) and one that evaluates (``--split test``) read the same file without sharing a case.

* :func:`case_fingerprint`: a sha256 of the case's initial information, hidden facts, question and options
  (letters and texts), each text Unicode-NFC normalised with its runs of whitespace collapsed. The gold letter, the
  id, the source and the SynthClinic annotations are left out: relabelling a case or renumbering a file moves
  nothing. It is also the key a contamination guard compares.
* :func:`split_of_fingerprint`: the fingerprint's first 64 bits as a number ``u`` in [0, 1), cut by
  :class:`SplitShares`: ``u < val`` is ``val``, ``u >= 1 - test`` is ``test``, the rest ``train``. Val sits at the
  bottom and test at the top so that changing one share moves cases only between that split and ``train``.
* A record's own ``split`` field (``train``, ``val`` or ``test``) wins over the hash (the loader reads it,
  :mod:`promed.data.cases`); :func:`check_split_value` validates it.

MediQ records are fingerprinted as read with the ``first-sentence`` protocol whatever ``--initial`` says
(:func:`promed.data.cases.load_cases`), so that ``--initial first-half-facts`` (training) and ``first-sentence``
(evaluation) put a case in the same split.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from promed.errors import InputError
from promed.types import Case

__all__ = ["DEFAULT_SHARES", "SPLITS", "SPLIT_CHOICES", "SplitShares", "case_fingerprint", "check_split_value",
           "split_counts", "split_of", "split_of_fingerprint"]

SPLITS = ("train", "val", "test")
SPLIT_CHOICES = (*SPLITS, "all")  # what --split accepts: one split, or every case


@dataclass(frozen=True)
class SplitShares:
    """The shares of the val and test splits (train gets the rest); each in [0, 1], together at most 1."""

    val: float = field(default=0.1, metadata={"help": "The share of cases in the val split (by content hash)."})
    test: float = field(default=0.1, metadata={"help": "The share of cases in the test split (by content hash; "
                                                       "train gets the rest)."})

    def __post_init__(self) -> None:
        for name, share in (("val", self.val), ("test", self.test)):
            if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0.0 <= share <= 1.0:
                raise InputError(f"--{name}-share must be a number in [0, 1], got {share!r}")
        if self.val + self.test > 1.0:
            raise InputError(f"--val-share + --test-share must be <= 1, got {self.val} + {self.test}")


DEFAULT_SHARES = SplitShares()  # val 0.1, test 0.1, train 0.8


def _norm(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def case_fingerprint(case: Case) -> str:
    """The sha256 (hex) of a case's content: initial information, hidden facts (in order), question, options.

    Texts are NFC-normalised with whitespace runs collapsed, so a reformatted copy of a case has the same
    fingerprint; the id, the gold letter, the source and annotations do not count. A case read under another
    initial-information protocol carries its record's fingerprint as ``origin``, which is returned instead.
    """
    if case.origin:
        return case.origin
    content = {"initial": _norm(case.initial), "facts": [_norm(f.text) for f in case.facts],
               "question": _norm(case.question), "options": [[o.letter, _norm(o.text)] for o in case.options]}
    blob = json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def split_of_fingerprint(fingerprint: str, shares: SplitShares = DEFAULT_SHARES) -> str:
    """``train``, ``val`` or ``test`` for a :func:`case_fingerprint` (module docstring: the cut)."""
    u = int(fingerprint[:16], 16) / 2.0 ** 64
    if u < shares.val:
        return "val"
    if u >= 1.0 - shares.test:
        return "test"
    return "train"


def split_of(case: Case, shares: SplitShares = DEFAULT_SHARES) -> str:
    """The split of ``case`` by content hash (a record's own ``split`` field is the loader's business)."""
    return split_of_fingerprint(case_fingerprint(case), shares)


def check_split_value(value: object) -> str | None:
    """The problem with a record's ``split`` field value, or None if it is one of :data:`SPLITS`."""
    if not isinstance(value, str):
        return f"expected str, got {'null' if value is None else type(value).__name__}"
    if value not in SPLITS:
        return f"unknown split {value!r}; choose from {', '.join(SPLITS)}"
    return None


def split_counts(splits: Iterable[str]) -> dict[str, int]:
    """``{"train": n, "val": n, "test": n}`` for a sequence of split names (every split present, 0 if empty)."""
    counts = dict.fromkeys(SPLITS, 0)
    for s in splits:
        counts[s] += 1
    return counts
