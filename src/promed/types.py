"""Frozen value types shared by every part of ProMed.

Everything that crosses a module boundary is one of these dataclasses (never a string-keyed dict), so the
seams stay typed:

* :class:`Case` - a partial-information clinical case: what the doctor sees at turn 0 (``initial``,
  ``question``, ``options``) and what only the patient knows (``facts``).
* :class:`Query` - what a scorer is asked: the visible part of a case plus a chosen set of facts. Value
  functions build it from (case, subset); doctors build it from what the dialogue revealed.
* :class:`Ask` / :class:`Answer` / :class:`Invalid` - a parsed doctor turn.
* :class:`Generation` - one model completion: its text and, where the backend knows them, the sampled token ids
  and their log-probabilities (``text == decode(token_ids)``).
* :class:`Step` - one doctor output in a consultation, valid or not, with its parse and, for questions, the
  patient's reply; a forced answer is a step marked ``policy=False``.
* :class:`Turn` / :class:`Transcript` - the record of a consultation, each turn's SIG filled by the reward engine.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Protocol, Sequence, TypedDict

import numpy as np

LETTERS = "ABCDEFGHIJ"


class Message(TypedDict):
    """One chat message in the Hugging Face chat format (``{"role": ..., "content": ...}``)."""

    role: str
    content: str


Chat = list[Message]


@dataclass(frozen=True)
class Finding:
    """A structured clinical finding behind a SynthClinic fact: knowledge-base code and presence.

    Real (MediQ) facts have no finding; SynthClinic facts carry one so that the exact posterior can be computed.
    """

    code: str
    present: bool


@dataclass(frozen=True)
class Fact:
    """One hidden atomic fact of a case. ``id`` is its 0-based index in ``Case.facts``."""

    id: int
    text: str
    finding: Finding | None = None


@dataclass(frozen=True)
class Option:
    """One answer option. ``key`` is a knowledge-base disease code for SynthClinic options, else ``None``."""

    letter: str
    text: str
    key: str | None = None


@dataclass(frozen=True)
class Query:
    """What a scorer is asked: the visible case plus the facts in ``facts`` (in the given order)."""

    initial: str
    question: str
    options: tuple[Option, ...]
    facts: tuple[Fact, ...] = ()
    initial_findings: tuple[Finding, ...] = ()
    case_id: str = field(default="", compare=False)  # for error messages only; never shown to a scorer

    @property
    def letters(self) -> tuple[str, ...]:
        return tuple(o.letter for o in self.options)


@dataclass(frozen=True)
class Case:
    """A partial-information case.

    Attributes:
        id: unique id within its source.
        initial: the initial information the doctor sees (age, sex, chief complaint).
        facts: the hidden atomic facts only the patient knows; ``facts[i].id == i``.
        question: the final question (e.g. "Which of the following is the most likely diagnosis?").
        options: the answer options, letters in order.
        answer: the gold option letter.
        source: where the case came from (``synthclinic``, ``mediq``, ``jsonl:<file>``).
        initial_findings: structured form of ``initial`` (SynthClinic only; empty for real data).
        origin: the content fingerprint of the record the case was read from when it differs from the case's own
            (a MediQ record read with ``--initial first-half-facts`` keeps the fingerprint of its ``first-sentence``
            reading, so that splits and the contamination guard see one case: :mod:`promed.data.splits`); empty
            otherwise. Not written by :meth:`to_json`.
    """

    id: str
    initial: str
    facts: tuple[Fact, ...]
    question: str
    options: tuple[Option, ...]
    answer: str
    source: str = ""
    initial_findings: tuple[Finding, ...] = ()
    origin: str = ""

    @property
    def n_facts(self) -> int:
        return len(self.facts)

    @property
    def letters(self) -> tuple[str, ...]:
        return tuple(o.letter for o in self.options)

    @property
    def gold_index(self) -> int:
        return self.letters.index(self.answer)

    def option(self, letter: str) -> Option:
        return self.options[self.letters.index(letter)]

    def query(self, fact_ids: Sequence[int] = ()) -> Query:
        """The scorer's view of this case given the facts ``fact_ids`` (sorted, so order never matters)."""
        return Query(
            initial=self.initial,
            question=self.question,
            options=self.options,
            facts=tuple(self.facts[i] for i in sorted(set(fact_ids))),
            initial_findings=self.initial_findings,
            case_id=self.id,
        )

    def to_json(self) -> dict:
        """The generic JSONL record (see ``docs/data.md``); :func:`promed.data.cases.case_from_json` inverts it."""
        rec: dict = {
            "id": self.id,
            "initial": self.initial,
            "facts": [f.text for f in self.facts],
            "question": self.question,
            "options": {o.letter: o.text for o in self.options},
            "answer": self.answer,
            "source": self.source,
        }
        if any(f.finding for f in self.facts) or self.initial_findings or any(o.key for o in self.options):
            rec["synthclinic"] = {
                "fact_findings": [[f.finding.code, f.finding.present] if f.finding else None for f in self.facts],
                "initial_findings": [[g.code, g.present] for g in self.initial_findings],
                "option_keys": {o.letter: o.key for o in self.options},
            }
        return rec

    def content_hash(self) -> str:
        """A stable hash of everything that defines the case (used as a cache key)."""
        blob = json.dumps(self.to_json(), sort_keys=True, ensure_ascii=False).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


