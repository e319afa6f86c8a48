"""The consultation environment: a doctor questions a simulated patient, then answers.

Gymnasium-style: ``reset(case, seed) -> (view, info)``, ``step(text) -> (view, reward, terminated, truncated,
info)``. It is not a ``gymnasium.Env`` subclass (observations are structured dialogue states, not spaces), but it
keeps the contract, a per-environment RNG and the spec below.

Observation
    A :class:`promed.types.DoctorView`: the initial information, the final question, the options, the dialogue so
    far, the facts revealed so far and the questions left. Hidden facts and the gold answer are never in it.

Action Space
    Doctor text in the grammar of :mod:`promed.doctor.actions`: ``ASK: <question>`` or ``ANSWER: <letter>``.

Transition
    ``ASK`` with questions left: the patient replies from the hidden facts; the turn records the question, the
    reply, the fact ids the reply revealed and which of them are new. ``ASK`` with no questions left: the episode
    is truncated (``end="budget"``) with a forced answer. ``ANSWER``: the episode terminates (``end="answer"``).
    Unreadable output: counted; the doctor may retry ``max_invalid_retries`` times in a row, after which the episode
    is truncated (``end="invalid"``) with a forced answer.

Forced answer
    A uniformly random option letter drawn from the environment's RNG (chance level, no positional bias).

Rewards
    0 for every question (SIG is assigned afterwards by :mod:`promed.sig`, which needs the case's Shapley values);
    1 at the end if the final answer is correct, else 0.

Episode End
    Terminated when the doctor answers; truncated when the budget is exceeded or output stays unreadable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from promed.doctor.actions import parse_action
from promed.types import Action, Answer, Ask, Case, DoctorView, Invalid, Patient, Transcript, Turn


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
    def reset(self, case: Case, seed: int | None = None) -> tuple[DoctorView, StepInfo]:
        self.case = case
        self.rng = np.random.default_rng(seed)
        self.turns: list[Turn] = []
        self.known: set[int] = set(range(case.n_facts)) if self.cfg.reveal_all else set()
        self.answer: str | None = None
        self.end = ""
        self.invalid = 0
        self.invalid_run = 0
        self.n_outputs = 0
        return self.view(), StepInfo()

    def step(self, text: str) -> tuple[DoctorView, float, bool, bool, StepInfo]:
        action = self.parse(text)
        reply = None
        if isinstance(action, Ask) and self.questions_left > 0:
            reply = self.patient.reply([self.case], [action.question])[0]
        return self.apply(action, reply, raw=text)

    # -- pieces, also used by the batched rollout --------------------------------------------------------------
    @property
    def done(self) -> bool:
        return bool(self.end)

    @property
    def questions_left(self) -> int:
        return max(0, self.cfg.max_questions - len(self.turns))

    def parse(self, text: str) -> Action:
        return parse_action(text, self.case.options)

    def needs_reply(self, action: Action) -> bool:
        return isinstance(action, Ask) and self.questions_left > 0 and not self.done

    def view(self) -> DoctorView:
        c = self.case
        return DoctorView(
            case_id=c.id,
            initial=c.initial,
            question=c.question,
            options=c.options,
            turns=tuple(self.turns),
            known_facts=tuple(c.facts[i] for i in sorted(self.known)),
            questions_left=self.questions_left,
            initial_findings=c.initial_findings,
        )

    def apply(
        self, action: Action, reply: tuple[str, tuple[int, ...]] | None, raw: str = ""
    ) -> tuple[DoctorView, float, bool, bool, StepInfo]:
        """Advance the episode with a parsed action and (for a question within budget) the patient's reply."""
        if self.done:
            raise RuntimeError("step() called on a finished episode; call reset()")
        self.n_outputs += 1
        if isinstance(action, Invalid):
            self.invalid += 1
            self.invalid_run += 1
            if self.invalid_run > self.cfg.max_invalid_retries:
                return self._finish(self._forced_letter(), "invalid", action)
            return self.view(), 0.0, False, False, StepInfo(action)
        self.invalid_run = 0
        if isinstance(action, Answer):
            return self._finish(action.letter, "answer", action)
        if self.questions_left == 0:
            return self._finish(self._forced_letter(), "budget", action)
        assert reply is not None, "a question within budget needs the patient's reply"
        text, revealed = reply
        new = tuple(i for i in revealed if i not in self.known)
        self.known.update(revealed)
        self.turns.append(Turn(question=action.question, reply=text, revealed=tuple(revealed), new=new, raw=raw))
        return self.view(), 0.0, False, False, StepInfo(action, tuple(revealed), new)

    def transcript(self, doctor: str = "") -> Transcript:
        c = self.case
        return Transcript(
            case_id=c.id,
            turns=tuple(self.turns),
            answer=self.answer,
            correct=None if self.answer is None else self.answer == c.answer,
            end=self.end,
            invalid=self.invalid,
            n_outputs=self.n_outputs,
            doctor=doctor,
            given=tuple(range(c.n_facts)) if self.cfg.reveal_all else (),
        )

    # -- internals ----------------------------------------------------------------------------------------------
    def _forced_letter(self) -> str:
        return str(self.rng.choice(list(self.case.letters)))

    def _finish(self, letter: str, end: str, action: Action):
        self.answer, self.end = letter, end
        reward = 1.0 if letter == self.case.answer else 0.0
        forced = end != "answer"
        return self.view(), reward, end == "answer", forced, StepInfo(action, forced=forced)
