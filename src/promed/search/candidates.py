"""Candidate doctor turns for the search tree, behind one small protocol (:class:`promed.search.mcts.CandidateSource`).

Sources (``build_source``):

* ``policy`` - :class:`PolicyQuestions`: ``width`` samples from an LLM doctor on the node's consultation, rendered
  by :func:`promed.doctor.policy.view_to_chat` (the exact prompt the trained doctor will see) in one ``generate``
  call with ``n = width``; parsed by :func:`promed.doctor.actions.parse_action` and deduplicated. Questions become
  question children; answers add their letters to the node's answer actions; unreadable samples are counted.
* ``facts`` - :class:`FactQuestions`: a fact-targeted question writer. It reads the case's hidden facts (it is a
  search-time data generator, not the doctor): each candidate targets one hidden fact not yet revealed. On
  SynthClinic the question is the knowledge base's template (:func:`promed.data.synthclinic.question_for_fact`),
  and a few questions about findings the case does not document (from
  :func:`promed.data.synthclinic.candidate_questions`) are mixed in so that the tree also sees unanswerable
  questions. On real data an LLM writes a question targeting the fact without copying it (one batched call per
  case, memoised); a question that copies the fact, or no LLM at all, falls back to the template
  ``Can you tell me about <topic>?`` (:func:`topic_of`), and the off-target slots are generic clinical questions.
* ``both`` - :class:`UnionSource`: the union (``width`` from each, deduplicated; policy answers kept).

The questions are written from hidden facts, but every exported doctor turn is a plain question: what the
patient knows reaches the transcript only through the patient's replies.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from promed.doctor.actions import normalise_question, parse_action
from promed.doctor.policy import view_to_chat
from promed.doctor.questions import GENERIC_QUESTIONS
from promed.errors import InputError
from promed.llm.base import LLM
from promed.search.mcts import CandidateSource, Proposal
from promed.types import Answer, Ask, Case, DoctorView, Fact, Generation, Invalid, Sampling

__all__ = ["PolicyQuestions", "FactQuestions", "UnionSource", "build_source", "topic_of", "copies_fact",
           "is_synthclinic", "SOURCES"]

SOURCES = ("policy", "facts", "both")

WRITER_PROMPT = (
    "A doctor wants to find out the following about a patient: \"{fact}\"\n"
    "Write one short question the doctor could ask the patient to learn this. Do not state the answer in the "
    "question. Reply with the question only."
)


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def is_synthclinic(case: Case) -> bool:
    """True when every option has a knowledge-base key and every fact a finding (templates apply)."""
    return bool(case.options) and all(o.key for o in case.options) and all(f.finding for f in case.facts)


# ---- the template fallback ------------------------------------------------------------------------------------

_VERB = re.compile(r"\b(is|are|was|were|has|have|had|reports?|reported|denies|denied|shows?|showed|reveals?|"
                   r"revealed|demonstrates?|notes?|noted|complains?|describes?|takes?|took|drinks?|smokes?|"
                   r"works?|lives?|returned|underwent|received|developed|feels?|felt)\b", re.IGNORECASE)
_CUT = re.compile(r"\b(that|which|who|with|for|since|after|before|when|while|but|and|or|because|on|in|at)\b|[,;:(]",
                  re.IGNORECASE)
_SUBJECTS = {"he", "she", "they", "i", "it", "this", "there", "patient", "the patient", "her", "his", "their"}
_LEADING = {"a", "an", "the", "no", "not", "any", "her", "his", "their", "my", "your", "some", "recent", "recently",
            "been", "being", "of", "about", "to", "for", "from", "with", "on", "in"}


def topic_of(fact: str) -> str:
    """A short topic for a fact, e.g. "Plasma D-dimer is normal." -> "plasma D-dimer".

    The grammatical subject when it is not a pronoun, else the words after the first verb, cut at the first
    clause word, comma or number, without leading articles or negations, at most four words. Values never reach
    the topic. Empty when nothing usable is left.
    """
    text = fact.strip().rstrip(".")
    m = _VERB.search(text)
    subj, rest = (text[:m.start()].strip(" ,"), text[m.end():].strip(" ,")) if m else ("", text)
    topic = subj if subj and _norm(subj) not in _SUBJECTS and len(subj.split()) <= 6 else rest
    cut = _CUT.search(topic)
    if cut and cut.start() > 0:
        topic = topic[:cut.start()]
    words = []
    for w in topic.split():
        if any(ch.isdigit() for ch in w):
            break
        if not words and w.casefold() in _LEADING:
            continue
        words.append(w)
    words = words[:4]
    if words and not (len(words[0]) > 1 and words[0][1:2].isupper()):
        words[0] = words[0][:1].lower() + words[0][1:]
    return " ".join(words).strip(" .")


def template_question(fact: str) -> str:
    topic = topic_of(fact)
    return f"Can you tell me about {topic}?" if topic else "Can you tell me more about your symptoms?"


_FILLER = {"reports", "reported", "denies", "denied", "shows", "showed", "patient", "have", "has", "had", "been",
           "with", "that", "this", "there", "were", "does", "your", "their", "about", "from", "feels", "notes"}


def copies_fact(question: str, fact: str) -> bool:
    """True when a written question gives the fact away: contains it verbatim, repeats one of its numbers
    (values), or uses >= 80% of its content words (words of 4+ letters, reporting verbs and fillers excluded)
    when it has at least 3 of them."""
    q, f = _norm(question), _norm(fact).rstrip(".")
    if f and f in q:
        return True
    if set(re.findall(r"\d+(?:[.,/]\d+)*", f)) & set(re.findall(r"\d+(?:[.,/]\d+)*", q)):
        return True
    fw = set(re.findall(r"[a-z0-9-]{4,}", f)) - _FILLER
    qw = set(re.findall(r"[a-z0-9-]{4,}", q))
    return len(fw) >= 3 and len(fw & qw) >= 0.8 * len(fw)


def _clean_question(text: str) -> str | None:
    line = next((ln.strip() for ln in text.strip().splitlines() if ln.strip()), "")
    line = re.sub(r"^(question|q|ask|doctor)\s*[:\-]\s*", "", line, flags=re.IGNORECASE).strip(" \"'*")
    if "?" in line:
        line = line[:line.index("?") + 1]
    ok = 8 <= len(line) <= 200 and line.endswith("?") and re.search(r"[A-Za-z]{2,}", line)
    return line if ok else None


# ---- sources --------------------------------------------------------------------------------------------------


class FactQuestions:
    """Fact-targeted questions (see the module docstring). ``calls`` counts LLM writer calls."""

    name = "facts"

    def __init__(self, llm: LLM | None = None, off_target: int = 1, off_pool: int = 8,
                 sampling: Sampling = Sampling(max_new_tokens=40, temperature=0.0, stop=("\n",))):
        self.llm, self.off_target, self.off_pool, self.sampling = llm, off_target, off_pool, sampling
        self.calls = 0
        self.rejected = 0  # LLM questions replaced by the template (copied the fact or unreadable)
        self._written: dict[tuple[str, int], str] = {}
        self._last: tuple = (None, {}, [])  # (case, fact id -> question, off-target questions) of the last case

    def question(self, case: Case, fact: Fact) -> str:
        if fact.finding is not None and is_synthclinic(case):
            from promed.data.synthclinic import question_for_fact

            return question_for_fact(fact)
        self._write(case, [fact])
        return self._written[(case.id, fact.id)]

    def _write(self, case: Case, facts: Sequence[Fact]) -> None:
        todo = [f for f in facts if (case.id, f.id) not in self._written]
        if not todo:
            return
        texts: list[str | None] = [None] * len(todo)
        if self.llm is not None:
            chats = [[{"role": "user", "content": WRITER_PROMPT.format(fact=f.text)}] for f in todo]
            texts = [Generation.of(g).text for g in self.llm.generate(chats, self.sampling)]
            self.calls += 1
        for f, t in zip(todo, texts):
            q = _clean_question(t) if t is not None else None
            if q is None or copies_fact(q, f.text):
                self.rejected += self.llm is not None
                q = template_question(f.text)
            self._written[(case.id, f.id)] = q

    def _tables(self, case: Case) -> tuple[dict[int, str], list[str]]:
        """The case's targeted question per fact and its off-target questions (kept for the last case)."""
        if self._last[0] is not case:
            synth = is_synthclinic(case)
            if not synth:
                self._write(case, case.facts)
            on = {f.id: self.question(case, f) for f in case.facts}
            if synth:
                from promed.data.synthclinic import candidate_questions

                codes = {f.finding.code for f in case.facts}
                pairs = candidate_questions(case.options, codes, initial_findings=case.initial_findings)
                off = [q for _, q in pairs[: self.off_pool]]
            else:
                off = list(GENERIC_QUESTIONS[: self.off_pool])
            self._last = (case, on, off)
        return self._last[1], self._last[2]

    def off_target_questions(self, case: Case) -> list[str]:
        """Questions the case does not document (SynthClinic) or generic ones (real data), best first."""
        return list(self._tables(case)[1])

    def prefetch(self, case: Case) -> list[str]:
        on, off = self._tables(case)
        return list(on.values()) + off

    def propose(self, case: Case, view: DoctorView, width: int, rng: np.random.Generator) -> Proposal:
        on_q, off_q = self._tables(case)
        known = {f.id for f in view.known_facts}
        asked = {normalise_question(t.question) for t in view.turns}
        targeted = [q for q in dict.fromkeys(on_q[f.id] for f in case.facts if f.id not in known)
                    if normalise_question(q) not in asked]
        off = [q for q in off_q if normalise_question(q) not in asked and q not in targeted]
        n_off = min(len(off), self.off_target if width > 1 else 0)
        n_on = min(len(targeted), width - n_off)
        n_off = min(len(off), width - n_on)
        on = [targeted[i] for i in np.sort(rng.permutation(len(targeted))[:n_on])] if n_on else []
        offq = [off[i] for i in np.sort(rng.permutation(len(off))[:n_off])] if n_off else []
        return Proposal(questions=tuple(on + offq))