# ---- doctor actions -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ask:
    """The doctor asks the patient ``question``."""

    question: str


@dataclass(frozen=True)
class Answer:
    """The doctor answers with option ``letter``."""

    letter: str


@dataclass(frozen=True)
class Invalid:
    """Doctor output that the action parser could not read; ``reason`` says why."""

    text: str
    reason: str


Action = Ask | Answer | Invalid


@dataclass(frozen=True)
class Generation:
    """One completion of a language model (or one turn of a rule-based doctor).

    ``token_ids`` are the sampled ids, cut at the stop sequence on a token boundary, so that
    ``text == tokenizer.decode(token_ids)``; they end with the end-of-turn / end-of-sequence id when the model
    emitted one (``finish_reason == "stop"``). ``logprobs[i]`` is the log-probability of ``token_ids[i]`` under the
    sampling distribution (logits / temperature; the plain logits for greedy decoding). Backends that only see
    text (an OpenAI-compatible server that returns no token ids, rule-based doctors) leave ``token_ids`` empty and
    ``logprobs`` ``None``: :attr:`has_tokens` tells them apart.

    ``finish_reason``: ``"stop"`` (end-of-turn token or stop sequence), ``"length"`` (``max_new_tokens`` reached)
    or ``""`` (not a model output).
    """

    text: str
    token_ids: tuple[int, ...] = ()
    logprobs: tuple[float, ...] | None = None
    finish_reason: str = ""

    @property
    def has_tokens(self) -> bool:
        return bool(self.token_ids)

    @staticmethod
    def of(x: "Generation | str") -> "Generation":
        """A doctor's output as a :class:`Generation` (rule-based doctors may return plain text)."""
        return x if isinstance(x, Generation) else Generation(text=str(x))


# ---- consultation records -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Turn:
    """One question-reply exchange.

    ``revealed`` are all fact ids the reply stated; ``new`` the subset not revealed before (the SIG counts only
    these). ``sig`` (and its ``weights``) is filled by the reward engine; Stage 2's per-episode credit lives in
    :class:`promed.train.grpo.episode.EpisodeRecord`, not here.
    """

    question: str
    reply: str
    revealed: tuple[int, ...] = ()
    new: tuple[int, ...] = ()
    raw: str = ""
    sig: float | None = None
    weights: tuple[float, ...] = ()


@dataclass(frozen=True)
class Step:
    """One doctor output of a consultation, exactly as produced, valid or not.

    ``text``, ``token_ids``, ``logprobs`` and ``finish_reason`` are the doctor's generation (ids and log-probs
    empty for text-only doctors); ``action`` is what the strict parser read (an :class:`Invalid` carries the parse
    error as its ``reason``). ``policy`` is ``False`` for an answer the environment forced (budget exceeded or
    output unreadable too often): the policy did not produce it, so it has no tokens and earns no credit.
    ``turn`` is the index of the question-reply :class:`Turn` this step produced (an ``ASK`` within budget), else
    ``None``. ``questions_before`` is how many questions had been asked when the doctor produced it.
    """

    text: str
    action: Action
    token_ids: tuple[int, ...] = ()
    logprobs: tuple[float, ...] | None = None
    finish_reason: str = ""
    policy: bool = True
    turn: int | None = None
    questions_before: int = 0

    @classmethod
    def from_generation(cls, gen: Generation, action: Action, **kw) -> "Step":
        return cls(text=gen.text, action=action, token_ids=gen.token_ids, logprobs=gen.logprobs,
                   finish_reason=gen.finish_reason, **kw)


