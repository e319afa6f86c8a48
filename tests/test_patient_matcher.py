"""The learned matcher of the fact patient: the training-pair generator and the config switch (fast; fakes only)."""

from __future__ import annotations

import random
import re
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from promed.data.questions import PatientQuestion
from promed.errors import InputError
from promed.data.synthclinic import generate_cases
from promed.patient import REFUSAL, FactPatient, FactPatientConfig, default_embedder, safe_fact_ids
from promed.patient.embed import tuned_embedder
from promed.patient.matcher import PairScorer, load_cross_encoder
from promed.types import Case, Fact, Option

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # the training-only pair writer
from patient_pairs import (could_answer, fact_questions, generate_pairs, hard_negatives,  # noqa: E402
                           labelled_pairs, lay_rewrite)


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    return generate_cases("train", n=16, seed=3)


def real_like_case(cid: str) -> Case:
    facts = ("Patient is a 45-year-old man.", "Patient complains of fatigue and weakness for 3 weeks.",
             "Patient denies fever.", "His pulse is 95/min.", "Chest X-ray shows a left lower lobe infiltrate.",
             "His mother has type 2 diabetes mellitus.", "He smokes 1 pack of cigarettes per day.",
             "Physical examination shows abdominal tenderness.")
    options = tuple(Option(l, t) for l, t in zip("ABCD", ["Pneumonia", "Anemia", "Asthma", "Gout"]))
    return Case(cid, "A 45-year-old man comes to the physician.", tuple(Fact(i, t) for i, t in enumerate(facts)),
                "Which of the following is the most likely diagnosis?", options, "A", "test")


# ---- pairs ---------------------------------------------------------------------------------------------------------


def test_pairs_exclude_labelled_cases(cases):
    mediq = [real_like_case(f"m{i}") for i in range(6)] + cases[:8]
    excluded = {"m0", "m3", cases[0].id, cases[5].id}
    pairs = generate_pairs(mediq, cases[8:], exclude_ids=excluded, seed=0, p_undocumented=1.0, p_broad=1.0)
    assert pairs and not {p.case_id for p in pairs} & excluded
    excluded_texts = {f.text for c in mediq if c.id in excluded for f in c.facts} - {
        f.text for c in mediq + cases[8:] if c.id not in excluded for f in c.facts}
    assert not {p.fact for p in pairs} & excluded_texts  # nor any fact only they hold
    assert {p.label for p in pairs} == {0.0, 1.0}


def test_pairs_are_deterministic_under_a_seed(cases):
    mediq = [real_like_case(f"m{i}") for i in range(4)] + cases[:6]
    a = generate_pairs(mediq, cases[6:10], seed=7)
    assert a == generate_pairs(mediq, cases[6:10], seed=7)
    assert a != generate_pairs(mediq, cases[6:10], seed=8)
    assert generate_pairs(mediq, cases[6:10], seed=7, max_pairs=5) == a[:5]


def test_hard_negatives_are_not_the_positive(cases):
    mediq = [real_like_case(f"m{i}") for i in range(4)] + cases[:8]
    pairs = generate_pairs(mediq, cases[8:], seed=1)
    pos = {(p.case_id, p.question, p.fact) for p in pairs if p.label == 1.0}
    neg = {(p.case_id, p.question, p.fact) for p in pairs if p.label == 0.0}
    assert pos and neg and not pos & neg
    for p in pairs:
        if p.label == 0.0 and p.source.endswith("neg"):
            assert not could_answer(p.question, p.fact)
    facts = [f.text for f in real_like_case("x").facts]
    rng = random.Random(0)
    for q, j in (("Any fever?", 2), ("What is your pulse?", 3), ("Do you smoke?", 6)):
        neg_ids = hard_negatives(q, facts, [j], rng, n=3)
        assert j not in neg_ids and len(neg_ids) == 3
        assert all(not could_answer(q, facts[i]) for i in neg_ids)


def test_labelled_pairs_follow_the_hand_labels_exactly():
    case = real_like_case("h1")
    rows = [PatientQuestion(1, "h1", "Any fever or a cough?", "specific", (2, 4)),
            PatientQuestion(2, "h1", "Have you lost weight?", "unanswerable", ()),
            PatientQuestion(3, "h1", "Tell me about your smoking.", "broad", (6,)),
            PatientQuestion(4, "h1", "Any rash?")]  # unlabelled: no pairs
    pairs = labelled_pairs({"h1": case}, rows, random.Random(0), negatives=3)
    by_q = {r.question: [p for p in pairs if p.question == r.question] for r in rows}
    assert not by_q["Any rash?"]
    text = {f.text: f.id for f in case.facts}
    for r in rows[:3]:
        pos = {text[p.fact] for p in by_q[r.question] if p.label == 1.0}
        neg = [text[p.fact] for p in by_q[r.question] if p.label == 0.0]
        assert pos == set(r.facts)  # every labelled fact, nothing else, is a positive
        assert len(neg) == 3 and not set(neg) & set(r.facts)  # unscreened: "fever" facts may be negatives
        assert {p.source for p in by_q[r.question] if p.label == 0.0} == (
            {"hand-neg"} if r.facts else {"hand-unanswerable"})
    assert pairs == labelled_pairs({"h1": case}, rows, random.Random(0), negatives=3)