class PolicyQuestions:
    """``width`` samples from an LLM doctor per node, one batched ``generate`` call (``n = width``).

    Generation stops at the first newline (``stop``): a doctor turn is one line, and the parser reads only the
    first line of a question anyway, so the rest would be paid for and thrown away.
    """

    name = "policy"

    def __init__(self, llm: LLM, temperature: float = 1.0, max_new_tokens: int = 48, stop: tuple[str, ...] = ("\n",)):
        self.llm, self.temperature, self.max_new_tokens, self.stop = llm, temperature, max_new_tokens, stop
        self.calls = 0

    def prefetch(self, case: Case) -> list[str]:
        return []

    def propose(self, case: Case, view: DoctorView, width: int, rng: np.random.Generator) -> Proposal:
        sampling = Sampling(max_new_tokens=self.max_new_tokens, temperature=self.temperature, stop=self.stop,
                            seed=int(rng.integers(2**31 - 1)), n=width)
        texts = [Generation.of(g).text for g in self.llm.generate([view_to_chat(view)], sampling)]
        self.calls += 1
        questions: dict[str, str] = {}
        letters: dict[str, None] = {}
        invalid = 0
        for t in texts:
            a = parse_action(t, case.options)
            if isinstance(a, Ask):
                q = " ".join(a.question.split())
                questions.setdefault(normalise_question(q), q)
            elif isinstance(a, Answer):
                letters[a.letter] = None
            else:
                assert isinstance(a, Invalid)
                invalid += 1
        return Proposal(tuple(questions.values()), tuple(letters), invalid)


