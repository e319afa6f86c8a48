"""Transcript records on disk: chat-format JSONL that ``datasets`` and TRL read directly.

One line per consultation::

    {"id", "doctor", "gold", "answer", "correct", "end", "invalid", "n_outputs", "n_facts",
     "messages": [...HF chat messages, doctor turns as assistant...],
     "turns": [{"question", "reply", "revealed", "new", "sig", "weights"}, ...]}
"""

from __future__ import annotations

from promed.doctor.policy import view_to_chat
from promed.types import Case, DoctorView, Transcript, Turn


def final_view(case: Case, tr: Transcript, max_questions: int) -> DoctorView:
    known = set(tr.known)
    return DoctorView(
        case_id=case.id, initial=case.initial, question=case.question, options=case.options, turns=tr.turns,
        known_facts=tuple(case.facts[i] for i in sorted(known)),
        questions_left=max(0, max_questions - len(tr.turns)), initial_findings=case.initial_findings,
    )


def transcript_messages(case: Case, tr: Transcript, max_questions: int) -> list[dict]:
    """The consultation as chat messages, ending with the doctor's final answer."""
    msgs = view_to_chat(final_view(case, tr, max_questions))
    if tr.answer is not None:
        msgs.append({"role": "assistant", "content": f"ANSWER: {tr.answer}"})
    return msgs


def transcript_to_json(case: Case, tr: Transcript, max_questions: int) -> dict:
    return {
        "id": tr.case_id,
        "doctor": tr.doctor,
        "gold": case.answer,
        "answer": tr.answer,
        "correct": tr.correct,
        "end": tr.end,
        "invalid": tr.invalid,
        "n_outputs": tr.n_outputs,
        "n_facts": case.n_facts,
        "given": list(tr.given),
        "messages": transcript_messages(case, tr, max_questions),
        "turns": [
            {"question": t.question, "reply": t.reply, "revealed": list(t.revealed), "new": list(t.new),
             "sig": t.sig, "weights": list(t.weights)}
            for t in tr.turns
        ],
    }


def transcript_from_json(rec: dict) -> tuple[Transcript, int]:
    """Inverse of :func:`transcript_to_json` (without the case): the transcript and the case's fact count."""
    turns = tuple(
        Turn(question=t["question"], reply=t["reply"], revealed=tuple(t["revealed"]), new=tuple(t["new"]),
             sig=t.get("sig"), weights=tuple(t.get("weights") or ()))
        for t in rec["turns"]
    )
    tr = Transcript(case_id=rec["id"], turns=turns, answer=rec["answer"], correct=rec["correct"], end=rec["end"],
                    invalid=rec["invalid"], n_outputs=rec["n_outputs"], doctor=rec["doctor"],
                    given=tuple(rec.get("given", ())))
    return tr, int(rec["n_facts"])
