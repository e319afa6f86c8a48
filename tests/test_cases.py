import json

import pytest

from promed.data.cases import DataError, load_cases, strip_numbering, write_cases
from tests.conftest import make_case


def write(tmp_path, rows, name="d.jsonl"):
    p = tmp_path / name
    p.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return p


GOOD = {"id": "x1", "initial": "A 30-year-old woman presents with fever.", "facts": ["She has a rash."],
        "question": "Which diagnosis?", "options": {"A": "Measles", "B": "Flu"}, "answer": "A"}


def test_bad_json_names_file_line_and_field(tmp_path):
    p = write(tmp_path, [GOOD, "{not json"])
    with pytest.raises(DataError) as err:
        load_cases(p)
    assert err.value.line == 2 and err.value.field == "<json>" and str(p) in str(err.value)


@pytest.mark.parametrize("field,value,msg", [
    ("question", None, "missing"), ("facts", "a string", "expected list"), ("options", 3, "expected dict"),
    ("answer", 1, "expected str"),
])
def test_bad_fields_are_errors(tmp_path, field, value, msg):
    rec = dict(GOOD)
    if value is None:
        del rec[field]
    else:
        rec[field] = value
    p = write(tmp_path, [GOOD | {"id": "ok"}, rec])
    with pytest.raises(DataError) as err:
        load_cases(p)
    assert (err.value.line, err.value.field) == (2, field) and msg in err.value.problem


def test_fact_item_type_error_names_index(tmp_path):
    p = write(tmp_path, [GOOD | {"facts": ["ok", 5]}])
    with pytest.raises(DataError, match=r"field 'facts\[1\]'"):
        load_cases(p)


def test_duplicate_ids_are_errors(tmp_path):
    with pytest.raises(DataError, match="duplicate id"):
        load_cases(write(tmp_path, [GOOD, GOOD]))


def test_unusable_cases_are_skipped_with_reasons(tmp_path):
    rows = [GOOD, GOOD | {"id": "x2", "facts": []}, GOOD | {"id": "x3", "answer": "D"},
            GOOD | {"id": "x4", "options": {"A": "only"}}]
    res = load_cases(write(tmp_path, rows))
    assert [c.id for c in res.cases] == ["x1"]
    assert res.skipped == {"empty facts": 1, "answer not among the options": 1, "fewer than two options": 1}


def test_missing_file():
    with pytest.raises(DataError, match="no such file"):
        load_cases("/nonexistent/file.jsonl")


def test_generic_roundtrip(tmp_path):
    cases = [make_case("a"), make_case("b", n_facts=2, answer="D")]
    p = tmp_path / "cases.jsonl"
    write_cases(cases, p)
    back = load_cases(p).cases
    assert [c.to_json() for c in back] == [c.to_json() for c in cases]


MEDIQ_ROW = {"id": 7, "question": "Which drug?", "context": ["A 21-year-old man has fever.", "Culture grew bacteria."],
             "facts": ["1. Patient is a 21-year-old male.", "2. Patient has fever.", "3. Culture grew bacteria."],
             "options": {"A": "X", "B": "Y", "C": "Z", "D": "W"}, "answer": "Z", "answer_idx": "C"}


def test_mediq_protocols(tmp_path):
    p = write(tmp_path, [MEDIQ_ROW])
    c = load_cases(p, initial="first-sentence").cases[0]
    assert c.initial == "A 21-year-old man has fever." and c.n_facts == 3 and c.answer == "C"
    assert c.facts[0].text == "Patient is a 21-year-old male."
    h = load_cases(p, initial="first-half-facts").cases[0]
    assert h.initial == "Patient is a 21-year-old male. Patient has fever." and [f.text for f in h.facts] == [
        "Culture grew bacteria."]
    assert [f.id for f in h.facts] == [0]


def test_mediq_empty_context_and_facts_skipped(tmp_path):
    p = write(tmp_path, [MEDIQ_ROW, MEDIQ_ROW | {"id": 8, "context": []}, MEDIQ_ROW | {"id": 9, "facts": []}])
    res = load_cases(p)
    assert len(res.cases) == 1 and res.skipped == {"empty context": 1, "empty facts": 1}


def test_strip_numbering():
    assert strip_numbering("12. Patient is febrile.") == "Patient is febrile."
    assert strip_numbering("3) x") == "x"


def test_real_mediq_file_loads(mediq_path):
    res = load_cases(mediq_path)
    assert len(res.cases) + res.n_skipped == 1272
    assert len(res.cases) > 1200
    assert all(c.answer in c.letters and c.facts and c.initial for c in res.cases)
