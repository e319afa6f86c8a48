"""The engine of live consultations, shared by the browser (``promed view --live``) and the terminal (``promed chat``).

Two roles on a SynthClinic case; nothing here is new machinery, both go through the environment's own transition
(:meth:`promed.env.consultation.Consultation.apply`: budget, repeated questions, revealed and new facts):

* **You are the doctor** (:class:`DoctorSession`). You ask in free text; the patient is the evaluation's
  ``FactPatient`` (replies are verbatim safe facts re-checked by :mod:`promed.patient.guard`, so no question can make
  it name an option or the answer); you answer with a letter. Then greedy-eig, and the doctor given with
  ``--doctor`` if it is another, consult the same case through :func:`promed.env.rollout.run_consultations` (the
  evaluation's seeding, so greedy-eig asks what it asks in ``promed eval``).
* **You are the patient** (:class:`PatientSession`). A doctor (greedy-eig, ``random-5``, or a trained
  ``llm:<checkpoint dir>`` given with ``--doctor``) asks; you reply in free text from your "script", the case's hidden
  facts. Your reply goes through :func:`promed.patient.guard.redact` first - every sentence that names an option or
  an answer letter is dropped, and the whole reply becomes the fixed refusal if nothing is left - and the doctor reads
  only what is left. The facts that text covers are found by :class:`promed.sig.coverage.EmbeddingCoverage` (the
  matcher for free-text replies: it reads the reply alone, never the question, so "Yes." covers nothing while "Yes,
  I have abdominal pain." does), restricted to the case's safe facts (an answer-bearing fact is never revealed,
  whatever the matcher says); those ids are what the environment records as revealed, exactly as with a simulated
  patient's reply.

SIG is :class:`promed.sig.annotate.SigAnnotator` over SynthClinic's exact posterior (the values ``promed eval``
computes), for every question of either role. Inputs that cannot be taken raise :class:`Refused` (a ``ValueError``
whose message is shown to the user) and change nothing.

:class:`Clinic` holds what sessions share: the cases of a split, the patient, the matcher, the SIG annotator and the
doctors, each built on first use. It is not thread-safe; the browser's :class:`promed.view.live.LiveDesk`
serialises calls with a lock, the terminal has one thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from promed.data.sources import DataConfig, load_data
from promed.doctor.registry import DoctorEntry, build_doctor, check_doctor_name
from promed.env.consultation import Consultation as ConsultationEnv
from promed.env.consultation import EnvConfig
from promed.env.rollout import Episode, episode_seed, run_consultations
from promed.errors import InputError
from promed.patient.guard import redact, safe_fact_ids
from promed.runtime import RunModels
from promed.sig.annotate import SigAnnotator
from promed.sig.cache import ShapleyRecord
from promed.sig.coverage import EmbeddingCoverage
from promed.types import Answer, Ask, Case, Generation, Transcript, Turn
from promed.view.store import NotFound

YOU = "you"
BASELINE = "greedy-eig"
DEFAULT_DOCTOR = BASELINE
PATIENT_DOCTORS = (BASELINE, "random-5")  # doctors that ask without a GPU, offered in the patient role
MAX_QUESTION_CHARS = 300
MAX_REPLY_CHARS = 600
REDACTION_NOTE = ("your reply named an option or an answer letter: those sentences were removed before the doctor "
                  "read it")


class Refused(InputError):
    """An input a session cannot take; the message says why. Nothing changed."""


def unique(names) -> tuple[str, ...]:
    return tuple(dict.fromkeys(n for n in names if n))


@dataclass(frozen=True)
class ScriptLine:
    """A fact of your script (the patient role): its id, text, and whether you may say it (``False``: it names an
    option, so the guard would remove it and no reply can reveal it)."""

    id: int
    text: str
    sayable: bool


@dataclass(frozen=True)
class ReplyNote:
    """One reply you gave as the patient: as typed (whitespace normalised), as the doctor read it (after the
    guard), and the fact ids of your script it covered (what the environment records as revealed)."""

    typed: str
    seen: str
    covered: tuple[int, ...]

    @property
    def redacted(self) -> bool:
        return self.seen != self.typed


class Clinic:
    """Cases, patient, matcher, SIG and doctors shared by live consultations (SynthClinic ``split``).

    ``doctor`` is the doctor the user offered (``--doctor``): it is compared with you in the doctor role (beside
    greedy-eig) and asks by default in the patient role. Nothing is built until needed.
    """

    def __init__(self, split: str = "test", doctor: str = DEFAULT_DOCTOR, env: EnvConfig = EnvConfig(),
                 seed: int = 0):
        check_doctor_name(doctor)
        if doctor == "full-info":
            raise InputError("--doctor full-info is told every fact up front: it never asks, so there is nothing to "
                             "compare or reply to; choose a doctor that asks")
        DataConfig(split=split)  # validates the split name
        self.split, self.doctor, self.env, self.seed = split, doctor, env, seed
        self._cases: dict[str, Case] | None = None
        self._models = RunModels(model=None, scorer_arg="bayes", patient_arg="fact", synthetic=True)
        self._annotator: SigAnnotator | None = None
        self._coverage: EmbeddingCoverage | None = None
        self._doctors: dict[str, DoctorEntry] = {}

    # ---- cases and models --------------------------------------------------------------------------------------

    def cases(self) -> list[Case]:
        if self._cases is None:
            self._cases = {c.id: c for c in load_data(DataConfig(split=self.split)).cases}
        return list(self._cases.values())

    def case(self, case_id: str) -> Case:
        """The case ``case_id``; ``""``: one drawn with the seed."""
        cases = self.cases()
        if not case_id:
            return cases[int(np.random.default_rng(self.seed).integers(len(cases)))]
        try:
            return self._cases[case_id]
        except KeyError:
            raise NotFound(f"no SynthClinic {self.split} case {case_id!r} (ids look like {cases[0].id})") from None

    def patient(self):
        return self._models.patient()

    def coverage(self) -> EmbeddingCoverage:
        if self._coverage is None:
            self._coverage = EmbeddingCoverage()
        return self._coverage

    def scorer(self):
        """SynthClinic's exact posterior."""
        return self._models.scorer()

    def sig(self) -> SigAnnotator:
        if self._annotator is None:
            self._annotator = SigAnnotator.for_eval(self.scorer(), "auto", None, self.seed)
        return self._annotator

    def annotate(self, case: Case, tr: Transcript) -> Transcript:
        """``tr`` with each question's SIG."""
        return self.sig()(case, tr)

    def shapley(self, case: Case) -> ShapleyRecord:
        return self.sig().cache.get(case)

    def warm_up(self) -> None:
        """Generate the cases and load the patient, the matcher and the scorer now (seconds: the embedding model)."""
        cases = self.cases()
        if cases:
            self.patient().reply(cases[:1], ["warm-up question"])
            self.coverage().revealed(cases[0], "warm-up reply")
        self.sig()
        try:
            self.entry(self.doctor)  # e.g. load a trained doctor's checkpoint
        except (ValueError, LookupError, OSError):
            pass  # reported where the doctor is used

    # ---- doctors -------------------------------------------------------------------------------------------------

    @property
    def comparisons(self) -> tuple[str, ...]:
        """The doctors your consultation is compared with in the doctor role."""
        return unique((BASELINE, self.doctor))

    @property
    def patient_doctors(self) -> tuple[str, ...]:
        """The doctors offered in the patient role (the browser lets you pick among these only)."""
        return unique((self.doctor, *PATIENT_DOCTORS))

    def entry(self, name: str) -> DoctorEntry:
        if name not in self._doctors:
            m = self._models
            try:
                self._doctors[name] = build_doctor(name, m.scorer, m.llm, m.load_llm)
            except InputError as err:  # "prompted" wants --model, which live consultations do not take
                raise InputError(f"doctor {name}: {err}; here a model doctor is given as llm:<spec or checkpoint "
                                 "dir>") from None
        return self._doctors[name]

    def run_doctor(self, name: str, case: Case) -> Transcript:
        """Doctor ``name`` on ``case`` with the simulated patient, as ``promed eval`` runs it (SIG annotated)."""
        entry = self.entry(name)
        env = EnvConfig(self.env.max_questions, entry.reveal_all, self.env.max_invalid_retries)
        tr = run_consultations([Episode(case)], entry.doctor, self.patient(), env, seed=self.seed)[0]
        return self.annotate(case, tr)

    # ---- sessions ------------------------------------------------------------------------------------------------

    def as_doctor(self, case_id: str) -> "DoctorSession":
        case = self.case(case_id)
        episode = ConsultationEnv(self.patient(), self.env)
        episode.reset(case, seed=self.seed)
        return DoctorSession(self, case, episode)

    def as_patient(self, case_id: str, doctor: str = "") -> "PatientSession":
        """You reply to ``doctor`` (default: the offered one) on case ``case_id``."""
        case = self.case(case_id)
        name = doctor or self.doctor
        try:
            check_doctor_name(name)
        except ValueError as err:
            raise Refused(str(err)) from None
        entry = self.entry(name)
        if entry.reveal_all:
            raise Refused(f"{name} is told every fact up front: it asks nothing; choose a doctor that asks")
        env_seed, doctor_seed = episode_seed(self.seed, case.id).spawn(2)
        episode = ConsultationEnv(self.patient(), self.env)  # the patient is you: its reply() is never called
        episode.reset(case, seed=env_seed)
        session = PatientSession(self, case, name, entry, episode, np.random.default_rng(doctor_seed))
        session.advance()
        return session


