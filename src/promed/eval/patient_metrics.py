"""How well a patient simulator answers questions: pure functions of (revealed, expected) fact ids.

Definitions (``promed patient``'s ``summary.json``). A question is *labelled* when its expected facts are given
(possibly none: an *unanswerable* question); unlabelled questions count only in ``n_questions`` and
``answered_rate``. Over the labelled questions, with micro-averaging over (question, fact) pairs:

* ``true_positives`` = sum |revealed & expected|, ``n_revealed`` = sum |revealed|, ``n_expected`` = sum |expected|;
* ``precision`` = true_positives / n_revealed (``None`` when nothing was revealed);
* ``recall`` = true_positives / n_expected (``None`` when nothing was expected);
* ``f1`` = 2 true_positives / (n_revealed + n_expected), the harmonic mean of the two where both exist, 0 where
  one of them is 0 or undefined while the other side has pairs, ``None`` when there are no pairs at all (e.g.
  every labelled question unanswerable and refused). Facts revealed for an unanswerable question are false
  positives.
* ``refusal_rate_unanswerable`` = share of the unanswerable questions whose reply revealed no fact (``None``
  without unanswerable questions);
* ``answered_rate`` = share of all questions whose reply revealed at least one fact (``None`` without questions).

Per kind (:func:`scores_by_kind`): the same over the questions of each kind; questions without a kind belong to
no group.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence


@dataclass(frozen=True)
class PatientScores:
    """Scores of a patient on a set of questions (the module docstring defines every field)."""

    n_questions: int
    n_labelled: int
    n_unanswerable: int
    precision: float | None
    recall: float | None
    f1: float | None
    refusal_rate_unanswerable: float | None
    answered_rate: float | None
    true_positives: int
    n_revealed: int
    n_expected: int

    def to_json(self) -> dict:
        return asdict(self)


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def micro_prf(true_positives: int, n_revealed: int, n_expected: int) -> tuple[float | None, float | None,
                                                                             float | None]:
    """(precision, recall, F1) from pair counts; ``None`` where undefined (module docstring)."""
    return (_ratio(true_positives, n_revealed), _ratio(true_positives, n_expected),
            _ratio(2 * true_positives, n_revealed + n_expected))


def score_replies(revealed: Sequence[Sequence[int]], expected: Sequence[Sequence[int] | None]) -> PatientScores:
    """Scores of replies that revealed ``revealed[i]`` where ``expected[i]`` was expected (``None``: unlabelled)."""
    if len(revealed) != len(expected):
        raise ValueError(f"{len(revealed)} replies but {len(expected)} expectations")
    tp = n_rev = n_exp = n_lab = n_unans = refused = 0
    for got, want in zip(revealed, expected):
        if want is None:
            continue
        got_s, want_s = set(got), set(want)
        n_lab += 1
        tp += len(got_s & want_s)
        n_rev += len(got_s)
        n_exp += len(want_s)
        if not want_s:
            n_unans += 1
            refused += not got_s
    p, r, f1 = micro_prf(tp, n_rev, n_exp)
    return PatientScores(
        n_questions=len(revealed), n_labelled=n_lab, n_unanswerable=n_unans, precision=p, recall=r, f1=f1,
        refusal_rate_unanswerable=_ratio(refused, n_unans),
        answered_rate=_ratio(sum(bool(g) for g in revealed), len(revealed)),
        true_positives=tp, n_revealed=n_rev, n_expected=n_exp,
    )


def scores_by_kind(revealed: Sequence[Sequence[int]], expected: Sequence[Sequence[int] | None],
                   kinds: Sequence[str | None]) -> dict[str, PatientScores]:
    """:func:`score_replies` per kind, kinds in order of first appearance; ``None`` kinds are left out."""
    if not len(revealed) == len(expected) == len(kinds):
        raise ValueError(f"{len(revealed)} replies, {len(expected)} expectations, {len(kinds)} kinds")
    rows: dict[str, list[int]] = {}
    for i, kind in enumerate(kinds):
        if kind is not None:
            rows.setdefault(kind, []).append(i)
    return {k: score_replies([revealed[i] for i in idx], [expected[i] for i in idx]) for k, idx in rows.items()}
