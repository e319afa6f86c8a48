"""The consultation: the one transition, the doctor's view of a state, and the gymnasium-style environment.

Everything that advances a consultation - this environment, the batched rollouts, MCTS's world model, the
evaluation records and the benchmarks - goes through :func:`transition` and builds what the doctor sees with
:func:`dialogue_view`, so "a question reveals facts, only the new ones count" is written once.

:func:`transition` ``(state, action, reply) -> (state, new fact ids)`` is pure: an ``Answer`` ends the dialogue;
an ``Ask`` with the patient's reply appends a :class:`promed.types.Turn` recording the question, the reply, every
fact id the reply revealed and the subset not known before. Budget and unreadable-output rules are the
environment's, below; MCTS never produces either.

:class:`Consultation` keeps gymnasium's contract: ``reset(case, seed) -> (view, info)``, ``step(output) -> (view,
reward, terminated, truncated, info)``. It is not a ``gymnasium.Env`` subclass (observations are structured dialogue
states, not spaces), but it keeps the contract, a per-environment RNG and the spec below.

Observation
    A :class:`promed.types.DoctorView`: the initial information, the final question, the options, the dialogue so
    far (question-reply turns and every doctor output), the facts revealed so far and the questions left. Hidden
    facts and the gold answer are never in it.

Action Space
    Doctor output (a :class:`promed.types.Generation` or text) in the grammar of :mod:`promed.doctor.actions`:
    ``ASK: <question>`` or ``ANSWER: <letter>``, parsed strictly.

Transition
    Every output is recorded as a :class:`promed.types.Step` (text, sampled ids and log-probs, the parse).
    ``ASK`` with questions left: the patient replies and :func:`transition` records the turn. ``ASK`` with no
    questions left: the episode is truncated (``end="budget"``) with a forced answer. ``ANSWER``: the episode
    terminates (``end="answer"``). Unreadable output: counted and shown to the doctor in the next prompt; the doctor
    may retry ``max_invalid_retries`` times in a row, after which the episode is truncated (``end="invalid"``) with
    a forced answer.

Forced answer
    A uniformly random option letter drawn from the environment's RNG (chance level, no positional bias), recorded
    as a step with ``policy=False``: the policy did not say it.

Rewards
    0 for every question (SIG is assigned afterwards by :mod:`promed.sig`, which needs the case's Shapley values);
    1 at the end if the final answer is correct, else 0.

Episode End
    Terminated when the doctor answers; truncated when the budget is exceeded or output stays unreadable.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np

from promed.doctor.actions import normalise_question, parse_action
from promed.errors import InputError
from promed.types import (
    Action, Answer, Ask, Case, DoctorView, Generation, Invalid, Patient, Step, Transcript, Turn,
)


@dataclass(frozen=True)
class EnvConfig:
    """Consultation settings."""

    max_questions: int = field(default=5, metadata={"help": "Question budget per consultation."})
    reveal_all: bool = field(
        default=False,
        metadata={"help": "Give the doctor every hidden fact at turn 0 (the full-information upper bound)."},
    )
    max_invalid_retries: int = field(
        default=1, metadata={"help": "Unreadable outputs tolerated in a row before the answer is forced."}
    )

    def __post_init__(self) -> None:
        if self.max_questions < 0:
            raise InputError(f"--max-questions must be >= 0, got {self.max_questions}")
        if self.max_invalid_retries < 0:
            raise InputError(f"max_invalid_retries must be >= 0, got {self.max_invalid_retries}")


# ---- the one transition ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DialogueState:
    """A consultation's state: the question-reply turns, the fact ids known and, once given, the answer."""

    turns: tuple[Turn, ...] = ()
    known: frozenset[int] = frozenset()
    answer: str | None = None

    @property
    def n_questions(self) -> int:
        return len(self.turns)

    @property
    def terminal(self) -> bool:
        return self.answer is not None

    @property
    def asked(self) -> frozenset[str]:
        """The questions asked so far, under :func:`promed.doctor.actions.normalise_question`."""
        return frozenset(normalise_question(t.question) for t in self.turns)


def transition(state: DialogueState, action: Ask | Answer,
               reply: tuple[str, Sequence[int]] | None = None, raw: str = "") -> tuple[DialogueState, tuple[int, ...]]:
    """The next state and the fact ids newly revealed (pure).

    ``Answer`` -> the terminal state with that letter. ``Ask`` needs the patient's ``reply`` ``(text, revealed
    ids)``: the new turn records every revealed id and, as ``new``, those not known before. ``raw`` is the doctor's
    text for the turn (default: the canonical ``ASK: <question>``).
    """
    if state.terminal:
        raise ValueError("the consultation is over: no transition from a terminal state")
    if isinstance(action, Answer):
        return replace(state, answer=action.letter), ()
    if not isinstance(action, Ask):
        raise TypeError(f"transition takes Ask or Answer, not {type(action).__name__}")
    if reply is None:
        raise ValueError("a question needs the patient's reply")
    text, revealed = reply
    revealed = tuple(int(i) for i in revealed)
    new = tuple(dict.fromkeys(i for i in revealed if i not in state.known))
    turn = Turn(question=action.question, reply=text, revealed=revealed, new=new,
                raw=raw or f"ASK: {action.question}")
    return DialogueState(turns=state.turns + (turn,), known=state.known | frozenset(revealed)), new