@dataclass
class DoctorSession:
    """You are the doctor: ask (:meth:`ask`), then answer (:meth:`answer`); ``others`` holds the comparison
    doctors' consultations of the same case once you answered."""

    clinic: Clinic
    case: Case
    episode: ConsultationEnv
    others: dict[str, Transcript] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # comparison doctors that could not consult, and why
    role = "doctor"

    @property
    def done(self) -> bool:
        return self.episode.done

    @property
    def questions_left(self) -> int:
        return self.episode.questions_left

    def ask(self, question: str) -> Turn:
        """Put ``question`` to the patient; the turn as recorded, with its SIG."""
        question = " ".join(question.split())
        if self.done:
            raise Refused("this consultation is over")
        if not question:
            raise Refused("type a question first")
        if len(question) > MAX_QUESTION_CHARS:
            raise Refused(f"a question has at most {MAX_QUESTION_CHARS} characters")
        if self.questions_left == 0:
            raise Refused("no questions left: give your answer")
        reply = self.clinic.patient().reply([self.case], [question])[0]
        self.episode.apply(Ask(question), reply, f"ASK: {question}")
        return self.transcript().turns[-1]

    def answer(self, letter: str) -> None:
        """Give the final answer; then the comparison doctors consult the same case."""
        letter = letter.strip().strip(".").upper()
        if self.done:
            raise Refused("this consultation is over")
        if letter not in self.case.letters:
            raise Refused(f"choose one of the options {', '.join(self.case.letters)}")
        self.episode.apply(Answer(letter), None, f"ANSWER: {letter}")
        for name in self.clinic.comparisons:
            try:
                self.others[name] = self.clinic.run_doctor(name, self.case)
            except (ValueError, LookupError, OSError) as err:  # e.g. a checkpoint that cannot be loaded
                self.problems.append(f"{name} could not consult: {err}")

    def transcript(self) -> Transcript:
        """Your consultation so far, with each question's SIG."""
        return self.clinic.annotate(self.case, self.episode.transcript(YOU))


