"""Transcript records on disk: chat-format JSONL that ``datasets`` and TRL read directly.

One line per consultation, keyed by ``(id, sample)``::

    {"id", "sample", "doctor", "gold", "answer", "correct", "end", "invalid", "n_outputs", "n_facts", "given",
     "messages": [...HF chat messages: every doctor output as an assistant message, exactly as produced...],
     "turns": [{"question", "reply", "revealed", "new", "sig", "weights"}, ...],
     "steps": [{"text", "action", "value", "reason", "policy", "turn", "questions_before", "finish_reason",
                "token_ids", "logprobs"}, ...]}

``messages`` end with the doctor's own answer; an answer the environment forced (budget exceeded, unreadable
output) is not the doctor's and is not written as an assistant message: ``answer`` holds it and its step says
``"policy": false``. ``steps`` hold every doctor output, unreadable ones included, with the sampled token ids and
log-probabilities where the backend gave them.
"""

from __future__ import annotations

from promed.doctor.actions import answer_turn
from promed.doctor.policy import view_to_chat
from promed.env.consultation import dialogue_view, transcript_state
from promed.types import Answer, Ask, Case, DoctorView, Invalid, Step, Transcript, Turn


def final_view(case: Case, tr: Transcript, max_questions: int) -> DoctorView:
    """The doctor's view at the end of ``tr`` (the facts it was told, every output it produced)."""
    state = transcript_state(tr)
    return dialogue_view(case, state, max_questions, tuple(s for s in tr.steps if s.policy))


def transcript_messages(case: Case, tr: Transcript, max_questions: int, answer_format: str = "letter") -> list[dict]:
    """The consultation as chat messages, ending with the doctor's own final answer (if it gave one). Search
    trajectories (no recorded steps) end with the canonical answer turn in ``answer_format``
    (:data:`promed.doctor.actions.ANSWER_FORMATS`); recorded steps appear exactly as the doctor wrote them."""
    msgs = view_to_chat(final_view(case, tr, max_questions))
    if not tr.steps and tr.answer is not None and tr.end == "answer":  # search trajectories: canonical turns
        msgs.append({"role": "assistant", "content": answer_turn(case.options, tr.answer, answer_format)})
    return msgs


def step_to_json(s: Step) -> dict:
    a = s.action
    kind, value = (("ask", a.question) if isinstance(a, Ask) else ("answer", a.letter) if isinstance(a, Answer)
                   else ("invalid", None))
    return {"text": s.text, "action": kind, "value": value, "reason": a.reason if isinstance(a, Invalid) else None,
            "policy": s.policy, "turn": s.turn, "questions_before": s.questions_before,
            "finish_reason": s.finish_reason, "token_ids": list(s.token_ids),
            "logprobs": None if s.logprobs is None else list(s.logprobs)}


def step_from_json(d: dict) -> Step:
    kind = d["action"]
    action = (Ask(d["value"]) if kind == "ask" else Answer(d["value"]) if kind == "answer"
              else Invalid(d["text"], d.get("reason") or ""))
    lp = d.get("logprobs")
    return Step(text=d["text"], action=action, token_ids=tuple(d.get("token_ids") or ()),
                logprobs=None if lp is None else tuple(lp), finish_reason=d.get("finish_reason", ""),
                policy=bool(d.get("policy", True)), turn=d.get("turn"), questions_before=d.get("questions_before", 0))


def transcript_to_json(case: Case, tr: Transcript, max_questions: int) -> dict:
    return {
        "id": tr.case_id,
        "sample": tr.sample,
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
        "steps": [step_to_json(s) for s in tr.steps],
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
                    given=tuple(rec.get("given", ())), steps=tuple(step_from_json(s) for s in rec.get("steps", ())),
                    sample=int(rec.get("sample", 0)))
    return tr, int(rec["n_facts"])