def dialogue_view(case: Case, state: DialogueState, max_questions: int,
                  steps: tuple[Step, ...] = ()) -> DoctorView:
    """What the doctor sees in ``state`` (the facts known are the ones it was told; nothing hidden)."""
    return DoctorView(
        case_id=case.id, initial=case.initial, question=case.question, options=case.options, turns=state.turns,
        known_facts=tuple(case.facts[i] for i in sorted(state.known)),
        questions_left=max(0, max_questions - state.n_questions), initial_findings=case.initial_findings,
        steps=steps,
    )


def transcript_state(tr: Transcript) -> DialogueState:
    """The final state of a recorded consultation."""
    return DialogueState(turns=tr.turns, known=frozenset(tr.known), answer=tr.answer)


# ---- the environment ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepInfo:
    """Per-step diagnostics (the gymnasium ``info``)."""

    action: Action | None = None
    revealed: tuple[int, ...] = ()
    new: tuple[int, ...] = ()
    forced: bool = False


class Consultation:
    """One consultation over one case at a time (see the module docstring for the full spec)."""

    def __init__(self, patient: Patient, cfg: EnvConfig = EnvConfig()):
        self.patient = patient
        self.cfg = cfg
        self.case: Case | None = None

    # -- gymnasium-style API ------------------------------------------------------------------------------------
    def reset(self, case: Case, seed: int | np.random.SeedSequence | None = None,
              sample: int = 0) -> tuple[DoctorView, StepInfo]:
        self.case = case
        self.sample = sample
        self.rng = np.random.default_rng(seed)
        given = frozenset(range(case.n_facts)) if self.cfg.reveal_all else frozenset()
        self.state = DialogueState(known=given)
        self.steps: list[Step] = []
        self.end = ""
        self.invalid = 0
        self.invalid_run = 0
        return self.view(), StepInfo()

    def step(self, output: Generation | str) -> tuple[DoctorView, float, bool, bool, StepInfo]:
        action = self.parse(output)
        reply = None
        if self.needs_reply(action):
            reply = self.patient.reply([self.case], [action.question])[0]
        return self.apply(action, reply, output)

    # -- pieces, also used by the batched rollout --------------------------------------------------------------
    @property
    def done(self) -> bool:
        return bool(self.end)

    @property
    def questions_left(self) -> int:
        return max(0, self.cfg.max_questions - self.state.n_questions)

    def parse(self, output: Generation | str) -> Action:
        return parse_action(Generation.of(output).text, self.case.options)

    def needs_reply(self, action: Action) -> bool:
        return isinstance(action, Ask) and self.questions_left > 0 and not self.done

    def view(self) -> DoctorView:
        return dialogue_view(self.case, self.state, self.cfg.max_questions, tuple(self.steps))

    def apply(self, action: Action, reply: tuple[str, tuple[int, ...]] | None,
              output: Generation | str = "") -> tuple[DoctorView, float, bool, bool, StepInfo]:
        """Advance the episode with a parsed action and (for a question within budget) the patient's reply."""
        if self.done:
            raise RuntimeError("step() called on a finished episode; call reset()")
        gen = Generation.of(output)
        before = self.state.n_questions
        if isinstance(action, Invalid):
            self.steps.append(Step.from_generation(gen, action, questions_before=before))
            self.invalid += 1
            self.invalid_run += 1
            if self.invalid_run > self.cfg.max_invalid_retries:
                return self._finish(self._forced_letter(), "invalid", action)
            return self.view(), 0.0, False, False, StepInfo(action)
        self.invalid_run = 0
        if isinstance(action, Answer):
            self.steps.append(Step.from_generation(gen, action, questions_before=before))
            return self._finish(action.letter, "answer", action)
        self.steps.append(Step.from_generation(gen, action, questions_before=before,
                                               turn=before if self.questions_left > 0 else None))
        if self.questions_left == 0:
            return self._finish(self._forced_letter(), "budget", action)
        assert reply is not None, "a question within budget needs the patient's reply"
        self.state, new = transition(self.state, action, reply, raw=gen.text)
        revealed = self.state.turns[-1].revealed
        return self.view(), 0.0, False, False, StepInfo(action, revealed, new)

    def transcript(self, doctor: str = "") -> Transcript:
        c = self.case
        answer = self.state.answer
        return Transcript(
            case_id=c.id,
            turns=self.state.turns,
            answer=answer,
            correct=None if answer is None else answer == c.answer,
            end=self.end,
            invalid=self.invalid,
            n_outputs=sum(1 for s in self.steps if s.policy),
            doctor=doctor,
            given=tuple(range(c.n_facts)) if self.cfg.reveal_all else (),
            steps=tuple(self.steps),
            sample=self.sample,
        )

    # -- internals ----------------------------------------------------------------------------------------------
    def _forced_letter(self) -> str:
        return str(self.rng.choice(list(self.case.letters)))

    def _finish(self, letter: str, end: str, action: Action):
        forced = end != "answer"
        if forced:
            self.steps.append(Step(text="", action=Answer(letter), policy=False,
                                   questions_before=self.state.n_questions))
        self.state, _ = transition(self.state, Answer(letter))
        self.end = end
        reward = 1.0 if letter == self.case.answer else 0.0
        return self.view(), reward, end == "answer", forced, StepInfo(action, forced=forced)
