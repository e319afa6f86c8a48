"""Live consultations in the browser (``promed view --live``), in either role, on a SynthClinic case.

* **You are the doctor**: you type questions to the simulated patient; each reply shows the facts it revealed and
  the SIG the question earned; as you go, SynthClinic's exact posterior of each option after each question (folded
  away: it is a hint); you answer and see, side by side, greedy-eig and the doctor given with ``--doctor`` on the
  same case, beside the case's facts ranked by Shapley value.
* **You are the patient**: a doctor (greedy-eig, random-5 or the ``--doctor``) asks; you reply in free text from your
  script (the case's facts); each reply shows the facts it covered, and a reply that named an option or an answer
  letter is shown as the doctor read it (those sentences removed); when the doctor answers you see its answer against
  the gold and the SIG of each of its questions.

The session logic is :mod:`promed.view.session` (the terminal's ``promed chat`` uses the same); this module keeps
the sessions of one viewer by id and turns them into what the pages show (:class:`promed.view.consultations.
Consultation` records, the posterior chart). The cases and models are built on first use or by
:meth:`LiveDesk.warm_up`, which the server runs in the background once it listens (the patient and the matcher load
a sentence-embedding model: seconds), so ``promed view --live`` starts as fast as the viewer. Sessions live in
memory, the oldest dropped past :data:`MAX_SESSIONS`; one lock serialises the models, which are not made for
concurrent calls.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from promed.doctor.policy import case_message
from promed.env.consultation import DialogueState, EnvConfig, dialogue_view
from promed.sig.cache import ShapleyRecord
from promed.types import Case, Transcript
from promed.view.consultations import Consultation, parse_case_message
from promed.view.curves import Chart
from promed.view.posterior import posterior_chart
from promed.view.session import (BASELINE, MAX_QUESTION_CHARS, MAX_REPLY_CHARS, YOU, Clinic, DoctorSession,
                                 PatientSession, Refused)
from promed.view.store import NotFound

__all__ = ["BASELINE", "MAX_QUESTION_CHARS", "MAX_REPLY_CHARS", "MAX_SESSIONS", "YOU", "LiveDesk", "LiveSession"]

MAX_SESSIONS = 200
ROLES = ("doctor", "patient")


@dataclass
class LiveSession:
    """One live consultation of the viewer: its id and the role's session."""

    sid: str
    consult: DoctorSession | PatientSession

    @property
    def case(self) -> Case:
        return self.consult.case

    @property
    def role(self) -> str:
        return self.consult.role

    @property
    def done(self) -> bool:
        return self.consult.done


@dataclass
class LiveDesk:
    """The live consultations of one viewer (one :class:`Clinic`: its split, ``--doctor`` and question budget)."""

    clinic: Clinic = field(default_factory=Clinic)
    _sessions: OrderedDict[str, LiveSession] = field(default_factory=OrderedDict)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    @property
    def split(self) -> str:
        return self.clinic.split

    @property
    def env(self) -> EnvConfig:
        return self.clinic.env

    # ---- what the pages ask for ------------------------------------------------------------------------------

    def warm_up(self) -> None:
        """Generate the cases and load the patient, matcher and scorer now (the server calls it in a background
        thread once it listens, so the first question does not wait for the embedding model)."""
        with self._lock:
            self.clinic.warm_up()

    def cases(self) -> list[Case]:
        with self._lock:
            return self.clinic.cases()

    def case(self, case_id: str) -> Case:
        if not case_id:
            raise NotFound("no case id given")
        with self._lock:
            return self.clinic.case(case_id)

    def start(self, case_id: str, role: str = "doctor", doctor: str = "") -> LiveSession:
        """A new consultation; ``doctor`` (patient role) must be one of :attr:`Clinic.patient_doctors`."""
        if role not in ROLES:
            raise NotFound(f"no role {role!r}: choose doctor or patient")
        self.case(case_id)
        with self._lock:
            if role == "doctor":
                consult = self.clinic.as_doctor(case_id)
            else:
                offered = self.clinic.patient_doctors
                if doctor and doctor not in offered:
                    raise NotFound(f"doctor {doctor!r} is not offered here; choose from {', '.join(offered)}")
                consult = self.clinic.as_patient(case_id, doctor)
            session = LiveSession(secrets.token_urlsafe(9), consult)
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
        """Doctor role: put ``question`` to the patient; returns a message instead if it cannot be asked."""
        return self._act(sid, DoctorSession, lambda s: s.ask(question))

    def answer(self, sid: str, letter: str) -> str | None:
        """Doctor role: give the final answer; the comparison doctors then consult the same case."""
        return self._act(sid, DoctorSession, lambda s: s.answer(letter))

    def reply(self, sid: str, text: str) -> str | None:
        """Patient role: reply to the doctor's pending question; returns a message instead if it cannot be taken."""
        return self._act(sid, PatientSession, lambda s: s.reply(text))

    # ---- the session as the viewer's pages show consultations -------------------------------------------------

    def yours(self, session: LiveSession) -> Consultation:
        """Doctor role: your consultation; patient role: the doctor's (the one you replied to)."""
        with self._lock:
            return self._as_view(session.case, session.consult.transcript())

    def others(self, session: LiveSession) -> list[tuple[str, Consultation]]:
        """Doctor role, once you answered: the comparison doctors' consultations of the same case."""
        consult = session.consult
        if not isinstance(consult, DoctorSession):
            return []
        return [(name, self._as_view(session.case, tr)) for name, tr in consult.others.items()]

    def baseline(self, session: LiveSession) -> Consultation | None:
        """greedy-eig's consultation of the case (doctor role, once you answered)."""
        return dict(self.others(session)).get(BASELINE)

    def shapley(self, case: Case) -> ShapleyRecord:
        with self._lock:
            return self.clinic.shapley(case)

    def posterior(self, session: LiveSession) -> Chart:
        """The exact posterior of each option after each question (the posterior moving)."""
        with self._lock:
            return posterior_chart(session.case, session.consult.transcript(), self.clinic.scorer(),
                                   mark_gold=session.done)

    def questions_left(self, session: LiveSession) -> int:
        return session.consult.questions_left

    # ---- internals ----------------------------------------------------------------------------------------------

    def _act(self, sid: str, kind: type, act) -> str | None:
        session = self.session(sid)
        if not isinstance(session.consult, kind):
            return f"this consultation is in the {session.role} role"
        try:
            with self._lock:
                act(session.consult)
        except Refused as err:
            return str(err)
        return None

    def _as_view(self, case: Case, tr: Transcript) -> Consultation:
        view = dialogue_view(case, DialogueState(), self.env.max_questions)  # what the doctor saw at turn 0
        return Consultation(tr, case.n_facts, case.answer, parse_case_message(case_message(view)), 0)
