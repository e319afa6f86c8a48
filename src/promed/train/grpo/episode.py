"""One consultation as Stage 2 sees it: TRL's rollout fields plus a frozen :class:`EpisodeRecord` for the credit.

Pure functions of a finished (SIG-annotated) transcript: the kinds and SIG of its policy turns
(:func:`turn_kinds`), their information gains under a value function (:func:`turn_gains`, the ``ig-mixed`` credit),
the scorer's answer on the facts revealed (:func:`scorer_correct`, ``--answerer scorer``), the tokens of each
answer's diagnosis (:func:`answer_content`), the rollout row TRL consumes (:func:`rollout_row`), the per-step metrics
of a batch of episodes (:func:`step_metrics`) and their lines of ``rollouts.jsonl`` (:func:`rollout_lines`). Nothing
here imports TRL.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from promed.doctor.actions import ANSWER_KEYWORD
from promed.train.advantages import EpisodeCredit, RewardWeights, TurnKind, turn_rewards
from promed.train.render import render_consultation
from promed.types import Answer, Ask, Case, Scorer, Transcript

ValueFn = Callable[[Case, Sequence[frozenset[int]]], np.ndarray]
"""v(case, subsets) -> values (:meth:`promed.sig.value.ScorerValue.v`)."""

__all__ = ["EPISODE_FIELD", "EpisodeRecord", "ValueFn", "answer_content", "append_rollouts", "policy_correct",
           "rollout_lines", "rollout_row", "scorer_correct", "step_metrics", "turn_gains", "turn_kinds"]

EPISODE_FIELD = "promed_episode"  # the extra rollout field TRL hands back to the trainer with each completion


@dataclass(frozen=True)
class EpisodeRecord:
    """What the credit assignment, the metrics and ``rollouts.jsonl`` need of one consultation.

    ``credit`` holds the per-token turn index and the turns' kinds and SIG (:class:`EpisodeCredit`); ``forced``:
    the environment forced the answer (budget spent or unreadable output); ``ids_sha1``: a hash of the rendered token
    ids, so that two arms or a resumed run can be compared rollout by rollout. ``policy_correct``: the policy's own
    answer was right; ``scorer_correct``: the scorer's answer on the facts revealed was (None when no scorer judged,
    i.e. without ``--answerer scorer`` or ``ig-mixed``); ``credit.correct`` is the one the outcome rewards."""

    credit: EpisodeCredit
    case_id: str
    sample: int
    answer: str | None
    questions: int
    sig_total: float
    invalid: int
    forced: bool
    ids_sha1: str
    policy_correct: bool = False
    scorer_correct: bool | None = None


def turn_kinds(tr: Transcript) -> tuple[tuple[TurnKind, ...], tuple[float, ...]]:
    """Each policy output's kind and SIG: a question within budget is ``ask`` with its turn's SIG (a repeated
    question reveals nothing new: SIG 0); an answer ``answer``; an unreadable output, or a question asked with no
    questions left (the environment then forces the answer), ``invalid``."""
    kinds: list[TurnKind] = []
    sig: list[float] = []
    for step in (s for s in tr.steps if s.policy):
        if isinstance(step.action, Ask) and step.turn is not None:
            kinds.append("ask")
            sig.append(float(tr.turns[step.turn].sig or 0.0))
        elif isinstance(step.action, Answer):
            kinds.append("answer")
            sig.append(0.0)
        else:
            kinds.append("invalid")
            sig.append(0.0)
    return tuple(kinds), tuple(sig)


def answer_content(tr: Transcript, turn_index: np.ndarray, decode) -> np.ndarray:
    """(T,) bool: the tokens of each policy answer after its keyword, i.e. the diagnosis it names.

    The keyword's tokens are the shortest prefix of the answer's sampled tokens whose text (``decode``) reaches
    ``ANSWER:`` as the parser reads it (:data:`promed.doctor.actions.ANSWER_KEYWORD`); an answer whose keyword is never
    reached counts as all keyword."""
    content = np.zeros(len(turn_index), dtype=bool)
    for k, step in enumerate(s for s in tr.steps if s.policy):
        if not isinstance(step.action, Answer):
            continue
        ids = list(step.token_ids)
        cut = next((j for j in range(1, len(ids) + 1) if ANSWER_KEYWORD.match(decode(ids[:j]))), len(ids))
        where = np.flatnonzero(np.asarray(turn_index) == k)
        content[where[cut:]] = True
    return content


def policy_correct(tr: Transcript) -> bool:
    """The policy answered itself (no forced answer) and was right."""
    return tr.end == "answer" and bool(tr.correct)


def scorer_correct(case: Case, tr: Transcript, scorer: Scorer) -> bool:
    """The scorer's most probable option, given the initial information and every fact the consultation revealed,
    is the gold one (what ``ask:`` evaluates: the policy asks, the scorer answers)."""
    [p] = scorer.probs([case.query(tr.known)])
    return case.letters[int(np.argmax(p))] == case.answer


def turn_gains(case: Case, tr: Transcript, value: ValueFn) -> tuple[float, ...]:
    """Each policy output's information gain: for a question within budget, v(facts known after its reply) - v(facts
    known before it), the rise of the scorer's probability of the gold answer; 0 for an answer, an unreadable output
    or a repeated question (it reveals nothing new). One value call for the whole consultation."""
    known = frozenset(tr.given)
    before: list[frozenset[int]] = []
    after: list[frozenset[int]] = []
    for turn in tr.turns:
        before.append(known)
        known = known | frozenset(turn.revealed)
        after.append(known)
    subsets = list(dict.fromkeys([*before, *after]))
    v = dict(zip(subsets, (float(x) for x in value(case, subsets)))) if subsets else {}
    gains = []
    for step in (s for s in tr.steps if s.policy):
        t = step.turn
        gains.append(v[after[t]] - v[before[t]] if isinstance(step.action, Ask) and t is not None else 0.0)
    return tuple(gains)


def rollout_row(case: Case, tr: Transcript, backend, max_questions: int, *, judge: Scorer | None = None,
                value: ValueFn | None = None) -> dict:
    """One consultation as TRL's rollout fields (``prompt_ids``, ``completion_ids``, ``logprobs``, ``env_mask``)
    plus its :class:`EpisodeRecord` under :data:`EPISODE_FIELD` (``tr`` annotated with SIG).

    The prompt is everything before the doctor's first token; the completion the rest, so the environment's
    tokens inside it are masked by ``env_mask``. With ``judge`` the outcome is the scorer's answer on the facts
    revealed (``--answerer scorer``); with ``value`` each turn's information gain is recorded (``ig-mixed``). The
    tokens are the same either way: only the record differs.
    """
    r = render_consultation(case, tr, backend, max_questions)
    p = int(np.argmax(r.doctor_mask > 0))
    kinds, sig = turn_kinds(tr)
    turn_index = r.turn_index[p:].copy()
    decode = lambda ids: backend.tokenizer.decode(ids, skip_special_tokens=True)  # noqa: E731
    own = policy_correct(tr)
    judged = scorer_correct(case, tr, judge) if judge is not None else None
    credit = EpisodeCredit(turn_index=turn_index, kinds=kinds, sig=sig, correct=own if judged is None else judged,
                           format_ok=tr.end == "answer" and tr.invalid == 0,
                           content=answer_content(tr, turn_index, decode),
                           gain=turn_gains(case, tr, value) if value is not None else None)
    record = EpisodeRecord(credit=credit, case_id=tr.case_id, sample=tr.sample, answer=tr.answer,
                           questions=len(tr.turns), sig_total=float(sum(sig)), invalid=tr.invalid,
                           forced=tr.end != "answer", ids_sha1=hashlib.sha1(r.input_ids.tobytes()).hexdigest(),
                           policy_correct=own, scorer_correct=judged)
    return {
        "prompt_ids": r.input_ids[:p].tolist(),
        "completion_ids": r.input_ids[p:].tolist(),
        "logprobs": [float(x) for x in r.logprobs[p:]],
        "env_mask": r.doctor_mask[p:].astype(int).tolist(),
        EPISODE_FIELD: record,
    }


def step_metrics(episodes: Sequence[EpisodeRecord], weights: RewardWeights) -> dict[str, float]:
    """The ``promed/*`` metrics of one step's episodes: accuracy of the policy's own answers, mean return of the
    turn rewards, questions per consultation, SIG per question, invalid outputs and forced answers per consultation;
    with a judging scorer also the accuracy of its answers on the facts revealed (``promed/ask_accuracy``) and, with
    information gains, the gain per question (``promed/gain_per_question``)."""
    n = len(episodes)
    returns = [float(turn_rewards(e.credit.kinds, e.credit.sig, e.credit.correct, weights).sum()) for e in episodes]
    questions = sum(e.questions for e in episodes)
    extra = {}
    if all(e.scorer_correct is not None for e in episodes):
        extra["promed/ask_accuracy"] = sum(bool(e.scorer_correct) for e in episodes) / n
    if all(e.credit.gain is not None for e in episodes):
        extra["promed/gain_per_question"] = sum(sum(e.credit.gain) for e in episodes) / max(questions, 1)
    return {"promed/accuracy": sum(e.policy_correct for e in episodes) / n,
            "promed/return": sum(returns) / n,
            "promed/questions": questions / n,
            "promed/sig_per_question": sum(e.sig_total for e in episodes) / max(questions, 1),
            "promed/invalid": sum(e.invalid for e in episodes) / n,
            "promed/forced": sum(e.forced for e in episodes) / n, **extra}


def rollout_lines(step: int, episodes: Sequence[EpisodeRecord], advantages: Sequence[np.ndarray]) -> list[str]:
    """One JSON line per consultation of the step: what was asked and earned, and the hash of its token ids."""
    lines = []
    for e, a in zip(episodes, advantages):
        c = e.credit
        lines.append(json.dumps({
            "step": step, "case_id": e.case_id, "sample": e.sample, "kinds": list(c.kinds),
            "sig": [round(x, 6) for x in c.sig], "answer": e.answer, "correct": c.correct,
            **({} if e.scorer_correct is None else {"own_correct": e.policy_correct}),
            **({} if c.gain is None else {"gain": [round(x, 6) for x in c.gain]}),
            "forced": e.forced, "invalid": e.invalid, "ids_sha1": e.ids_sha1,
            "mean_advantage": round(float(a[c.mask > 0].mean()) if c.mask.any() else 0.0, 6)}))
    return lines


def append_rollouts(path: Path, step: int, episodes: Sequence[EpisodeRecord],
                    advantages: Sequence[np.ndarray]) -> None:
    """Append the step's :func:`rollout_lines` to ``path`` (``rollouts.jsonl``)."""
    with path.open("a", encoding="utf-8") as f:
        f.write("\n".join(rollout_lines(step, episodes, advantages)) + "\n")