@dataclass(frozen=True)
class Transcript:
    """A finished (or running) consultation.

    ``answer`` is the letter the doctor chose (``None`` while running). ``end`` says how the episode ended:
    ``"answer"`` (the doctor answered: gymnasium's *terminated*), ``"budget"`` (it asked past its question budget:
    *truncated*) or ``"invalid"`` (unreadable output twice in a row: also *truncated*). After ``"budget"`` and
    ``"invalid"`` the answer was forced by the environment's fallback rule. ``invalid`` counts unreadable outputs.
    ``steps`` holds every doctor output in order (including unreadable ones and the forced answer, marked
    ``policy=False``); ``sample`` is the index of this consultation among the case's sampled group (0 for a single
    run), so records are keyed by ``(case_id, sample)``.
    """

    case_id: str
    turns: tuple[Turn, ...] = ()
    answer: str | None = None
    correct: bool | None = None
    end: str = ""
    invalid: int = 0
    n_outputs: int = 0
    doctor: str = ""
    given: tuple[int, ...] = ()
    steps: tuple[Step, ...] = ()
    sample: int = 0

    @property
    def key(self) -> tuple[str, int]:
        return (self.case_id, self.sample)

    @property
    def terminated(self) -> bool:
        return self.end == "answer"

    @property
    def truncated(self) -> bool:
        return self.end in ("budget", "invalid")

    @property
    def forced(self) -> bool:
        return self.truncated

    @property
    def n_questions(self) -> int:
        return len(self.turns)

    @property
    def known(self) -> tuple[int, ...]:
        """All fact ids known so far (given at turn 0, as in the full-information setting, or revealed), sorted."""
        return tuple(sorted(set(self.given) | {i for t in self.turns for i in t.revealed}))

    def with_turns(self, turns: Sequence[Turn]) -> "Transcript":
        return replace(self, turns=tuple(turns))


@dataclass(frozen=True)
class DoctorView:
    """What a doctor may see: the visible case, the dialogue so far and its remaining question budget.

    ``known_facts`` are the facts the patient's replies revealed so far (the same texts the doctor read in the
    replies), so a doctor that answers through a scorer uses exactly what it was told, nothing hidden.
    ``steps`` are the doctor's own outputs so far, unreadable ones included (the chat rendering shows them, so
    that the consultation is one growing conversation); empty where only the question-reply turns are known.
    """

    case_id: str
    initial: str
    question: str
    options: tuple[Option, ...]
    turns: tuple[Turn, ...]
    known_facts: tuple[Fact, ...]
    questions_left: int
    initial_findings: tuple[Finding, ...] = ()
    steps: tuple["Step", ...] = ()

    @property
    def letters(self) -> tuple[str, ...]:
        return tuple(o.letter for o in self.options)

    def query(self) -> Query:
        return Query(
            initial=self.initial,
            question=self.question,
            options=self.options,
            facts=tuple(sorted(self.known_facts, key=lambda f: f.id)),
            initial_findings=self.initial_findings,
            case_id=self.case_id,
        )


@dataclass(frozen=True)
class Sampling:
    """Generation settings passed to :meth:`promed.llm.base.LLM.generate`."""

    max_new_tokens: int = 64
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    n: int = 1
    beams: int = 1  # > 1 (temperature 0): beam search, the n completions are the n best beams (LLM.supports_beams)
    # One seed per chat: each chat's samples are drawn from its own generator (sample k of chat i from
    # (seeds[i], k)), so a chat's completions do not depend on the other chats in the batch. Overrides ``seed``.
    seeds: tuple[int, ...] = ()


# ---- seams ------------------------------------------------------------------------------------------------------


class Scorer(Protocol):
    """Answers a :class:`Query`: probabilities over its options (rows sum to 1), batched.

    Implementations: ``promed.data.synthclinic.BayesScorer`` (exact posterior) and
    ``promed.llm.scorer.LLMScorer`` (any LLM backend). ``id`` names the scorer in caches and reports.
    """

    id: str

    def probs(self, queries: Sequence[Query]) -> list[np.ndarray]: ...


class Patient(Protocol):
    """Replies to doctors' questions from the hidden facts only (batched: one reply per (case, question) pair).

    Each reply is ``(text, revealed fact ids)``. A patient never states the options, the gold answer or the
    diagnosis, whatever it is asked.
    """

    def reply(self, cases: Sequence[Case], questions: Sequence[str]) -> list[tuple[str, tuple[int, ...]]]: ...


class Doctor(Protocol):
    """Produces the next doctor turn (``ASK: ...`` or ``ANSWER: X``), parsed by ``promed.doctor.actions``.

    ``rngs`` holds one generator per view (the episode's own doctor stream, seeded from (run seed, case id, sample
    index)), so a doctor's random choices never depend on the batch it runs in; a single generator is accepted
    too and then shared by the batch (see :func:`per_view`). LLM doctors return :class:`Generation` (text plus the
    sampled ids and log-probs); rule-based doctors may return plain text.
    """

    name: str

    def act(self, views: Sequence[DoctorView],
            rngs: "Sequence[np.random.Generator] | np.random.Generator") -> "list[Generation | str]": ...


def per_view(rngs: "Sequence[np.random.Generator] | np.random.Generator", n: int) -> list[np.random.Generator]:
    """One generator per view: a sequence is checked for length, a single generator is shared by all ``n``."""
    if isinstance(rngs, np.random.Generator):
        return [rngs] * n
    rngs = list(rngs)
    if len(rngs) != n:
        raise ValueError(f"got {len(rngs)} generators for {n} views")
    return rngs
