"""Evaluation metrics as pure functions of transcripts."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

from promed.types import Transcript


def wilson_interval(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval for a binomial proportion k/n (well-behaved near 0 and 1, unlike Wald)."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class Metrics:
    """Per-doctor summary (the fields of ``summary.json``).

    accuracy: share of correct final answers; ci95: its Wilson interval; mean_questions: questions asked per
    consultation; fact_recall: mean share of a case's hidden facts revealed; invalid_rate: unreadable outputs per
    doctor output; truncated_rate: share of consultations that ran past the question budget (answer forced);
    mean_sig: mean SIG per question asked; total_sig: mean cumulative SIG per consultation (``None`` without SIG);
    n: consultations; skipped: unusable input cases, by reason. With sampled groups (``promed eval --samples G``):
    samples: G; sampled_accuracy: mean accuracy over the G sampled consultations of every case; pass_at_k: share of
    cases with at least one correct sampled consultation (pass@G). The other fields describe the greedy run.
    overlap: cases of this evaluation the doctor's checkpoint learned from (``--allow-overlap``; 0 otherwise:
    :mod:`promed.data.lineage`).
    """

    accuracy: float
    ci95: tuple[float, float]
    mean_questions: float
    fact_recall: float
    invalid_rate: float
    truncated_rate: float
    mean_sig: float | None
    total_sig: float | None
    n: int
    skipped: dict[str, int]
    samples: int = 1
    sampled_accuracy: float | None = None
    pass_at_k: float | None = None
    overlap: int = 0

    def to_json(self) -> dict:
        d = asdict(self)
        d["ci95"] = list(self.ci95)
        return d


def compute_metrics(
    transcripts: Sequence[Transcript], n_facts: Sequence[int], skipped: dict[str, int] | None = None,
    with_sig: bool = False,
) -> Metrics:
    """Summarise transcripts; ``with_sig`` when their turns carry SIG (see :mod:`promed.sig.reward`)."""
    n = len(transcripts)
    k = sum(bool(t.correct) for t in transcripts)
    questions = sum(t.n_questions for t in transcripts)
    recall = [len(t.known) / max(1, nf) for t, nf in zip(transcripts, n_facts)]
    outputs = sum(t.n_outputs for t in transcripts)
    sigs = [[tu.sig or 0.0 for tu in t.turns] for t in transcripts]
    flat = [s for row in sigs for s in row]
    return Metrics(
        accuracy=k / n if n else 0.0,
        ci95=wilson_interval(k, n),
        mean_questions=questions / n if n else 0.0,
        fact_recall=sum(recall) / n if n else 0.0,
        invalid_rate=sum(t.invalid for t in transcripts) / outputs if outputs else 0.0,
        truncated_rate=sum(t.end == "budget" for t in transcripts) / n if n else 0.0,
        mean_sig=(sum(flat) / len(flat) if flat else 0.0) if with_sig else None,
        total_sig=(sum(sum(row) for row in sigs) / n if n else 0.0) if with_sig else None,
        n=n,
        skipped=dict(skipped or {}),
    )


def group_metrics(groups: Sequence[Sequence[Transcript]]) -> tuple[float, float]:
    """(mean accuracy over every sampled consultation, pass@G: share of groups with a correct consultation)."""
    flat = [bool(t.correct) for g in groups for t in g]
    if not flat:
        return 0.0, 0.0
    return sum(flat) / len(flat), sum(any(bool(t.correct) for t in g) for g in groups) / len(groups)


def expected_calibration_error(probs, gold, bins: int = 10) -> float:
    """Top-label expected calibration error: the cases binned by the probability of their most likely option
    (``bins`` equal-width bins over [0, 1]); the bins' |accuracy - mean confidence|, weighted by their share of the
    cases. ``probs``: (n, options) rows summing to 1; ``gold``: the gold option's index per case."""
    import numpy as np

    p = np.asarray(probs, dtype=float)
    if p.ndim != 2 or len(p) != len(gold) or len(p) == 0:
        raise ValueError("probs must be (n, options) with n = len(gold) > 0")
    conf = p.max(1)
    right = (p.argmax(1) == np.asarray(gold)).astype(float)
    which = np.minimum((conf * bins).astype(int), bins - 1)
    return float(sum(abs(right[which == b].mean() - conf[which == b].mean()) * np.mean(which == b)
                     for b in range(bins) if np.any(which == b)))
