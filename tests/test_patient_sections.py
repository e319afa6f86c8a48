"""The fact patient on real clinicians' questions: fact categories, broad vs specific questions, the glossary, and
the labelled question files of benchmarks/data (issue 12)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promed.data.synthclinic import generate_cases
from promed.patient import REFUSAL, FactPatient, FactPatientConfig, default_embedder, safe_fact_ids
from promed.patient.categories import CATEGORIES, CATEGORY_HELP, case_categories, fact_category
from promed.patient.glossary import expand_question, glossary_terms, term_pattern
from promed.patient.intent import read_question
from promed.types import Case, Fact, Option

DATA = Path(__file__).resolve().parents[1] / "benchmarks" / "data"


def chart_case() -> Case:
    facts = (
        "A 58-year-old man comes to the physician.",  # 0 demographics
        "He has had a productive cough for the past 3 weeks.",  # 1 hpi
        "He denied fever.",  # 2 ros
        "He has a history of hypertension.",  # 3 past history
        "He takes lisinopril daily.",  # 4 medications
        "He has smoked one pack of cigarettes daily for 30 years.",  # 5 social
        "His father died of a myocardial infarction at 60.",  # 6 family
        "His temperature is 37.2°C (99°F), pulse is 92/min, and blood pressure is 138/86 mm Hg.",  # 7 vitals
        "Examination shows crackles over the right lower lobe.",  # 8 exam
        "Digital clubbing is present.",  # 9 exam (no "examination" word)
        "Physical examination shows a palpable liver edge.",  # 10 exam
        "Hemoglobin is 11.2 g/dL.",  # 11 labs
        "Serum sodium is 131 mEq/L.",  # 12 labs
        "A chest x-ray shows a right hilar mass.",  # 13 imaging
        "Physical examination shows Tuberculosis-like cavitation on percussion.",  # 14 exam, names option A: unsafe
    )
    options = tuple(Option(l, t) for l, t in zip("ABCD", ["Tuberculosis", "Lung cancer", "Sarcoidosis", "COPD"]))
    return Case("chart", "A 58-year-old man has a cough.", tuple(Fact(i, t) for i, t in enumerate(facts)),
                "Which of the following is the most likely diagnosis?", options, "B", "test")


@pytest.fixture(scope="module")
def patient() -> FactPatient:
    emb = default_embedder()
    emb.encode(["warm up"])
    return FactPatient(embedder=emb)


# ---- categories ---------------------------------------------------------------------------------------------------


def test_every_category_has_help():
    assert set(CATEGORY_HELP) == set(CATEGORIES) and len(CATEGORIES) == 14


def test_fact_categories_of_a_chart():
    cats = case_categories(chart_case())
    assert cats[:9] == ("demographics", "hpi", "ros", "past_history", "medications", "social", "family",
                        "vital_signs", "examination")
    assert cats[10:14] == ("examination", "labs", "labs", "imaging")
    assert all(c in CATEGORIES for c in cats)


@pytest.mark.parametrize("text, want", [
    ("She denies smoking.", "social"),  # a denial about a habit is social history, not review of systems
    ("Her brother was diagnosed with leukemia at 20.", "family"),
    ("A 28-year-old woman presents with palpitations.", "hpi"),  # the complaint is the new content
    ("He has had a 4-kg weight loss over the past 3 months.", "hpi"),
    ("An ECG shows ST elevations in leads II, III and aVF.", "other_tests"),
    ("She was started on intravenous ceftriaxone.", "treatment"),
    ("He is allergic to penicillin.", "allergies"),
])
def test_fact_category_precedence(text, want):
    assert fact_category(text) == want


def test_untagged_fact_continues_an_examination_or_a_test_but_not_the_history():
    texts = ("A newborn is delivered at term.", "Examination shows a small jaw.", "The newborn has low-set ears.",
             "An ECG shows sinus rhythm.", "The QRS interval is 0.11 seconds.", "Her sister has similar ears.",
             "She has had a cough for 3 days.", "The cough is dry.")
    case = Case("cont", texts[0], tuple(Fact(i, t) for i, t in enumerate(texts)), "Q?",
                tuple(Option(l, t) for l, t in zip("ABCD", ["W", "X", "Y", "Z"])), "A", "test")
    cats = case_categories(case)
    assert [fact_category(t) for t in texts[2:5:2]] == ["hpi", "hpi"]  # out of context: no rule matches
    assert cats[1:5] == ("examination", "examination", "other_tests", "other_tests")
    assert cats[6:] == ("hpi", "hpi")  # after the history the default stays


# ---- reading a question -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("question, sections", [
    ("What did the physical examination show?", ("examination",)),
    ("What are his vital signs?", ("vital_signs",)),
    ("What did the blood tests show?", ("labs",)),
    ("Any allergies?", ("allergies",)),
    ("What were your vital signs, and what did the blood work show?", ("vital_signs", "labs")),
    ("Is there any illness that runs in your family?", ("family",)),
    ("Does anyone in your family have any medical problems?", ("family",)),  # family history, not past history
    ("What did you find when you examined him? Anything on the ear exam?", ("examination",)),  # read part by part
    ("What has been done for him so far?", ("treatment",)),
    ("What medications are you taking?", ("medications",)),  # "taking" is scaffolding, not a finding
    ("Tell me about your past medical and surgical history.", ("past_history",)),
    ("Tell me about your sexual history.", ("social",)),
])
def test_broad_questions(question, sections):
    intent = read_question(question)
    assert intent.broad and set(intent.sections) == set(sections)


@pytest.mark.parametrize("question, hint", [
    ("What was your temperature?", "vital_signs"),
    ("What did the chest X-ray show?", "imaging"),  # names one study: specific
    ("What did the lab show for hemoglobin?", "labs"),  # a section word plus a finding: specific
    ("Do you smoke?", "social"),
    ("Any fever?", "vital_signs"),
])
def test_specific_questions_keep_their_hint(question, hint):
    intent = read_question(question)
    assert not intent.broad and intent.residue and hint in intent.hints


def test_mixed_and_scoped_questions():
    mixed = read_question("Any allergies, and do you smoke?")
    assert mixed.broad and mixed.mixed and mixed.sections == ("allergies",) and "smoke" in mixed.residue
    scoped = read_question("What did the eye examination show?")
    assert not scoped.broad and scoped.scoped == ("examination",) and scoped.residue == "eye"


def test_clauses_split_lists_of_findings():
    from promed.patient.fact import clauses

    assert clauses("His temperature is 37.2°C (99°F), pulse is 92/min, and blood pressure is 138/86 mm Hg.") == [
        "His temperature is 37.2°C (99°F)", "pulse is 92/min", "blood pressure is 138/86 mm Hg"]
    assert clauses("Leukocyte count is 15,000/mm3.") == []  # one clause; the thousands separator is not a split
    assert "bleeding gums for the past 3 weeks" in clauses(
        "He has had fever, fatigue, generalized weakness, and bleeding gums for the past 3 weeks.")


def test_synthclinic_knowledge_base_questions_are_specific():
    from promed.data.synthclinic.kb import FINDINGS

    assert not [f.question for f in FINDINGS if read_question(f.question).broad]


# ---- the patient --------------------------------------------------------------------------------------------------


def test_broad_question_reveals_its_section_in_case_order(patient):
    case = chart_case()
    (text, ids), = patient.reply([case], ["What did the physical examination show?"])
    assert ids == (8, 9, 10)  # fact 14 is exam too, but names an option: never revealed
    assert text == " ".join(case.facts[i].text for i in ids)
    assert 14 not in safe_fact_ids(case)


def test_broad_reply_is_capped(patient):
    case = chart_case()
    capped = FactPatient(embedder=patient.embedder, config=FactPatientConfig(max_broad_facts=2))
    assert capped.reply([case], ["What did the exam show?"])[0][1] == (8, 9)


def test_broad_question_on_an_empty_section_falls_back_to_retrieval(patient):
    case = chart_case()
    assert read_question("Any allergies?").broad
    assert patient.broad_ids(case, "Any allergies?") == ()  # no allergy fact: the retrieval rule decides
    assert patient.reply([case], ["Any allergies?"])[0] == (REFUSAL, ())


def test_specific_questions_and_pertinent_negatives(patient):
    case = chart_case()
    qs = ["Any fever?", "What was your temperature?", "Do you smoke?", "What did the chest X-ray show?",
          "What was your hemoglobin?", "What is your favourite colour?"]
    got = [ids for _, ids in patient.reply([case] * len(qs), qs)]
    assert 2 in got[0]  # "He denied fever."
    assert 7 in got[1]
    assert 5 in got[2]
    assert 13 in got[3]
    assert 11 in got[4]
    assert got[5] == ()


def test_mixed_question_adds_retrieval_to_the_section(patient):
    case = chart_case()
    alone = set(patient.reply([case], ["What did the blood tests show?"])[0][1])
    both = set(patient.reply([case], ["What did the blood tests show, and do you smoke?"])[0][1])
    assert alone == {11, 12} and both >= alone and 5 in both


def test_scoped_question_may_reveal_more_than_max_facts(patient):
    """A question about part of a section ("the lung and liver examination") may reveal up to max_broad_facts; a
    plain specific question at most max_facts (here with the threshold and margin out of the way)."""
    case = chart_case()
    loose = FactPatient(embedder=patient.embedder,
                        config=FactPatientConfig(threshold=-1.0, margin=float("inf"), max_facts=3, max_broad_facts=5))
    scoped = "What did the lung and liver examination show?"
    assert read_question(scoped).scoped == ("examination",)
    assert len(loose.reply([case], [scoped])[0][1]) == 5
    assert len(loose.reply([case], ["Do you cough at night?"])[0][1]) == 3
    assert 10 in patient.reply([case], [scoped])[0][1]


def test_broad_off_matches_the_retrieval_rule(patient):
    """With ``broad`` off a broad question goes through retrieval like any other (the old behaviour)."""
    case = chart_case()
    q = "What did the physical examination show?"
    off = FactPatient(embedder=patient.embedder, config=FactPatientConfig(broad=False))
    sims = off.similarities([case], [q])[0]
    assert off.reply([case], [q])[0][1] == off.select(case, sims, q)
    assert off.broad_ids(case, q) == ()


def test_config_rejects_a_zero_cap():
    with pytest.raises(ValueError, match="max_broad_facts"):
        FactPatientConfig(max_broad_facts=0)


def test_no_option_text_in_broad_replies_on_synthclinic(patient):
    cases = generate_cases("test", n=30, seed=0)
    qs = ["What did the physical examination show?", "What did the blood tests show?", "What did the imaging show?",
          "What medications do you take?", "What are your vital signs?", "Any other symptoms?"]
    for case in cases:
        for text, ids in patient.reply([case] * len(qs), qs):
            assert set(ids) <= set(safe_fact_ids(case))
            low = text.lower()
            assert not any(o.text.lower() in low for o in case.options)


# ---- glossary -----------------------------------------------------------------------------------------------------


def test_glossary_adds_clinical_terms():
    assert "exophthalmos" in expand_question("Are your eyes bulging?")
    assert "febrile" in glossary_terms("Any fever?")
    assert expand_question("What is your favourite colour?") == "What is your favourite colour?"
    pattern = term_pattern("Any fever?")
    assert pattern.search("Her temperature is 38.1 C.") and not pattern.search("She has a cough.")
    assert term_pattern("What is your favourite colour?") is None


# ---- the labelled question files ----------------------------------------------------------------------------------


def test_labelled_question_files_are_valid(mediq_path):
    """The benchmark's hand-written questions load through promed patient's own validator (ids, fact ranges)."""
    if not mediq_path.exists():
        pytest.skip(f"MediQ data absent ({mediq_path})")
    from promed.data.cases import load_cases
    from promed.data.questions import load_questions

    cases = load_cases(mediq_path).cases
    n = 0
    for split in ("tune", "dev", "test"):
        qs = load_questions(DATA / f"mediq_patient_{split}.jsonl", cases)
        assert {q.kind for q in qs} == {"specific", "broad", "negative", "unanswerable"}
        n += len(qs)
    assert n >= 450
    by_id = {c.id: c for c in cases}
    train = load_questions(DATA / "mediq_patient_train.jsonl", cases)  # the matcher's training questions
    holdout = load_questions(DATA / "mediq_patient_holdout.jsonl", cases)  # the large held-out set
    evaluation = {json.loads(line)["case_id"] for split in ("tune", "dev", "test")
                  for line in (DATA / f"mediq_patient_{split}.jsonl").read_text().splitlines()}
    train_ids, holdout_ids = {q.case_id for q in train}, {q.case_id for q in holdout}
    assert len(train) >= 1000 and len(holdout) >= 1000
    assert not train_ids & evaluation and not holdout_ids & (evaluation | train_ids)  # disjoint by case
    for q in train + holdout:
        assert set(q.facts) <= set(safe_fact_ids(by_id[q.case_id]))  # never a withheld fact
    lines = [line for name in ("mediq_fact_categories.jsonl", "mediq_fact_categories_dev.jsonl")
             for line in (DATA / name).read_text().splitlines()]
    assert len(lines) == 66
    for line in lines:
        rec = json.loads(line)
        assert len(rec["categories"]) == by_id[rec["case_id"]].n_facts
        assert set(rec["categories"]) <= set(CATEGORIES)