class UnionSource:
    """Several sources' candidates together (``width`` from each), deduplicated in source order."""

    name = "both"

    def __init__(self, *sources: CandidateSource):
        self.sources = sources

    @property
    def calls(self) -> int:
        return sum(s.calls for s in self.sources)

    def prefetch(self, case: Case) -> list[str]:
        return [q for s in self.sources for q in s.prefetch(case)]

    def propose(self, case: Case, view: DoctorView, width: int, rng: np.random.Generator) -> Proposal:
        props = [s.propose(case, view, width, rng) for s in self.sources]
        first: dict[str, str] = {}
        for p in props:
            for q in p.questions:
                first.setdefault(normalise_question(q), q)
        questions = tuple(first.values())
        answers = tuple(dict.fromkeys(a for p in props for a in p.answers))
        return Proposal(questions, answers, sum(p.invalid for p in props))


def build_source(name: str, llm: LLM | None = None, temperature: float = 1.0,
                 off_target: int = 1) -> CandidateSource:
    """``policy`` | ``facts`` | ``both``; ``policy`` and ``both`` need ``llm``, ``facts`` uses it on real data."""
    if name == "facts":
        return FactQuestions(llm, off_target=off_target)
    if name in ("policy", "both"):
        if llm is None:
            raise InputError(f"candidate source {name!r} needs a model (--model SPEC)")
        policy = PolicyQuestions(llm, temperature=temperature)
        return policy if name == "policy" else UnionSource(policy, FactQuestions(llm, off_target=off_target))
    raise InputError(f"unknown candidate source {name!r}; choose from {', '.join(SOURCES)}")
