"""Patient simulators: the embedder, FactPatient retrieval and LLMPatient's fact-select prompt and parser."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promed.data.synthclinic import candidate_questions, generate_cases, question_for_fact
from promed.patient import (
    REFUSAL,
    EmbedConfig,
    Embedder,
    FactPatient,
    LLMPatient,
    default_embedder,
    parse_fact_numbers,
    safe_fact_ids,
)
from promed.patient.fact import first_person
from promed.types import Case, Fact, Option, Patient, Sampling


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """MiniLM, loaded once for the whole test session (shared with the other patient/coverage test files)."""
    emb = default_embedder()
    emb.encode(["warm up"])
    return emb


@pytest.fixture(scope="session")
def synth_cases() -> list[Case]:
    return generate_cases("test", n=40, seed=0)


def fever_case() -> Case:
    facts = (
        "She reports a fever for the past three days.",
        "She has a cough.",
        "She denies chest pain.",
        "She has never smoked.",
        "Her mother has influenza.",  # answer-bearing: names option A
    )
    options = tuple(Option(l, t) for l, t in zip("ABCD", ["Influenza", "Pneumonia", "Asthma", "Bronchitis"]))
    return Case("fever", "A 30-year-old woman presents with fever.", tuple(Fact(i, t) for i, t in enumerate(facts)),
                "Which of the following is the most likely diagnosis?", options, "B", "test")


# ---- embedder ---------------------------------------------------------------------------------------------------


class CountingModel:
    """A SentenceTransformer stand-in: deterministic vectors, counts the texts it encodes."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def get_sentence_embedding_dimension(self) -> int:
        return 8

    def encode(self, texts, batch_size=32, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False):
        self.seen.extend(texts)
        out = np.array([[len(t) + i for i in range(8)] for t in texts], dtype=np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_embedder_caches_and_evicts_lru():
    model = CountingModel()
    emb = Embedder(EmbedConfig(cache_size=3), model=model)
    a = emb.encode(["x", "yy", "x"])
    assert a.shape == (3, 8) and np.allclose(a[0], a[2])
    assert model.seen == ["x", "yy"]  # de-duplicated
    emb.encode(["x", "yy"])
    assert model.seen == ["x", "yy"]  # cached
    emb.encode(["zzz", "wwww"])  # cache holds 3: "x" (least recently used) is evicted
    assert emb.cache_len() == 3
    emb.encode(["x"])
    assert model.seen[-1] == "x" and emb.n_encoded == 5
    assert emb.encode([]).shape == (0, 8)


def test_minilm_embeddings_are_normalised(embedder):
    v = embedder.encode(["Do you have a fever?", "I have been having a fever.", "The ECG shows sinus rhythm."])
    assert v.shape == (3, 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    sim = v @ v.T
    assert sim[0, 1] > sim[0, 2] + 0.2  # the related pair is closer


# ---- FactPatient --------------------------------------------------------------------------------------------------


def test_fact_patient_is_a_patient_and_replies_verbatim(embedder):
    p: Patient = FactPatient(embedder=embedder)  # structurally a Patient (the protocol is not runtime-checkable)
    case = fever_case()
    out = p.reply([case, case, case], ["Have you had a fever?", "Do you smoke?", "What is your favourite colour?"])
    assert len(out) == 3
    assert out[0] == (case.facts[0].text, (0,))
    assert out[1] == (case.facts[3].text, (3,))
    assert out[2] == (REFUSAL, ())


def test_fact_patient_reply_structure(embedder, synth_cases):
    p = FactPatient(embedder=embedder, threshold=0.2, max_facts=3, margin=float("inf"))
    cases = synth_cases[:10]
    for q, cap in (("Tell me about your symptoms and your history.", p.config.max_broad_facts),  # broad: a section
                   ("Have you had any cough or chest pain?", 3)):  # specific: retrieval's max_facts
        out = p.reply(cases, [q] * len(cases))
        for case, (text, ids) in zip(cases, out):
            assert list(ids) == sorted(set(ids)) and len(ids) <= cap
            assert set(ids) <= set(safe_fact_ids(case))
            assert text == (" ".join(case.facts[i].text for i in ids) if ids else REFUSAL)
    for case, (text, ids) in zip(cases, out):
        assert set(ids) <= set(safe_fact_ids(case))
        assert text == (" ".join(case.facts[i].text for i in ids) if ids else REFUSAL)


def test_fact_patient_batch_equals_single(embedder, synth_cases):
    p = FactPatient(embedder=embedder)
    cases = synth_cases[:6]
    qs = [question_for_fact(c.facts[k % c.n_facts]) for k, c in enumerate(cases)]
    batch = p.reply(cases, qs)
    assert batch == [p.reply([c], [q])[0] for c, q in zip(cases, qs)]


def test_fact_patient_threshold_and_margin_are_monotone(embedder, synth_cases):
    case = synth_cases[0]
    q = ["Have you had a fever or any pain?"]
    sims = FactPatient(embedder=embedder).similarities([case], q)[0]
    loose = FactPatient(0.0, max_facts=case.n_facts, margin=float("inf"), embedder=embedder).select(case, sims)
    strict = FactPatient(0.5, max_facts=case.n_facts, margin=float("inf"), embedder=embedder).select(case, sims)
    narrow = FactPatient(0.0, max_facts=case.n_facts, margin=0.05, embedder=embedder).select(case, sims)
    assert set(strict) <= set(loose) and set(narrow) <= set(loose)
    assert loose == tuple(safe_fact_ids(case))  # threshold 0, no cap: every safe fact
    assert FactPatient(2.0, embedder=embedder).select(case, sims) == ()


def test_fact_patient_reuses_fact_embeddings(embedder, synth_cases):
    p = FactPatient(embedder=embedder)
    cases = synth_cases[:5]
    p.reply(cases, ["Do you have a cough?"] * 5)
    before = embedder.n_encoded
    p.reply(cases, ["Do you have a cough?"] * 5)  # facts and question cached: no model call
    assert embedder.n_encoded == before


def test_fact_patient_rejects_bad_input(embedder):
    with pytest.raises(ValueError):
        FactPatient(embedder=embedder).reply([fever_case()], ["a", "b"])
    with pytest.raises(ValueError):
        FactPatient(max_facts=0)


def test_fact_patient_recall_on_synthclinic(embedder, synth_cases):
    """Targeted knowledge-base questions reveal their fact; questions about undocumented findings mostly get the
    refusal. Measured on 300 test cases by benchmarks/patient_real.py: hit 0.963, refusal of absent 0.662 (the
    previous release: 0.903 / 0.788; the lower threshold that answers real clinicians' questions lets more near
    misses through)."""
    p = FactPatient(embedder=embedder)
    cases, qs, gold = [], [], []
    for c in synth_cases:
        for f in c.facts:
            if f.id in safe_fact_ids(c):
                cases.append(c), qs.append(question_for_fact(f)), gold.append(f.id)
    out = p.reply(cases, qs)
    hit = np.mean([g in ids for g, (_, ids) in zip(gold, out)])
    assert hit >= 0.9, hit
    absent_cases, absent_qs = [], []
    for c in synth_cases:
        known = {f.finding.code for f in c.facts}
        for _, q in candidate_questions(c.options, known, initial_findings=c.initial_findings)[:3]:
            absent_cases.append(c), absent_qs.append(q)
    refused = np.mean([ids == () for _, ids in p.reply(absent_cases, absent_qs)])
    assert refused >= 0.55, refused


def test_first_person_keys():
    assert first_person("She denies fever.") == "I have not had any fever."
    assert first_person("He has never smoked.") == "I have never smoked."
    assert first_person("Her mother has migraines.") == "My mother has migraines."
    assert first_person("Patient is a 21-year-old male.") == "I am a 21-year-old male."
    assert first_person("He smokes a pack a day.") == "I smoke a pack a day."
    assert first_person("The pulse is 122/min.") == "The pulse is 122/min."


# ---- LLMPatient ---------------------------------------------------------------------------------------------------


class ScriptedLLM:
    """Implements the LLM protocol: returns ``script(chat)`` for each chat and records what it was sent."""

    name = "scripted"

    def __init__(self, script):
        self.script = script
        self.chats: list = []
        self.samplings: list[Sampling] = []

    def generate(self, chats, sampling):
        self.chats.extend(chats)
        self.samplings.append(sampling)
        return [self.script(c) for c in chats]

    def score_options(self, prompts, options):  # pragma: no cover - not used by the patient
        return [np.full(len(o), 1.0 / len(o)) for o in options]


def listed_facts(chat) -> list[str]:
    return re.findall(r"^\d+\. (.*)$", chat[-1]["content"], flags=re.M)


def test_llm_patient_maps_numbers_to_visible_facts():
    case = fever_case()
    llm = ScriptedLLM(lambda chat: "2, 1")
    p = LLMPatient(llm)
    [(text, ids)] = p.reply([case], ["Do you have a fever or a cough?"])
    assert ids == (0, 1) and text == f"{case.facts[0].text} {case.facts[1].text}"
    shown = listed_facts(llm.chats[0])
    assert shown == [case.facts[i].text for i in safe_fact_ids(case)]
    assert "influenza" not in llm.chats[0][-1]["content"].lower()  # answer-bearing fact never shown
    assert llm.samplings[0].temperature == 0.0


def test_llm_patient_numbers_refer_to_the_safe_listing():
    case = fever_case()  # fact 4 is answer-bearing; the listing is facts 0-3
    p = LLMPatient(ScriptedLLM(lambda chat: "5"), guard=True)
    assert p.reply([case], ["Anyone sick at home?"]) == [(REFUSAL, ())]  # out of range, not fact 4
    unguarded = LLMPatient(ScriptedLLM(lambda chat: "5"), guard=False)
    assert unguarded.reply([case], ["Anyone sick at home?"]) == [(case.facts[4].text, (4,))]


@pytest.mark.parametrize("output", ["NONE", "", "I don't know", "The answer is B", "0", "99"])
def test_llm_patient_refuses_unusable_output(output):
    p = LLMPatient(ScriptedLLM(lambda chat: output))
    assert p.reply([fever_case()], ["Do you have a fever?"]) == [(REFUSAL, ())]


def test_llm_patient_caps_facts_and_batches():
    cases = [fever_case()] * 3
    llm = ScriptedLLM(lambda chat: ", ".join(str(i) for i in range(1, len(listed_facts(chat)) + 1)))
    out = LLMPatient(llm, max_facts=2).reply(cases, ["Tell me everything."] * 3)
    assert len(llm.samplings) == 1 and len(llm.chats) == 3  # one batched call
    assert all(ids == (0, 1) for _, ids in out)
    with pytest.raises(RuntimeError):
        LLMPatient(type("Short", (ScriptedLLM,), {"generate": lambda s, c, sp: []})(None)).reply(cases, ["q"] * 3)


def test_llm_patient_prompt_has_no_options_or_answer(synth_cases):
    llm = ScriptedLLM(lambda chat: "NONE")
    LLMPatient(llm).reply(synth_cases[:10], ["Do you have a cough?"] * 10)
    for case, chat in zip(synth_cases, llm.chats):
        text = " ".join(m["content"] for m in chat).lower()
        for o in case.options:
            assert o.text.lower() not in text
        assert "option" not in text and "diagnosis" not in text


@pytest.mark.parametrize(
    "text, n, expected",
    [
        ("2, 5", 9, (2, 5)),
        ("[2,5]", 9, (2, 5)),
        ("Facts 2 and 5.", 9, (2, 5)),
        ("2. Patient is a 21-year-old male.\n5. She has a fever.", 9, (2, 5)),
        ("Fact #3", 9, (3,)),
        ("3, 3, 1", 9, (3, 1)),
        ("NONE", 9, ()),
        ("21-year-old", 30, ()),
        ("leukocytes 15,000/mm3", 20, ()),
        ("temperature 38.5, fact 2", 40, (2,)),
        ("12", 9, ()),
        ("The facts that answer the question are 2 and 5.", 9, (2, 5)),
        ("I have had a tremor of the hands for 2 weeks", 9, ()),  # prose: its numbers are not fact ids
        ("None of the above.", 9, ()),
    ],
)
def test_parse_fact_numbers(text, n, expected):
    assert parse_fact_numbers(text, n) == expected


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 30).flatmap(lambda n: st.tuples(st.just(n), st.lists(st.integers(1, n), max_size=6))),
       st.sampled_from([", ", ",", " and ", " "]))
def test_parse_fact_numbers_roundtrip(n_nums, sep):
    n, nums = n_nums
    assert parse_fact_numbers(sep.join(map(str, nums)), n) == tuple(dict.fromkeys(nums))


def test_llm_patient_with_tiny_backend():
    """The in-process tiny model (random weights) through the real backend: output is gibberish, the patient must
    still return well-formed, grounded replies."""
    llm_mod = pytest.importorskip("promed.llm")
    llm = llm_mod.load_llm("tiny")
    case = fever_case()
    out = LLMPatient(llm, max_new_tokens=8).reply([case, case], ["Do you have a fever?", "Do you smoke?"])
    for text, ids in out:
        assert set(ids) <= set(safe_fact_ids(case))
        assert text == (" ".join(case.facts[i].text for i in ids) if ids else REFUSAL)
