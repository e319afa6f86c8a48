"""Live consultations in the browser (``promed view --live``): you are the doctor of a SynthClinic case.

You type questions to the simulated patient; each reply shows the facts it revealed and the SIG the question
earned; you answer when ready and see how greedy-eig did on the same case, beside the case's facts ranked by Shapley
value, and, as you go, SynthClinic's exact posterior of each option after each question. Nothing here is new
machinery: the consultation is the environment's own (:class:`promed.env.consultation.
Consultation`: budget, repeated questions, revealed and new facts), the patient is the evaluation's ``FactPatient``
(replies are verbatim safe facts checked by :mod:`promed.patient.guard`, so no question can make it name an option or
the answer), SIG is :class:`promed.sig.annotate.SigAnnotator` over SynthClinic's exact posterior (the values
``promed eval`` computes), and greedy-eig runs through :func:`promed.env.rollout.run_consultations`.

The cases and models are built on first use or by :meth:`LiveDesk.warm_up`, which the server runs in the background
once it listens (the patient loads a sentence-embedding model: seconds), so ``promed view --live`` starts as fast as
the viewer. Sessions live in memory, the oldest
dropped past :data:`MAX_SESSIONS`; one lock serialises the models, which are not made for concurrent calls.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from promed.data.sources import DataConfig, load_data
from promed.doctor.policy import case_message
from promed.doctor.registry import build_doctor
from promed.env.consultation import Consultation as ConsultationEnv
from promed.env.consultation import DialogueState, EnvConfig, dialogue_view
from promed.env.rollout import Episode, run_consultations
from promed.runtime import RunModels
from promed.sig.annotate import SigAnnotator
from promed.sig.cache import ShapleyRecord
from promed.types import Answer, Ask, Case, Transcript
from promed.view.consultations import Consultation, parse_case_message
from promed.view.curves import Chart
from promed.view.posterior import posterior_chart
from promed.view.store import NotFound

MAX_SESSIONS = 200
MAX_QUESTION_CHARS = 300
YOU = "you"
BASELINE = "greedy-eig"


@dataclass
class LiveSession:
    """One live consultation: the environment episode and, once you answered, greedy-eig's on the same case."""

    sid: str
    case: Case
    episode: ConsultationEnv
    baseline: Transcript | None = None

    @property
    def done(self) -> bool:
        return self.episode.done


@dataclass
class LiveDesk:
    """The live consultations of one viewer (SynthClinic ``split``; the environment's default question budget)."""

    split: str = "test"
    env: EnvConfig = field(default_factory=EnvConfig)
    seed: int = 0
    _cases: dict[str, Case] | None = None
    _models: RunModels | None = None
    _annotator: SigAnnotator | None = None
    _sessions: OrderedDict[str, LiveSession] = field(default_factory=OrderedDict)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    # ---- what the pages ask for ------------------------------------------------------------------------------

    def warm_up(self) -> None:
        """Generate the cases and load the patient and scorer now (the server calls it in a background thread
        once it listens, so the first question does not wait for the embedding model)."""
        cases = self.cases()
        with self._lock:
            if cases:
                self._patient().reply(cases[:1], ["warm-up question"])  # loads the embedding model
            self._sig()

    def cases(self) -> list[Case]:
        with self._lock:
            if self._cases is None:
                self._cases = {c.id: c for c in load_data(DataConfig(split=self.split)).cases}
            return list(self._cases.values())

    def case(self, case_id: str) -> Case:
        self.cases()
        try:
            return self._cases[case_id]
        except KeyError:
            raise NotFound(f"no SynthClinic {self.split} case {case_id!r}") from None

    def start(self, case_id: str) -> LiveSession:
        case = self.case(case_id)
        with self._lock:
            episode = ConsultationEnv(self._patient(), self.env)
            episode.reset(case, seed=self.seed)
            session = LiveSession(secrets.token_urlsafe(9), case, episode)
            self._sessions[session.sid] = session
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
            return session

    def session(self, sid: str) -> LiveSession:
        try:
            return self._sessions[sid]
        except KeyError:
            raise NotFound(f"no live consultation {sid!r} (sessions are kept in memory: it may have ended with a "
                           "restart of the viewer)") from None

    def ask(self, sid: str, question: str) -> str | None:
        """Put ``question`` to the patient; returns a message instead if it cannot be asked."""
        question = " ".join(question.split())
        session = self.session(sid)
        if session.done:
            return "this consultation is over"
        if not question:
            return "type a question first"
        if len(question) > MAX_QUESTION_CHARS:
            return f"a question has at most {MAX_QUESTION_CHARS} characters"
        if session.episode.questions_left == 0:
            return "no questions left: give your answer"
        with self._lock:
            reply = self._patient().reply([session.case], [question])[0]
            session.episode.apply(Ask(question), reply, f"ASK: {question}")
        return None

    def answer(self, sid: str, letter: str) -> str | None:
        """Give the final answer; runs greedy-eig on the same case for the comparison."""
        session = self.session(sid)
        if session.done:
            return "this consultation is over"
        if letter not in session.case.letters:
            return f"choose one of the options {', '.join(session.case.letters)}"
        with self._lock:
            session.episode.apply(Answer(letter), None, f"ANSWER: {letter}")
            models = self._run_models()
            doctor = build_doctor(BASELINE, models.scorer, models.llm, models.load_llm).doctor
            session.baseline = run_consultations([Episode(session.case)], doctor, self._patient(), self.env,
                                                 seed=self.seed)[0]
        return None

    # ---- the session as the viewer's pages show consultations -------------------------------------------------

    def yours(self, session: LiveSession) -> Consultation:
        return self._as_view(session.case, session.episode.transcript(YOU))

    def baseline(self, session: LiveSession) -> Consultation | None:
        return None if session.baseline is None else self._as_view(session.case, session.baseline)

    def shapley(self, case: Case) -> ShapleyRecord:
        with self._lock:
            return self._sig().cache.get(case)

    def posterior(self, session: LiveSession) -> Chart:
        """The exact posterior of each option after each of your questions (the posterior moving)."""
        with self._lock:
            return posterior_chart(session.case, session.episode.transcript(YOU), self._run_models().scorer(),
                                   mark_gold=session.done)

    def questions_left(self, session: LiveSession) -> int:
        return session.episode.questions_left

    # ---- internals ----------------------------------------------------------------------------------------------

    def _as_view(self, case: Case, tr: Transcript) -> Consultation:
        with self._lock:
            annotated = self._sig()(case, tr)
        view = dialogue_view(case, DialogueState(), self.env.max_questions)  # what the doctor saw at turn 0
        return Consultation(annotated, case.n_facts, case.answer, parse_case_message(case_message(view)), 0)

    def _run_models(self) -> RunModels:
        if self._models is None:
            self._models = RunModels(model=None, scorer_arg="bayes", patient_arg="fact", synthetic=True)
        return self._models

    def _patient(self):
        return self._run_models().patient()

    def _sig(self) -> SigAnnotator:
        if self._annotator is None:
            self._annotator = SigAnnotator.for_eval(self._run_models().scorer(), "auto", None, self.seed)
        return self._annotator

