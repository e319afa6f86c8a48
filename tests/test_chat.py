"""``promed chat`` driven through its input stream: a whole consultation in each role, read back from what it printed.

Doctor role: each reply, the facts it revealed and the question's SIG are printed as the session recorded them (a
repeated question earns SIG 0 and its fact is "known already"); the posterior table holds SynthClinic's exact
posterior; the result sets your answer against the gold, greedy-eig and ``--doctor``. Patient role: each reply's
covered facts are the ids the environment records as revealed; a reply naming an option or an answer letter is cut
by the guard before the doctor reads it, and the output says so; the doctor's answer is set against the gold with the
SIG of each of its questions. End of input and ``quit`` end the consultation cleanly.
"""

from __future__ import annotations

import io

import pytest
from typer.testing import CliRunner

from promed.cli import app as cli_app
from promed.patient.guard import REFUSAL, is_safe
from promed.view.chat import run_chat
from promed.view.config import ChatConfig
from promed.view.posterior import posterior_chart
from promed.view.session import REDACTION_NOTE, Clinic, Refused

CASE = "sc-test-00000"


@pytest.fixture(scope="module")
def clinic() -> Clinic:
    return Clinic(doctor="random-3")


def chat(clinic: Clinic, role: str, lines: list[str], doctor: str = "greedy-eig"):
    out = io.StringIO()
    session = run_chat(ChatConfig(role=role, case=CASE, doctor=doctor), io.StringIO("".join(f"{x}\n" for x in lines)),
                       out, clinic, width=220)
    return session, out.getvalue()


def row(out: str, first: str) -> list[str]:
    """The cells of the table row whose first cell is ``first``."""
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip("│|").split("│")]
        if cells and cells[0] == first:
            return cells
    raise AssertionError(f"no table row {first!r} in:\n{out}")


def option(case, letter) -> str:
    return case.option(letter).text


def test_doctor_role_one_full_consultation(clinic):
    case = clinic.case(CASE)
    questions = ("Do you have abdominal pain?", "Do you feel too hot when others are comfortable?",
                 "Do you have abdominal pain?")  # the last repeats the first
    s, out = chat(clinic, "doctor", ["help", "", *questions, "posterior", "answer Z", f"answer {case.answer}"])
    tr = s.transcript()
    assert s.done and [t.question for t in tr.turns] == list(questions) and tr.answer == case.answer
    assert out.count("'answer C' to give your final answer") == 2  # how-to, then help
    for t in tr.turns:
        assert f"Patient: {t.reply}" in out and f"SIG {t.sig:.3f}" in out
        assert is_safe(case, t.reply)
    first, _, again = tr.turns
    assert first.revealed and first.sig > 0
    for i in first.revealed:
        assert f"revealed fact {i}: {case.facts[i].text}\n" in out
        assert f"revealed fact {i}: {case.facts[i].text} (known already)" in out  # the repeated question
    assert again.new == () and again.sig == 0.0
    assert "not asked: choose one of the options A, B, C, D" in out  # "answer Z" changed nothing
    # the posterior table (asked before the answer: no option marked gold) holds the exact posterior
    chart = posterior_chart(case, tr, clinic.scorer(), mark_gold=False)
    assert row(out, "start")[1:] == [f"{s.points[0][1]:.3f}" for s in chart.series]
    assert row(out, "Q3")[1:] == [f"{s.points[3][1]:.3f}" for s in chart.series]
    # the result: your answer against the gold, then greedy-eig and --doctor (random-3) on the same case
    assert (f"You answered {case.answer} ({option(case, case.answer)}): right. Gold: {case.answer} "
            f"({option(case, case.answer)}).") in out
    assert list(s.others) == ["greedy-eig", "random-3"]
    for name, t in [("you", tr), *s.others.items()]:
        cells = row(out, name)
        assert cells[1:5] == [t.answer, "right" if t.correct else "wrong", str(t.n_questions), str(len(t.known))]
        assert cells[5] == f"{sum(x.sig for x in t.turns):.3f}"
    assert s.others["random-3"].n_questions == 3
    before, after = out.split("Result", 1)
    assert "(gold)" not in before and f"{case.answer} (gold)" in after  # the final posterior marks the gold


