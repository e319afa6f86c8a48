"""promed.data.convert: MedQA-style items -> partial-information cases (hand-written items only, no MediQ text)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promed.data.cases import DataError, load_cases
from promed.data.convert import (
    ConvertConfig,
    RuleSettings,
    convert_file,
    read_items,
    rule_facts,
    split_stem,
)
from promed.data.convert.llm_facts import parse_facts, validate
from promed.data.convert.words import content_words
from promed.errors import InputError

VIGNETTE = (
    "A 58-year-old woman comes to the emergency department because of chest pain for 3 hours. "
    "She has a history of hypertension and type 2 diabetes mellitus. "
    "She denies fever, chills, or night sweats. "
    "She smokes one pack of cigarettes daily but does not drink alcohol. "
    "Her temperature is 38.9°C (102°F), pulse is 112/min, respirations are 22/min, and blood pressure is "
    "150/95 mm Hg. "
    "Examination shows diaphoresis; the lungs are clear to auscultation. "
    "Laboratory studies show: Hemoglobin 13.1 g/dL Leukocyte count 11,200/mm3 Platelet count 250,000/mm3."
)
STEM = "Which of the following is the most likely diagnosis?"
OPTIONS = {"A": "Aortic dissection", "B": "Myocardial infarction", "C": "Pericarditis", "D": "Pulmonary embolism"}


def medqa(question: str = VIGNETTE + " " + STEM, **extra) -> dict:
    return {"question": question, "options": OPTIONS, "answer_idx": "B", "answer": "Myocardial infarction", **extra}


def write(path: Path, records: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return path


# ---- stem split and rule facts ----------------------------------------------------------------------------------


def test_stem_is_the_final_question_sentence():
    vignette, stem = split_stem(VIGNETTE + " " + STEM)
    assert stem == STEM
    assert vignette == VIGNETTE
    # a number with a decimal point and a unit with a slash before the stem do not end a sentence early
    v, s = split_stem("Creatinine is 1.2 mg/dL. Potassium is 4.1 mEq/L. What is the most likely cause?")
    assert s == "What is the most likely cause?" and v.endswith("4.1 mEq/L.")


def test_vital_sign_list_gives_one_fact_per_sign():
    facts = rule_facts(VIGNETTE).facts
    for sign in ("38.9°C (102°F)", "112/min", "22/min", "150/95 mm Hg"):
        assert sum(sign in f for f in facts) == 1, (sign, facts)
    vitals = rule_facts("A 30-year-old man has a rash. Temperature is 37°C, pulse 90/min, blood pressure 120/80 mm Hg.")
    assert vitals.facts == ("Temperature is 37°C.", "Pulse 90/min.", "Blood pressure 120/80 mm Hg.")


def test_lab_run_without_separators_gives_one_fact_per_value():
    facts = rule_facts(VIGNETTE).facts
    assert any(f.endswith("Hemoglobin 13.1 g/dL.") for f in facts)
    assert "Leukocyte count 11,200/mm3." in facts and "Platelet count 250,000/mm3." in facts


def test_pertinent_negatives_are_kept():
    facts = rule_facts(VIGNETTE).facts
    assert "She denies fever, chills, or night sweats." in facts
    assert any("does not drink alcohol" in f for f in facts)
    spread = rule_facts(VIGNETTE, RuleSettings(negated_lists="distribute")).facts
    assert {"Denies chills.", "Denies night sweats."} <= set(spread)


def test_and_splits_clauses_not_finding_pairs():
    seg = rule_facts("A 20-year-old man has a cough. He has had nausea and vomiting and his stools are black.")
    assert "He has had nausea and vomiting." in seg.facts
    assert any(f.startswith("His stools are black") for f in seg.facts)


def test_initial_statement_is_demographics_and_chief_complaint():
    seg = rule_facts(VIGNETTE)
    assert seg.initial == "A 58-year-old woman comes to the emergency department because of chest pain for 3 hours."
    assert seg.initial_facts[0] == "A 58-year-old woman."
    assert not any("chest pain" in f for f in seg.facts)  # the initial statement is not repeated as a hidden fact


def test_every_rule_fact_is_faithful_to_the_vignette():
    texts = [VIGNETTE,
             "A 7-year-old boy is brought to the physician by his mother because of a 2-day history of ear pain. "
             "On examination, the tympanic membrane is red, bulging, and immobile; there is no discharge. "
             "He has had no vomiting, diarrhea, or rash, and his vaccinations are up-to-date."]
    for text in texts:
        words = set(content_words(text))
        for fact in rule_facts(text).all_facts:
            assert fact.endswith(".") and fact[0].isupper()
            assert set(content_words(fact)) <= words, fact


# ---- the file converter -----------------------------------------------------------------------------------------


def test_output_loads_through_load_cases(tmp_path):
    src = write(tmp_path / "items.jsonl", [
        medqa(id="q1"),
        # MediQ layout: context sentences + stem; options as a list
        {"id": 7, "context": ["A 45-year-old man presents with fatigue.", "He denies weight loss."],
         "question": "What is the next best step?", "options": ["Observation", "Biopsy", "CT scan"],
         "answer_idx": "b", "facts": ["1. ignored"]},
        # no id: a content hash
        medqa(question="A 3-year-old girl has a fever. Her pulse is 130/min. Which drug is most appropriate?"),
    ])
    out = tmp_path / "cases.jsonl"
    res = convert_file(src, out, progress=False)
    assert res.cases == 3 and res.rejected == 0 and res.model_calls == 0
    cases = load_cases(out, fmt="generic").cases
    assert [c.id for c in cases[:2]] == ["q1", "7"] and len(cases[2].id) == 16
    assert cases[0].question == STEM and cases[0].answer == "B"
    assert cases[1].answer == "B" and cases[1].option("B").text == "Biopsy"
    assert cases[1].initial == "A 45-year-old man presents with fatigue."
    assert [f.text for f in cases[1].facts] == ["He denies weight loss."]
    assert res.facts == sum(c.n_facts for c in cases)
    # ids are stable: the same item converts to the same hash id
    again = convert_file(src, tmp_path / "again.jsonl", progress=False)
    assert load_cases(tmp_path / "again.jsonl", fmt="generic").cases[2].id == cases[2].id and again.cases == 3


BAD = [
    ('{"question": "A man has a cough. What is it?", "options": ', 1, "<json>", "not valid JSON"),
    ({"options": OPTIONS, "answer_idx": "B"}, 1, "question", "missing"),
    (medqa(answer_idx="E", answer=None), 1, "answer_idx", "not among the options"),
    (medqa(answer="Pericarditis"), 1, "answer", "is not the text of option B"),
    (medqa(question="Which of the following is the most likely diagnosis?"), 1, "question", "empty vignette"),
    ({"context": [], "question": STEM, "options": OPTIONS, "answer_idx": "B"}, 1, "context", "empty vignette"),
    ({"question": VIGNETTE + " " + STEM, "options": {"1": "x", "2": "y"}, "answer_idx": "A"}, 1, "options.1",
     "letters"),
    ({"question": VIGNETTE + " " + STEM, "options": OPTIONS}, 1, "answer_idx", "missing"),
]


@pytest.mark.parametrize("record,line,field,problem", BAD)
def test_bad_input_raises_data_error_and_writes_nothing(tmp_path, record, line, field, problem):
    src = write(tmp_path / "items.jsonl", [record])
    out = tmp_path / "cases.jsonl"
    with pytest.raises(DataError) as err:
        convert_file(src, out, progress=False)
    assert err.value.line == line and err.value.field == field
    assert str(err.value).startswith(f"{src}:{line}: field '{field}': ") and problem in str(err.value)
    assert not out.exists() and not list(tmp_path.glob("cases*"))


def test_bad_line_after_good_ones_names_its_line_and_writes_nothing(tmp_path):
    src = write(tmp_path / "items.jsonl", [medqa(id="a"), medqa(id="b"), medqa(id="a")])
    with pytest.raises(DataError, match=r":3: field 'id': duplicate id 'a'"):
        convert_file(src, tmp_path / "cases.jsonl", progress=False)
    assert not (tmp_path / "cases.jsonl").exists()


def test_settings_are_input_errors(tmp_path):
    with pytest.raises(InputError):
        ConvertConfig(facts="magic")
    with pytest.raises(InputError):
        RuleSettings(and_split="sometimes")
    src = write(tmp_path / "items.jsonl", [medqa()])
    with pytest.raises(InputError, match="--model"):
        convert_file(src, tmp_path / "cases.jsonl", facts="llm", progress=False)
    assert not (tmp_path / "cases.jsonl").exists()


# ---- the LLM fact writer ----------------------------------------------------------------------------------------


class ScriptedLLM:
    """Returns a fixed fact list for every chat and counts the chats it was asked (a stand-in for a model)."""

    name = "scripted"
    supports_beams = False

    def __init__(self, reply: str):
        self.reply, self.calls = reply, 0

    def generate(self, chats, sampling):
        self.calls += len(chats)
        for chat in chats:  # the prompt never shows the stem, the options or the answer
            text = " ".join(m["content"] for m in chat)
            assert STEM not in text and "Myocardial infarction" not in text
        return [self.reply] * len(chats)

    def score_options(self, prompts, options):  # pragma: no cover - not used by the converter
        raise NotImplementedError


LLM_REPLY = """ 1. She has a history of hypertension.
2. Her pulse is 112/min.
3. She denies fever, chills, or night sweats.
4. She has a myocardial infarction.
5. She recently travelled to Brazil and ate raw seafood.
6. Her pulse is 112/min.
7. A 58-year-old woman comes to the emergency department."""


def test_llm_facts_are_validated_and_rejections_counted(tmp_path):
    src = write(tmp_path / "items.jsonl", [medqa(id="q1")])
    llm = ScriptedLLM(LLM_REPLY)
    res = convert_file(src, tmp_path / "cases.jsonl", facts="llm", progress=False, llm=llm)
    case = load_cases(tmp_path / "cases.jsonl", fmt="generic").cases[0]
    assert [f.text for f in case.facts] == ["She has a history of hypertension.", "Her pulse is 112/min.",
                                            "She denies fever, chills, or night sweats."]
    assert res.rejected == 4 and res.rejected_by_reason == {"names an option": 1, "not grounded": 1,
                                                            "duplicate": 1, "in the initial statement": 1}
    reasons = {r.text: r.reason for r in res.per_case[0].rejected}
    assert reasons["She has a myocardial infarction."] == "names option B"
    assert reasons["She recently travelled to Brazil and ate raw seafood."].startswith("not grounded")
    assert res.summary()["per_case"][0]["id"] == "q1" and res.fallbacks == 0


def test_option_named_in_the_vignette_is_not_a_leak():
    item = read_items_from([medqa(question="A 60-year-old man with pericarditis last year has chest pain. " + STEM)])
    kept, rejected = validate(item, "A 60-year-old man has chest pain.", ["He had pericarditis last year.",
                                                                         "He has pulmonary embolism."])
    assert kept == ["He had pericarditis last year."]
    assert [r.reason for r in rejected] == ["names option D"]


def read_items_from(records, tmp=Path("/tmp")):
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        return read_items(write(Path(d) / "i.jsonl", records))[0]


def test_parse_facts_reads_numbered_and_bulleted_lists():
    assert parse_facts("1. A.\n2) B.\n\n- C.") == ["A.", "B.", "C."]
    assert parse_facts("just prose\nmore") == ["just prose", "more"]


def test_llm_cache_second_run_makes_no_model_calls(tmp_path):
    src = write(tmp_path / "items.jsonl", [medqa(id="q1"), medqa(id="q2", question="A 20-year-old man has a "
                                                                  "cough. His pulse is 112/min. " + STEM)])
    out = tmp_path / "cases.jsonl"
    first = ScriptedLLM(LLM_REPLY)
    r1 = convert_file(src, out, facts="llm", progress=False, llm=first, config=ConvertConfig(batch_size=1))
    assert first.calls == 2 and r1.model_calls == 2 and r1.cache == tmp_path / "cases.llm-cache.jsonl"
    written = out.read_text()
    second = ScriptedLLM("1. something else entirely")
    r2 = convert_file(src, out, facts="llm", progress=False, llm=second)
    assert second.calls == 0 and r2.model_calls == 0 and r2.cached == 2
    assert out.read_text() == written
    # a new item calls the model for that item only; an item whose LLM facts are all rejected falls back to rules
    with src.open("a") as fh:
        fh.write(json.dumps(medqa(id="q3", question="A 9-year-old girl has a limp. She denies trauma. " + STEM))
                 + "\n")
    third = ScriptedLLM("1. something else entirely")
    r3 = convert_file(src, out, facts="llm", progress=False, llm=third)
    assert third.calls == 1 and r3.model_calls == 1 and r3.cached == 2 and r3.fallbacks == 1
    assert load_cases(out, fmt="generic").cases[2].facts[0].text == "She denies trauma."


def test_llm_path_through_the_tiny_backend(tmp_path):
    """The real backend path (``load_llm``, chat template, generate) on the in-process tiny model."""
    src = write(tmp_path / "items.jsonl", [medqa(id="q1")])
    res = convert_file(src, tmp_path / "cases.jsonl", progress=False,
                       config=ConvertConfig(facts="llm", model="tiny", max_new_tokens=8))
    assert res.model_calls == 1 and res.cases == 1
    # gibberish from random weights: rejected and counted, the case falls back to its rule facts
    assert res.rejected + sum(r.facts for r in res.per_case if not r.fallback) >= 1
    assert load_cases(tmp_path / "cases.jsonl", fmt="generic").cases[0].n_facts >= 1