@dataclass
class PatientSession:
    """You are the patient: the doctor asks (:attr:`pending`), you :meth:`reply`, until it answers."""

    clinic: Clinic
    case: Case
    doctor: str
    entry: DoctorEntry
    episode: ConsultationEnv
    rng: np.random.Generator
    notes: list[ReplyNote] = field(default_factory=list)
    _pending: tuple[Ask, Generation | str] | None = None
    role = "patient"

    @property
    def done(self) -> bool:
        return self.episode.done

    @property
    def pending(self) -> str | None:
        """The doctor's question waiting for your reply (``None`` once it answered)."""
        return None if self._pending is None else self._pending[0].question

    @property
    def questions_left(self) -> int:
        return self.episode.questions_left

    def script(self) -> tuple[ScriptLine, ...]:
        safe = set(safe_fact_ids(self.case))
        return tuple(ScriptLine(f.id, f.text, f.id in safe) for f in self.case.facts)

    def advance(self) -> None:
        """Let the doctor act until it asks a question within its budget or the consultation ends (an unreadable
        output, a question past the budget and an answer are the environment's, as in any rollout)."""
        while self._pending is None and not self.done:
            output = self.entry.doctor.act([self.episode.view()], [self.rng])[0]
            action = self.episode.parse(output)
            if self.episode.needs_reply(action):
                self._pending = (action, output)
            else:
                self.episode.apply(action, None, output)

    def reply(self, text: str) -> ReplyNote:
        """Your reply to the pending question: guarded, matched to your script, recorded; then the doctor acts."""
        typed = " ".join(text.split())
        if self.done or self._pending is None:
            raise Refused("this consultation is over")
        if not typed:
            raise Refused("type a reply first (\"I don't know\" is a reply)")
        if len(typed) > MAX_REPLY_CHARS:
            raise Refused(f"a reply has at most {MAX_REPLY_CHARS} characters")
        seen = redact(self.case, typed)
        safe = set(safe_fact_ids(self.case))
        covered = tuple(i for i in self.clinic.coverage().revealed(self.case, seen) if i in safe)
        action, output = self._pending
        self.episode.apply(action, (seen, covered), output)
        note = ReplyNote(typed, seen, covered)
        self.notes.append(note)
        self._pending = None
        self.advance()
        return note

    def transcript(self) -> Transcript:
        """The doctor's consultation so far, with each question's SIG."""
        return self.clinic.annotate(self.case, self.episode.transcript(self.doctor))
