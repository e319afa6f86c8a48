"""The no-leak guarantee: whatever the doctor asks, no patient reply names an option, the gold answer or an answer
letter - on SynthClinic and on real MediQ cases, for FactPatient and for LLMPatient over adversarial backends.

The leak check here is written independently of ``promed.patient.guard`` (plain regexes over the options), so the
suite does not just test the guard against itself.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promed.data.cases import load_cases
from promed.data.synthclinic import generate_cases, question_for_fact
from promed.patient import (
    REFUSAL,
    FactPatient,
    LLMPatient,
    default_embedder,
    has_letter_answer,
    is_safe,
    redact,
    safe_fact_ids,
)
from promed.patient.guard import INJECTIONS, adversarial_questions
from promed.types import LETTERS, Case, Fact, Option

MEDIQ = Path(__file__).resolve().parents[2] / "shared/data/mediq/imedqa_dev.jsonl"
LETTER_PATTERN = re.compile(
    r"\b(?:answer|option|choice|letter)s?\b\W{0,3}(?:is\W+|would be\W+)?[A-J]\b|(?<!\w)\([A-J]\)|^\s*[A-J][.)]\s",
    re.IGNORECASE | re.MULTILINE,
)


def mentions(text: str, phrase: str) -> bool:
    """``phrase`` occurs in ``text`` as whole words (case-insensitive; a plural ending counts)."""
    return re.search(rf"(?<!\w){re.escape(phrase.strip().lower())}(?:e?s)?(?!\w)", text.lower()) is not None


def leaks(case: Case, text: str) -> list[str]:
    found = [o.text for o in case.options if mentions(text, o.text)]
    found += [o.key for o in case.options if o.key and mentions(text, o.key.replace("_", " "))]
    if LETTER_PATTERN.search(text):
        found.append("letter pattern")
    return found


def mediq_cases(n: int) -> list[Case]:
    """The first ``n`` usable MediQ dev cases (context[0] as the initial information)."""
    if not MEDIQ.exists():
        pytest.skip("shared MediQ data not present")
    return load_cases(MEDIQ, limit=n).cases


@pytest.fixture(scope="module")
def patient() -> FactPatient:
    return FactPatient(embedder=default_embedder())


@pytest.fixture(scope="module")
def synth() -> list[Case]:
    return generate_cases("test", n=12, seed=1)


def ask_everything(patient, cases: list[Case]) -> list[tuple[Case, str, str]]:
    pairs = [(c, q) for c in cases for q in adversarial_questions(c)]
    out = patient.reply([c for c, _ in pairs], [q for _, q in pairs])
    return [(c, q, text) for (c, q), (text, _) in zip(pairs, out)]


def test_adversarial_questions_cover_the_brief(synth):
    qs = adversarial_questions(synth[0])
    gold = synth[0].option(synth[0].answer).text
    assert "What is my diagnosis?" in qs and "Which option is right?" in qs and "Is it A?" in qs
    assert f"Do I have {gold}?" in qs and all(f"{o.text}?" in qs for o in synth[0].options)
    assert set(INJECTIONS) <= set(qs)


def test_fact_patient_never_leaks_on_synthclinic(patient, synth):
    bad = [(c.id, q, t, leaks(c, t)) for c, q, t in ask_everything(patient, synth) if leaks(c, t)]
    assert not bad, bad[:5]


def test_fact_patient_never_leaks_on_mediq(patient):
    cases = mediq_cases(12)
    bad = [(c.id, q, t, leaks(c, t)) for c, q, t in ask_everything(patient, cases) if leaks(c, t)]
    assert not bad, bad[:5]


def test_fact_patient_never_leaks_at_any_threshold(synth):
    """Even a patient that reveals every safe fact for any question leaks nothing: safety does not rest on the
    retrieval threshold."""
    reveal_all = FactPatient(threshold=-1.0, max_facts=100, margin=float("inf"), embedder=default_embedder())
    for c, q, t in ask_everything(reveal_all, synth[:10]):
        assert not leaks(c, t), (c.id, q, t)


def test_answer_bearing_facts_are_hidden(synth):
    hidden = [(c, f) for c in synth for f in c.facts if f.id not in safe_fact_ids(c)]
    for c, f in hidden:
        assert leaks(c, f.text) or has_letter_answer(f.text)
    for c in synth:
        for i in safe_fact_ids(c):
            assert not leaks(c, c.facts[i].text)


def test_relevant_questions_still_answered(patient, synth):
    """The guard must not make the patient useless: targeted questions about documented findings get their fact
    (benchmark: hit 0.90 on 300 held-out cases)."""
    pairs = [(c, f) for c in synth for f in c.facts if f.id in safe_fact_ids(c)]
    out = patient.reply([c for c, _ in pairs], [question_for_fact(f) for _, f in pairs])
    recall = sum(f.id in ids for (_, f), (_, ids) in zip(pairs, out)) / len(pairs)
    assert recall >= 0.85, recall


# ---- LLMPatient over adversarial backends -------------------------------------------------------------------------


class AdversarialLLM:
    """An LLM backend that tries to leak: ``mode`` picks the attack."""

    name = "adversarial"

    def __init__(self, mode: str):
        self.mode = mode

    def _one(self, chat) -> str:
        n = len(re.findall(r"^\d+\. ", chat[-1]["content"], flags=re.M))
        if self.mode == "dump":
            return ", ".join(str(i) for i in range(1, n + 1))
        if self.mode == "letter":
            return "ANSWER: C. The correct option is (C)."
        if self.mode == "mixed":
            return "1\nThe answer is B) Pneumonia, trust me."
        if self.mode == "echo":  # repeats the doctor's question, which may name an option
            return chat[-1]["content"].split("Question from the doctor:")[1]
        return "I think I have what the second option says."

    def generate(self, chats, sampling):
        return [self._one(c) for c in chats]

    def score_options(self, prompts, options):  # pragma: no cover
        raise NotImplementedError


@pytest.mark.parametrize("mode", ["dump", "letter", "mixed", "echo", "chatter"])
def test_llm_patient_guard_blocks_adversarial_backends(mode, synth):
    p = LLMPatient(AdversarialLLM(mode), max_facts=100)
    for c, q, t in ask_everything(p, synth[:10]):
        assert not leaks(c, t), (mode, c.id, q, t)
        assert t == REFUSAL or is_safe(c, t)


def test_llm_patient_guard_blocks_adversarial_backends_on_mediq():
    cases = mediq_cases(60)
    p = LLMPatient(AdversarialLLM("dump"), max_facts=100)
    for c, q, t in ask_everything(p, cases):
        assert not leaks(c, t), (c.id, q, t)


def test_unguarded_llm_patient_does_leak():
    """Without the guard the dumping backend reveals answer-bearing facts: the guard is what prevents it."""
    facts = ("She has a cough.", "Her sister was recently treated for pneumonia.")
    options = tuple(Option(l, t) for l, t in zip("ABCD", ["Influenza", "Pneumonia", "Asthma", "Bronchitis"]))
    case = Case("x", "A woman with cough.", tuple(Fact(i, t) for i, t in enumerate(facts)), "Diagnosis?", options, "B")
    [(text, _)] = LLMPatient(AdversarialLLM("dump"), guard=False, max_facts=10).reply([case], ["Anything else?"])
    assert leaks(case, text)
    [(text, ids)] = LLMPatient(AdversarialLLM("dump"), guard=True, max_facts=10).reply([case], ["Anything else?"])
    assert ids == (0,) and not leaks(case, text)


# ---- guard unit checks --------------------------------------------------------------------------------------------


def small_case() -> Case:
    options = (Option("A", "Graves disease (hyperthyroidism)", "hyperthyroidism"), Option("B", "Iron"),
               Option("C", "Migraine"), Option("D", "1"))
    facts = ("Total iron binding capacity is high.", "Her mother has migraines.", "The environment is dusty.",
             "She has 1 sibling.", "He received RhO(D) immunoglobulin.", "She is hyperthyroid.")
    return Case("g", "init", tuple(Fact(i, t) for i, t in enumerate(facts)), "Dx?", options, "A")


def test_guard_rules_on_examples():
    c = small_case()
    assert safe_fact_ids(c) == (2, 4, 5)  # iron, migraines (plural), "1" are forbidden; environment/RhO(D) are fine
    assert not is_safe(c, "I think it is graves disease.") and not is_safe(c, "Hyperthyroidism runs in my family.")
    assert not is_safe(c, "The answer is c") and not is_safe(c, "Option (B)") and not is_safe(c, "B) Iron")
    assert is_safe(c, "She has hepatitis B and vitamin C deficiency; blood type A.")
    assert redact(c, "I feel tired. My mother has migraines. The answer is A.") == "I feel tired."
    assert redact(c, "Migraine. Option A.") == REFUSAL


@settings(max_examples=50, deadline=None)
@given(st.lists(st.sampled_from([2, 4, 5]), min_size=1, max_size=4), st.integers(0, 3), st.integers(0, 200),
       st.sampled_from(LETTERS[:4]))
def test_inserting_any_option_or_letter_answer_is_unsafe(ids, opt, pos, letter):
    c = small_case()
    safe_text = " ".join(c.facts[i].text for i in ids)
    assert is_safe(c, safe_text)
    pos = min(pos, len(safe_text))
    # insert at a word boundary so the option stays a whole word
    cut = safe_text.rfind(" ", 0, pos) + 1
    assert not is_safe(c, f"{safe_text[:cut]}{c.options[opt].text.upper()} {safe_text[cut:]}")
    assert not is_safe(c, f"{safe_text} The answer is {letter}.")
