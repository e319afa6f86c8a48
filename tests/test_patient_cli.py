"""``promed patient``: the scores on hand-computed examples, the outputs, and exit code 2 with nothing written on a
bad questions file; the real FactPatient and the LLM patient (tiny model) end to end through the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from promed.cli import COMMANDS, app, patient_spec
from promed.config import load_config
from promed.data.sources import DataConfig
from promed.data.synthclinic import candidate_questions, generate_cases, question_for_fact
from promed.eval.patient_metrics import micro_prf, score_replies, scores_by_kind
from promed.runs.patient import PatientRunConfig, run_patient
from tests.conftest import KeywordPatient

runner = CliRunner()
FAST = ("--split", "test", "--limit", "3", "--no-progress")


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


# ---- the scores ----------------------------------------------------------------------------------------------------

REVEALED = [[0, 1], [2], [], [3], [0]]
EXPECTED = [[0], [2, 3], [], [], None]
KINDS = ["a", "a", "b", "b", None]


def test_scores_hand_computed():
    s = score_replies(REVEALED, EXPECTED)
    # labelled: the first four; pairs: tp = 1 + 1 + 0 + 0, revealed = 2 + 1 + 0 + 1, expected = 1 + 2 + 0 + 0
    assert (s.true_positives, s.n_revealed, s.n_expected) == (2, 4, 3)
    assert (s.n_questions, s.n_labelled, s.n_unanswerable) == (5, 4, 2)
    assert s.precision == pytest.approx(0.5) and s.recall == pytest.approx(2 / 3)
    assert s.f1 == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3)) == pytest.approx(4 / 7)
    assert s.refusal_rate_unanswerable == 0.5  # question 3 refused, question 4 revealed fact 3
    assert s.answered_rate == pytest.approx(4 / 5)  # over every question, unlabelled ones included


def test_scores_per_kind():
    by = scores_by_kind(REVEALED, EXPECTED, KINDS)
    assert list(by) == ["a", "b"]  # first appearance; the question without a kind is in no group
    a, b = by["a"], by["b"]
    assert (a.true_positives, a.n_revealed, a.n_expected) == (2, 3, 3)
    assert a.precision == a.recall == a.f1 == pytest.approx(2 / 3)
    assert a.n_unanswerable == 0 and a.refusal_rate_unanswerable is None
    assert (b.true_positives, b.n_revealed, b.n_expected) == (0, 1, 0)
    assert b.precision == 0.0 and b.recall is None and b.f1 == 0.0  # a revealed fact where none was expected
    assert b.refusal_rate_unanswerable == 0.5 and b.n_labelled == 2


def test_scores_degenerate():
    none = score_replies([[1], []], [None, None])  # no labels
    assert none.n_labelled == 0 and none.answered_rate == 0.5
    assert none.precision is none.recall is none.f1 is none.refusal_rate_unanswerable is None
    refused = score_replies([[], []], [[], []])  # only unanswerable questions, all refused: no pairs at all
    assert refused.precision is refused.recall is refused.f1 is None
    assert refused.refusal_rate_unanswerable == 1.0 and refused.n_unanswerable == 2
    silent = score_replies([[], []], [[0], [1, 2]])  # nothing revealed where facts were expected
    assert silent.precision is None and silent.recall == 0.0 and silent.f1 == 0.0
    empty = score_replies([], [])
    assert empty.n_questions == 0 and empty.answered_rate is None and empty.f1 is None
    assert scores_by_kind([], [], []) == {} and scores_by_kind([[0]], [[0]], [None]) == {}
    with pytest.raises(ValueError):
        score_replies([[0]], [])


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 20), st.integers(0, 20), st.integers(0, 20))
def test_f1_is_the_harmonic_mean_where_defined(tp, extra_rev, extra_exp):
    p, r, f1 = micro_prf(tp, tp + extra_rev, tp + extra_exp)
    if p is not None and r is not None and p + r > 0:
        assert f1 == pytest.approx(2 * p * r / (p + r))
    assert f1 is None or 0.0 <= f1 <= 1.0
    assert (f1 is None) == (2 * tp + extra_rev + extra_exp == 0)


# ---- outputs, with a scripted patient (no model) -----------------------------------------------------------------


def _cfg(tmp_path: Path, questions: Path, **kw) -> PatientRunConfig:
    return PatientRunConfig(data=DataConfig(limit=3), questions=questions, out=tmp_path / "out", **kw)


def test_outputs_in_input_order_across_batches(tmp_path, monkeypatch):
    ids = [c.id for c in generate_cases("test", 3)]
    rows = [{"case_id": ids[i % 3], "question": f"Tell me about fact {i % 4}", "kind": "k" if i % 2 else "j",
             **({"facts": [i % 4]} if i != 4 else {})} for i in range(7)]
    rows[5]["facts"] = []  # unanswerable, and KeywordPatient reveals fact 1: a false positive
    qfile = write_jsonl(tmp_path / "q.jsonl", rows)
    monkeypatch.setattr("promed.runtime.RunModels.patient", lambda self: KeywordPatient())
    res = run_patient(_cfg(tmp_path, qfile, batch_size=2), progress=False)
    out = lines(tmp_path / "out" / "replies.jsonl")
    assert [(r["case_id"], r["question"], r["kind"]) for r in out] == [(q["case_id"], q["question"], q["kind"])
                                                                       for q in rows]
    assert [r["facts"] for r in out] == [[i % 4] for i in range(7)]
    assert [r.get("expected") for r in out] == [q.get("facts") for q in rows]
    assert list(out[0]) == ["case_id", "question", "kind", "reply", "facts", "expected"]
    assert out[0]["reply"] == generate_cases("test", 1)[0].facts[0].text  # the patient's text, verbatim
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    expect = score_replies([r["facts"] for r in out], [q.get("facts") for q in rows])
    assert {k: summary[k] for k in expect.to_json()} == expect.to_json()
    assert summary["n_labelled"] == 6 and summary["precision"] == pytest.approx(5 / 6) and summary["recall"] == 1.0
    assert summary["refusal_rate_unanswerable"] == 0.0
    assert set(summary["by_kind"]) == {"j", "k"} and summary["by_kind"] == {k: s.to_json()
                                                                             for k, s in res.by_kind.items()}
    assert summary["patient"] == {"kind": "fact", "model": None, "settings": summary["patient"]["settings"]}
    assert summary["patient"]["settings"]["threshold"] == PatientRunConfig().simulator.fact.threshold
    assert summary["questions_per_second"] > 0 and summary["n_cases"] == 3
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["manifest.json", "replies.jsonl", "summary.json"]


def test_no_kinds_no_by_kind(tmp_path, monkeypatch):
    cid = generate_cases("test", 1)[0].id
    qfile = write_jsonl(tmp_path / "q.jsonl", [{"case_id": cid, "question": "Anything about fact 2?"}])
    monkeypatch.setattr("promed.runtime.RunModels.patient", lambda self: KeywordPatient())
    res = run_patient(_cfg(tmp_path, qfile), progress=False)
    summary = res.to_json()
    assert "by_kind" not in summary and summary["f1"] is None and summary["answered_rate"] == 1.0
    assert "kind" not in lines(tmp_path / "out" / "replies.jsonl")[0]


def test_a_crash_while_answering_writes_nothing(tmp_path, monkeypatch):
    class Failing(KeywordPatient):
        calls = 0

        def reply(self, cases, questions):
            Failing.calls += 1
            if Failing.calls == 2:
                raise RuntimeError("boom")
            return super().reply(cases, questions)

    cid = generate_cases("test", 1)[0].id
    qfile = write_jsonl(tmp_path / "q.jsonl", [{"case_id": cid, "question": f"fact {i}?"} for i in range(4)])
    monkeypatch.setattr("promed.runtime.RunModels.patient", lambda self: Failing())
    with pytest.raises(RuntimeError, match="boom"):
        run_patient(_cfg(tmp_path, qfile, batch_size=2), progress=False)
    assert not (tmp_path / "out").exists()


def test_integer_case_ids_match_strings(tmp_path, monkeypatch):
    rec = {"initial": "A 30-year-old woman presents with fever.", "facts": ["She has a rash.", "She has fact 1."],
           "question": "Which diagnosis?", "options": {"A": "Measles", "B": "Flu"}, "answer": "A"}
    data = write_jsonl(tmp_path / "cases.jsonl", [rec | {"id": 7}, rec | {"id": "8"}])
    qfile = write_jsonl(tmp_path / "q.jsonl", [{"case_id": 7, "question": "fact 1?", "facts": [1]},
                                               {"case_id": "7", "question": "fact 0?", "facts": [0]},
                                               {"case_id": 8, "question": "fact 1?", "facts": [1]}])
    monkeypatch.setattr("promed.runtime.RunModels.patient", lambda self: KeywordPatient())
    cfg = PatientRunConfig(data=DataConfig(data=str(data), split="all"), questions=qfile, out=tmp_path / "out")
    res = run_patient(cfg, progress=False)
    assert [r["case_id"] for r in lines(tmp_path / "out" / "replies.jsonl")] == ["7", "7", "8"]
    assert res.overall.f1 == 1.0


# ---- a bad questions file: exit code 2, one line naming file, line and field, nothing written ---------------------

C0, C1 = "sc-test-00000", "sc-test-00001"  # 10 and 16 facts
OK = {"case_id": C0, "question": "Do your hands shake?", "kind": "targeted", "facts": [0]}

BAD = {
    "not-json": ([OK, '{"case_id": "sc-test-00000", "question": '], "2: field '<json>': not valid JSON"),
    "not-an-object": ([OK, OK, '["a", "list"]'], "3: field '<json>': expected a JSON object per line, got list"),
    "unknown-field": ([OK, {"case_id": C0, "question": "q?", "fact": [1]}],
                      "2: field 'fact': unknown field (did you mean 'facts'?"),
    "missing-case-id": ([{"question": "q?"}], "1: field 'case_id': missing"),
    "missing-question": ([OK, {"case_id": C0}], "2: field 'question': missing"),
    "case-id-null": ([{"case_id": None, "question": "q?"}], "1: field 'case_id': expected str or int, got null"),
    "case-id-bool": ([{"case_id": True, "question": "q?"}], "1: field 'case_id': expected str or int, got bool"),
    "case-id-float": ([{"case_id": 1.5, "question": "q?"}], "1: field 'case_id': expected str or int, got float"),
    "unknown-case": ([OK, {"case_id": "sc-test-00099", "question": "q?"}],
                     "2: field 'case_id': unknown case id 'sc-test-00099': not among the 3 cases read"),
    "question-int": ([{"case_id": C0, "question": 5}], "1: field 'question': expected str, got int"),
    "question-blank": ([OK, {"case_id": C0, "question": "   "}], "2: field 'question': empty"),
    "kind-int": ([{"case_id": C0, "question": "q?", "kind": 3}], "1: field 'kind': expected str, got int"),
    "kind-null": ([{"case_id": C0, "question": "q?", "kind": None}], "1: field 'kind': expected str, got null"),
    "facts-not-a-list": ([{"case_id": C0, "question": "q?", "facts": 3}],
                         "1: field 'facts': expected a list of fact indices, got int"),
    "facts-str": ([{"case_id": C0, "question": "q?", "facts": [1, "2"]}],
                  "1: field 'facts[1]': expected int (a 0-based fact index), got str"),
    "facts-bool": ([{"case_id": C0, "question": "q?", "facts": [True]}],
                   "1: field 'facts[0]': expected int (a 0-based fact index), got bool"),
    "facts-out-of-range": ([OK, {"case_id": C0, "question": "q?", "facts": [9, 10]}],
                           "2: field 'facts[1]': fact index 10 out of range: case 'sc-test-00000' has 10 facts"),
    "facts-in-range-of-another-case": ([{"case_id": C1, "question": "q?", "facts": [15]},
                                        {"case_id": C0, "question": "q?", "facts": [15]}],
                                       "2: field 'facts[0]': fact index 15 out of range"),
    "facts-negative": ([{"case_id": C0, "question": "q?", "facts": [-1]}], "1: field 'facts[0]': fact index -1 out"),
    "facts-duplicate": ([{"case_id": C0, "question": "q?", "facts": [2, 3, 2]}],
                        "1: field 'facts[2]': fact index 2 given twice"),
}


@pytest.mark.parametrize("existing", [False, True], ids=["new-out", "existing-out"])
@pytest.mark.parametrize("name", list(BAD))
def test_bad_questions_exit_2_and_write_nothing(tmp_path, name, existing):
    rows, expect = BAD[name]
    qfile = write_jsonl(tmp_path / "q.jsonl", rows)
    out = tmp_path / "out"
    if existing:
        out.mkdir()
        (out / "keep.txt").write_text("earlier")
    res = run("patient", *FAST, "--questions", qfile, "--out", out)
    assert res.exit_code == 2, res.output
    assert f"error: {qfile}:{expect}" in res.output, res.output
    assert "Traceback" not in res.output
    if existing:
        assert [p.name for p in out.iterdir()] == ["keep.txt"] and (out / "keep.txt").read_text() == "earlier"
    else:
        assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["q.jsonl"] + (["out"] if existing else []))


@pytest.mark.parametrize("name,content,expect", [
    ("empty", b"", "{q}: no questions: the file is empty"),
    ("blank", b"\n  \n", "{q}: no questions: the file is empty"),
    ("latin-1", json.dumps(OK).encode() + b"\n" + '{"case_id": "x", "question": "Fi\u00e8vre?"}'.encode("latin-1"),
     "{q}:2: not UTF-8 text"),
])
def test_bad_questions_bytes(tmp_path, name, content, expect):
    qfile = tmp_path / "q.jsonl"
    qfile.write_bytes(content)
    res = run("patient", *FAST, "--questions", qfile, "--out", tmp_path / "out")
    assert res.exit_code == 2 and f"error: {expect.format(q=qfile)}" in res.output, res.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args,expect", [
    ((), "missing --questions"),
    (("--questions", "{missing}"), "{missing}: no such file"),
    (("--questions", "{dir}"), "{dir}: is a directory"),
    (("--questions", "{q}", "--patient", "llm"), "--patient llm needs --model SPEC"),
    (("--questions", "{q}", "--patient", "doctor"), "unknown patient 'doctor'"),
    (("--questions", "{q}", "--model", "nonsense"), "--model: bad model spec 'nonsense'"),
    (("--questions", "{q}", "--batch-size", "0"), "--batch-size must be >= 1, got 0"),
    (("--questions", "{q}", "--out", "{q}"), "exists and is not a directory"),
])
def test_bad_options_exit_2(tmp_path, args, expect):
    q = write_jsonl(tmp_path / "q.jsonl", [OK])
    (tmp_path / "d").mkdir()
    fill = {"q": q, "missing": tmp_path / "nope.jsonl", "dir": tmp_path / "d"}
    res = run("patient", *FAST, *(a.format(**fill) for a in args), *(() if "--out" in args else
                                                                      ("--out", tmp_path / "out")))
    assert res.exit_code == 2 and expect.format(**fill) in res.output, res.output
    assert not (tmp_path / "out").exists()


def test_another_commands_run_directory_is_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text(json.dumps({"stage": "eval", "config": {}}))
    q = write_jsonl(tmp_path / "q.jsonl", [OK])
    res = run("patient", *FAST, "--questions", q, "--out", out)
    assert res.exit_code == 2 and "stage: 'eval' -> 'patient'" in res.output
    assert [p.name for p in out.iterdir()] == ["manifest.json"]


# ---- the command line ----------------------------------------------------------------------------------------------


def test_help_shows_every_option_with_help():
    res = runner.invoke(app, ["patient", "--help"], terminal_width=200)
    assert res.exit_code == 0
    for opt in ("--data", "--split", "--limit", "--initial", "--data-seed", "--questions", "--patient", "--model",
                "--batch-size", "--out", "--overwrite", "--timeout", "--retries", "--concurrency", "--progress",
                "--config"):
        assert opt in res.output
    from promed.cliopts import parameters

    assert all(p.default.help for p in parameters(patient_spec()))
    assert "patient" in runner.invoke(app, ["--help"]).output


def test_config_file_sections(tmp_path):
    """The simulator's settings from a plain file, and from the command's [patient] section beside others."""
    flat = tmp_path / "flat.toml"
    flat.write_text('questions = "q.jsonl"\n[simulator]\nkind = "llm"\n[simulator.fact]\nthreshold = 0.4\n')
    cfg = load_config(PatientRunConfig(), flat, "patient", COMMANDS)
    assert cfg.simulator.fact.threshold == 0.4 and cfg.simulator.kind == "llm" and cfg.questions == Path("q.jsonl")
    sectioned = tmp_path / "sections.toml"
    sectioned.write_text('[eval]\nseed = 1\n[patient]\nbatch_size = 8\n[patient.simulator.fact]\nmax_facts = 1\n')
    cfg = load_config(PatientRunConfig(), sectioned, "patient", COMMANDS)
    assert cfg.batch_size == 8 and cfg.simulator.fact.max_facts == 1


# ---- real patients end to end --------------------------------------------------------------------------------------


def synth_questions(n_cases: int = 2) -> list[dict]:
    """Per case: two targeted questions (labelled), one on a finding the case lacks (unanswerable), one unlabelled."""
    rows = []
    for c in generate_cases("test", n_cases):
        for f in c.facts[:2]:
            rows.append({"case_id": c.id, "question": question_for_fact(f), "kind": "targeted", "facts": [f.id]})
        known = {f.finding.code for f in c.facts}
        _, absent = candidate_questions(c.options, known, initial_findings=c.initial_findings)[0]
        rows.append({"case_id": c.id, "question": absent, "kind": "absent", "facts": []})
        rows.append({"case_id": c.id, "question": "How are you feeling today?"})
    return rows


def test_fact_patient_end_to_end(tmp_path):
    from promed.patient import FactPatient

    rows = synth_questions(2)
    qfile = write_jsonl(tmp_path / "q.jsonl", rows)
    out = tmp_path / "out"
    res = run("patient", "--limit", 2, "--questions", qfile, "--batch-size", 3, "--out", out, "--no-progress")
    assert res.exit_code == 0, res.output
    assert "precision" in res.output and "targeted" in res.output and "absent" in res.output
    assert f"wrote {out}/replies.jsonl" in res.output
    got = lines(out / "replies.jsonl")
    assert [(r["case_id"], r["question"]) for r in got] == [(q["case_id"], q["question"]) for q in rows]
    cases = {c.id: c for c in generate_cases("test", 2)}
    direct = FactPatient().reply([cases[q["case_id"]] for q in rows], [q["question"] for q in rows])
    assert [(r["reply"], tuple(r["facts"])) for r in got] == direct  # the same replies as the library's
    summary = json.loads((out / "summary.json").read_text())
    want = score_replies([r["facts"] for r in got], [q.get("facts") for q in rows])
    assert {k: summary[k] for k in want.to_json()} == want.to_json()
    assert summary["n_questions"] == 8 and summary["n_labelled"] == 6 and summary["n_unanswerable"] == 2
    assert list(summary["by_kind"]) == ["targeted", "absent"]
    assert summary["by_kind"]["targeted"]["n_questions"] == 4 and summary["patient"]["kind"] == "fact"
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    # the same settings again: answered again, the outputs replaced
    res = run("patient", "--limit", 2, "--questions", qfile, "--batch-size", 8, "--out", out, "--no-progress")
    assert res.exit_code == 0, res.output
    assert lines(out / "replies.jsonl") == got


def test_llm_patient_with_a_tiny_model_runs(tmp_path):
    rows = synth_questions(1)
    qfile = write_jsonl(tmp_path / "q.jsonl", rows)
    out = tmp_path / "out"
    res = run("patient", "--limit", 1, "--questions", qfile, "--patient", "llm", "--model", "tiny", "--out", out,
              "--no-progress")
    assert res.exit_code == 0, res.output
    got = lines(out / "replies.jsonl")
    assert len(got) == len(rows) and all(isinstance(r["reply"], str) and r["reply"] for r in got)
    n_facts = generate_cases("test", 1)[0].n_facts
    assert all(0 <= i < n_facts for r in got for i in r["facts"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["patient"]["kind"] == "llm" and summary["patient"]["model"] == "tiny"
    assert summary["n_questions"] == len(rows)
