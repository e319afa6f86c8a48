"""Shared fixtures: small hand-made cases, a scripted patient, and the path to the shared MediQ data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from promed.types import Case, Fact, Option  # noqa: E402

MEDIQ = Path(__file__).resolve().parents[2] / "shared/data/mediq/imedqa_dev.jsonl"


def make_case(cid: str = "c1", n_facts: int = 4, answer: str = "B") -> Case:
    facts = tuple(Fact(i, f"Fact number {i} about the patient.") for i in range(n_facts))
    options = tuple(Option(l, t) for l, t in zip("ABCD", ["Influenza", "Pneumonia", "Asthma", "Bronchitis"]))
    return Case(cid, "A 40-year-old man presents with cough.", facts, "Which of the following is the most likely "
                "diagnosis?", options, answer, "test")


class KeywordPatient:
    """Reveals fact i when the question contains 'fact i' (a deterministic stand-in for retrieval)."""

    def reply(self, cases, questions):
        out = []
        for case, q in zip(cases, questions):
            ids = tuple(f.id for f in case.facts if f"fact {f.id}" in q.lower())
            out.append((" ".join(case.facts[i].text for i in ids) or "Sorry, I cannot answer that question.", ids))
        return out


@pytest.fixture
def case() -> Case:
    return make_case()


@pytest.fixture
def mediq_path() -> Path:
    if not MEDIQ.exists():
        pytest.skip("shared MediQ data not present")
    return MEDIQ