def test_patient_role_one_full_consultation(clinic):
    case = clinic.case(CASE)
    gold = option(case, case.answer)
    pain = next(f.id for f in case.facts if f.text == "She reports abdominal pain.")
    lines = ["script", "x" * 700, "Yes, I have abdominal pain.",
             f"I am sure it is {gold}. My heart races sometimes.",  # names the gold option: that sentence is cut
             "The answer is C.",  # only an answer letter: the whole reply becomes the refusal
             *["No, nothing like that."] * 5]
    s, out = chat(clinic, "patient", lines)
    tr = s.transcript()
    assert s.done and s.doctor == "greedy-eig"
    assert out.count("Your script") == 2 and "She denies fatigue." in out
    assert "not taken: a reply has at most 600 characters" in out
    # every reply as typed, as read by the doctor, and the facts it covered = what the environment recorded
    assert len(s.notes) == tr.n_questions >= 3
    for note, t in zip(s.notes, tr.turns):
        assert t.reply == note.seen and t.revealed == note.covered and is_safe(case, t.reply)
        assert gold.lower() not in t.reply.lower()
    first, leak, letter = s.notes[:3]
    assert first.covered == (pain,) and not first.redacted
    assert f"covered fact {pain}: She reports abdominal pain." in out
    assert leak.redacted and leak.seen == "My heart races sometimes." and leak.covered
    assert f'the guard cut your reply: {REDACTION_NOTE}; the doctor read: "My heart races sometimes."' in out
    assert letter.redacted and letter.seen == REFUSAL and letter.covered == ()
    assert "covered no fact of your script" in out
    # the doctor's answer against the gold, and the SIG of each of its questions
    verdict = "right" if tr.correct else "wrong"
    assert (f"greedy-eig answered {tr.answer} ({option(case, tr.answer)}) after {tr.n_questions} questions: "
            f"{verdict}. Gold: {case.answer} ({gold}).") in out
    assert tr.turns[0].sig > 0
    for k, t in enumerate(tr.turns, 1):
        cells = row(out, f"Q{k}")
        assert cells[1] == t.question and cells[-1] == f"{t.sig:.3f}"


def test_a_doctor_that_answers_at_once_and_one_that_cannot_ask(clinic):
    s, out = chat(clinic, "patient", [], doctor="reactive")
    assert s.done and s.notes == [] and "reactive answered" in out and "after 0 questions" in out
    with pytest.raises(Refused, match="asks nothing"):
        clinic.as_patient(CASE, "full-info")


def test_a_trained_doctor_asks_through_the_same_session(clinic):
    """An ``llm:`` doctor (here the tiny in-process model, whose outputs are unreadable): its outputs go through the
    environment's parser, and the environment forces the answer, as in any rollout; nothing crashes."""
    s, out = chat(clinic, "patient", ["I have abdominal pain."] * 5, doctor="llm:tiny")
    tr = s.transcript()
    assert s.done and tr.invalid > 0 and tr.forced
    assert "llm:tiny answered" in out and "(forced by the environment)" in out and "unreadable output(s)" in out


def test_end_of_input_and_quit_end_cleanly(clinic):
    s, out = chat(clinic, "doctor", ["Do you have abdominal pain?"])  # then end of input
    assert not s.done and s.transcript().n_questions == 1
    assert "consultation left unfinished" in out and "Result" not in out
    s, out = chat(clinic, "patient", ["quit"])
    assert not s.done and s.notes == [] and "consultation left unfinished" in out


def test_the_command(tmp_path):
    res = CliRunner().invoke(cli_app, ["chat", "--role", "patient", "--case", CASE, "--doctor", "random-3"],
                             input="Yes, I have abdominal pain.\nNo.\nNo.\n")
    assert res.exit_code == 0, res.output
    assert "random-3 is the doctor" in res.output and "random-3 answered" in res.output
    res = CliRunner().invoke(cli_app, ["chat", "--role", "nurse"])
    assert res.exit_code == 2 and "--role must be doctor or patient" in res.output
    res = CliRunner().invoke(cli_app, ["chat", "--doctor", "nope"])
    assert res.exit_code == 2 and "unknown doctor 'nope'" in res.output
    res = CliRunner().invoke(cli_app, ["chat", "--case", "sc-test-99999"])
    assert res.exit_code == 2 and "no SynthClinic test case 'sc-test-99999'" in res.output