def test_rule_made_questions_target_their_fact():
    rng = random.Random(0)
    assert all("pulse" in q.lower() for q in fact_questions("His pulse is 95/min.", rng))
    assert any("x-ray" in q.lower() or "infiltrate" in q.lower()
               for q in fact_questions("Chest X-ray shows a left lower lobe infiltrate.", rng, k=3))
    assert any(re.search(r"fever", q) for q in fact_questions("Patient denies fever.", rng, k=3))
    assert any("family" in q.lower() or "diabetes" in q.lower()
               for q in fact_questions("His mother has type 2 diabetes mellitus.", rng, k=3))
    assert lay_rewrite("Any abdominal pain?", random.Random(0)) != "Any abdominal pain?"
    assert lay_rewrite("What is your name?", random.Random(0)) is None


# ---- the config switch ----------------------------------------------------------------------------------------------


class FakeCrossEncoder:
    """A CrossEncoder stand-in: probability = share of the question's content words found in the fact."""

    def __init__(self) -> None:
        self.calls = 0

    def predict(self, pairs, batch_size=64, show_progress_bar=False):
        self.calls += 1
        out = []
        for q, f in pairs:
            words = set(re.findall(r"[a-z]{4,}", q.lower())) - {"what", "your", "have", "does", "tell", "about"}
            out.append(len(words & set(re.findall(r"[a-z]{4,}", f.lower()))) / max(1, len(words)))
        return np.array(out, dtype=np.float32)


QUESTIONS = ("Any fever?", "Do you smoke?", "What is your pulse?", "What did the physical examination show?",
             "What is your favourite colour?", "What is the diagnosis?", "Any chest pain or cough?")


def test_matcher_off_is_todays_patient(cases):
    emb = default_embedder()
    cs = [real_like_case("m")] + cases[:5]
    pairs = [(c, q) for c in cs for q in QUESTIONS]
    today = FactPatient.from_config(FactPatientConfig(), embedder=emb).reply(*zip(*pairs))
    fake = FakeCrossEncoder()
    off = FactPatientConfig(matcher="", matcher_threshold=0.99, matcher_gate=True, matcher_candidates=1)
    got = FactPatient.from_config(off, embedder=emb, scorer=PairScorer(model=fake)).reply(*zip(*pairs))
    assert got == today and fake.calls == 0  # a scorer passed in is ignored while the matcher is off
    assert FactPatientConfig().matcher == ""  # off by default


def test_matcher_on_decides_among_candidates_and_stays_verbatim(cases):
    emb = default_embedder()
    case = real_like_case("m")
    fake = FakeCrossEncoder()
    cfg = FactPatientConfig(matcher="fake", matcher_threshold=0.99, matcher_floor=-1.0, matcher_weight=1.0,
                            matcher_margin=1.0)
    p = FactPatient.from_config(cfg, embedder=emb, scorer=PairScorer(model=fake))
    out = p.reply([case] * len(QUESTIONS), list(QUESTIONS))
    assert fake.calls == 1  # one batched pass for all candidates
    by_q = dict(zip(QUESTIONS, out))
    assert by_q["Any fever?"] == (case.facts[2].text, (2,))
    assert by_q["What is your pulse?"] == (case.facts[3].text, (3,))
    assert by_q["What is your favourite colour?"] == (REFUSAL, ())
    assert by_q["What is the diagnosis?"] == (REFUSAL, ())  # refused before any matching
    assert by_q["What did the physical examination show?"][1]  # broad: the section rule, unchanged
    for text, ids in out:
        assert set(ids) <= set(safe_fact_ids(case))
        assert text == (" ".join(case.facts[i].text for i in ids) if ids else REFUSAL)
    # gate mode only removes what the similarity rule chose
    gate = FactPatient.from_config(replace(cfg, matcher_gate=True, matcher_threshold=0.5), embedder=emb,
                                   scorer=PairScorer(model=FakeCrossEncoder()))
    rule = FactPatient.from_config(FactPatientConfig(), embedder=emb)
    for (_, g), (_, r) in zip(gate.reply([case] * len(QUESTIONS), list(QUESTIONS)),
                              rule.reply([case] * len(QUESTIONS), list(QUESTIONS))):
        assert set(g) <= set(r)


def test_pair_scorer_caches_and_missing_model_is_an_error(tmp_path):
    fake = FakeCrossEncoder()
    s = PairScorer(model=fake)
    a = s.score([("Any fever?", "Patient denies fever."), ("Any fever?", "Patient denies fever.")])
    s.score([("Any fever?", "Patient denies fever.")])
    assert a.shape == (2,) and a[0] == a[1] and fake.calls == 1 and s.n_scored == 1
    with pytest.raises(InputError, match="train_patient_matcher"):
        load_cross_encoder(str(tmp_path / "nothing"))
    with pytest.raises(InputError, match="--kind bi"):
        tuned_embedder(str(tmp_path / "nothing"))
    with pytest.raises(ValueError):
        FactPatientConfig(matcher_weight=1.5)
    assert FactPatientConfig().embed_model == ""  # the shipped MiniLM by default
