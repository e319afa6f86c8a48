"""Fact coverage: which of a case's hidden facts a patient's reply revealed.

What:

* :func:`exact_ids` - pass-through for grounded patients (:class:`~promed.patient.FactPatient`,
  :class:`~promed.patient.LLMPatient`), which report the revealed ids themselves.
* :class:`EmbeddingCoverage` - for free-text replies (an LLM patient that paraphrases, a human): the reply is
  split into sentences and clauses, each unit is embedded with all-MiniLM-L6-v2 (the shared cached
  :class:`~promed.patient.embed.Embedder`), and fact ``f`` counts as revealed when some unit has cosine
  similarity >= ``threshold`` with it (or with its first-person rewrite), agrees with it on polarity and numbers,
  and ``f`` is within ``margin`` of that unit's best-matching fact.

Coverage is judged from the patient's reply only, never from the doctor's question: a question that merely
names a finding ("Do you have a fever?") reveals nothing; the reply "Yes, I have had a fever" does. A refusal
reveals nothing.

The parts of the matcher (each measured in ``benchmarks/patient_retrieval.py`` by switching it off and re-tuning):

* first-person keys: patients speak in the first person ("I've been coughing"), facts are written in the third
  ("She has a cough."); comparing with :func:`~promed.patient.fact.first_person` of the fact too raised F1 on
  hand-written MediQ replies from 0.77 to 0.84;
* margin: a unit states what it is closest to, not every fact built on the same template ("He denies cough." vs
  "He denies chest pain." score 0.69); it raised held-out precision from ~0.85 to ~0.95 on rule-built replies;
* negation: a unit and a fact must both carry a negation cue ("no", "not", "denies", "unable", "n't", ...) or
  both lack one, so "I have a fever" does not match "She denies fever" (~0.7 by cosine). Measured on rule-built
  replies whose hard negatives are made by flipping such cues, so there it is decisive by construction
  (precision 0.70 -> 0.94); on the hand-written replies it costs recall (0.82 -> 0.75) where a paraphrase
  negates differently ("I can't concentrate" vs "difficulty concentrating");
* numbers: if both mention numbers they must share one ("I am 35" vs "Patient is a 21-year-old male").

Figures at the defaults (threshold 0.600, margin 0.1): rule-built held-out replies SynthClinic P 0.940 R 0.998,
MediQ P 0.957 R 1.000 (recall is optimistic: those paraphrases come from the same rewriting rules as the keys);
56 hand-written MediQ replies P 0.950 R 0.745 (in-sample, small). Expect recall well below 1 on real
paraphrasing patients; a stronger matcher (an NLI cross-encoder) is the natural next step.

The module also holds what builds the labelled sets of the benchmark and the tests: first-person rewrites
(:func:`promed.patient.fact.first_person`), clause reordering (:func:`reorder`), polarity-flipped hard negatives
(:func:`flip_negation`) and :func:`paraphrase_examples`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from promed.patient.embed import Embedder, default_embedder
from promed.patient.fact import first_person
from promed.patient.guard import REFUSAL
from promed.types import Case

# Tuned by benchmarks/patient_retrieval.py: max mean micro-F1 over the rule-built tuning replies (SynthClinic val,
# first half of 200 MediQ cases) and the hand-written MediQ replies; figures in the module docstring.
DEFAULT_COVERAGE_THRESHOLD = 0.6
DEFAULT_COVERAGE_MARGIN = 0.1


def exact_ids(reply: tuple[str, tuple[int, ...]]) -> tuple[int, ...]:
    """The ids a grounded patient reported with its reply (sorted, de-duplicated)."""
    return tuple(sorted(set(int(i) for i in reply[1])))


_SENT = re.compile(r"(?<=[.!?;])\s+|\n+")
_CLAUSE = re.compile(r",\s+(?:and|but)\s+|;\s*|\s+but\s+|,\s+(?=(?:I|my|she|he|her|his|the)\b)", re.IGNORECASE)
_NEG = re.compile(
    r"\b(?:no|not|never|none|nor|without|denies|denied|deny|denying|negative|absent|lacks?|free\s+of|unable|"
    r"inability|cannot)\b|n't\b",
    re.IGNORECASE,
)
_NOT_NEG = re.compile(r"\bthan\s+not\b|\bnot\s+only\b|\bor\s+not\b|\bno\s+longer\b", re.IGNORECASE)
_NUM = re.compile(r"\d+(?:\.\d+)?")


def split_units(text: str) -> list[str]:
    """Sentences of ``text`` and, for sentences with several clauses, the clauses too (de-duplicated)."""
    units: list[str] = []
    for sent in _SENT.split(text):
        sent = sent.strip()
        if not sent:
            continue
        units.append(sent)
        parts = [p.strip(" ,.") for p in _CLAUSE.split(sent)]
        if len(parts) > 1:
            units.extend(p for p in parts if len(p.split()) >= 2)
    return list(dict.fromkeys(units))


def is_negated(text: str) -> bool:
    """Whether ``text`` carries a negation cue ("more days than not", "not only" and the like do not count)."""
    return _NEG.search(_NOT_NEG.sub(" ", text)) is not None


def numbers(text: str) -> frozenset[str]:
    return frozenset(_NUM.findall(text))


@dataclass(frozen=True)
class CoverageConfig:
    """Settings of :class:`EmbeddingCoverage`."""

    threshold: float = field(
        default=DEFAULT_COVERAGE_THRESHOLD,
        metadata={"help": "min cosine similarity between a reply clause and a fact for the fact to count"},
    )
    negation_check: bool = field(default=True, metadata={"help": "require matching polarity (negation cues)"})
    number_check: bool = field(default=True, metadata={"help": "if both mention numbers, require a shared one"})
    margin: float = field(
        default=DEFAULT_COVERAGE_MARGIN,
        metadata={"help": "a reply unit matches only facts within this similarity of its best fact (inf disables)"},
    )
    first_person_keys: bool = field(
        default=True, metadata={"help": "also compare units with each fact's first-person rewrite (max of both)"}
    )


class EmbeddingCoverage:
    """Matches free-text replies to a case's facts. ``revealed(case, reply_text) -> sorted fact ids``."""

    def __init__(
        self,
        threshold: float = DEFAULT_COVERAGE_THRESHOLD,
        negation_check: bool = True,
        number_check: bool = True,
        margin: float = DEFAULT_COVERAGE_MARGIN,
        first_person_keys: bool = True,
        embedder: Embedder | None = None,
    ):
        self.config = CoverageConfig(threshold, negation_check, number_check, margin, first_person_keys)
        self._embedder = embedder

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = default_embedder()
        return self._embedder

    def scores(self, cases: Sequence[Case], replies: Sequence[str]) -> list[np.ndarray]:
        """Per pair, the best admissible similarity of each fact to any reply unit, shape ``(n_facts,)``.

        Inadmissible unit-fact pairs score ``-1``: polarity or number mismatch (when those checks are on), and
        facts more than ``margin`` below the unit's best admissible fact (a unit states what it is closest to, not
        every fact with the same template, e.g. "He denies cough." vs "He denies chest pain." at 0.69).
        """
        if len(cases) != len(replies):
            raise ValueError(f"{len(cases)} cases but {len(replies)} replies")
        cfg = self.config
        units = [[] if r.strip() == REFUSAL else split_units(r) for r in replies]
        all_units = list(dict.fromkeys(u for us in units for u in us))
        keyed = cfg.first_person_keys
        all_facts = list(dict.fromkeys(
            t for c in cases for f in c.facts for t in ((f.text, first_person(f.text)) if keyed else (f.text,))
        ))
        ue = self.embedder.encode(all_units)
        fe = self.embedder.encode(all_facts)
        urow = {t: i for i, t in enumerate(all_units)}
        frow = {t: i for i, t in enumerate(all_facts)}
        out: list[np.ndarray] = []
        for case, us in zip(cases, units):
            if not us or not case.facts:
                out.append(np.full(case.n_facts, -1.0))
                continue
            ftexts = [f.text for f in case.facts]
            u_emb = ue[[urow[u] for u in us]]
            sim = u_emb @ fe[[frow[t] for t in ftexts]].T  # (n_units, n_facts)
            if keyed:
                sim = np.maximum(sim, u_emb @ fe[[frow[first_person(t)] for t in ftexts]].T)
            if cfg.negation_check:
                un = np.array([is_negated(u) for u in us])
                fn = np.array([is_negated(t) for t in ftexts])
                sim = np.where(un[:, None] == fn[None, :], sim, -1.0)
            if cfg.number_check:
                unum = [numbers(u) for u in us]
                fnum = [numbers(t) for t in ftexts]
                ok = np.array([[not (a and b) or bool(a & b) for b in fnum] for a in unum])
                sim = np.where(ok, sim, -1.0)
            best = sim.max(axis=1, keepdims=True)
            sim = np.where(sim >= best - cfg.margin, sim, -1.0)
            out.append(sim.max(axis=0))
        return out

    def revealed_batch(self, cases: Sequence[Case], replies: Sequence[str]) -> list[tuple[int, ...]]:
        thr = self.config.threshold
        return [tuple(int(i) for i in np.flatnonzero(s >= thr)) for s in self.scores(cases, replies)]

    def revealed(self, case: Case, reply_text: str) -> tuple[int, ...]:
        """Fact ids of ``case`` stated by ``reply_text`` (the patient's reply, never the doctor's question)."""
        return self.revealed_batch([case], [reply_text])[0]


# ---- rule-based rewriting for labelled sets ---------------------------------------------------------------------

_FLIPS_NEG_TO_POS = [
    (r"\b(?:denies|denied)\s+(?:any\s+)?", "reports "),
    (r"\b(does|did|has|have|is|was|were|are|can|could)\s+not\s+", r"\1 "),
    (r"\b(do|does|did|is|was|are|has)n't\s+", r"\1 "),
    (r"\bno\s+", "some "),
    (r"\bwithout\s+", "with "),
    (r"\bnegative\s+for\b", "positive for"),
    (r"\bnever\s+", "often "),
]
_FLIPS_POS_TO_NEG = [
    (r"\b(?:reports|complains\s+of|endorses)\s+", "denies "),
    (r"\b(has|have)\s+(?=had\b|been\b|lost\b|gotten\b|taken\b|\w+ed\b)", r"\1 not "),
    (r"\bhas\s+", "does not have "),
    (r"\bhave\s+", "do not have "),
    (r"\b(is|was|are|were)\s+", r"\1 not "),
    (r"\b(shows|reveals|demonstrates)\s+", lambda m: "does not " + m.group(1)[:-1] + " "),
    (r"\bpositive\s+for\b", "negative for"),
]


def flip_negation(fact: str) -> str | None:
    """The fact with its polarity flipped at its first flippable verb or cue (a hard negative: nearly the same
    words, opposite meaning), or ``None`` if no rule applies."""
    rules = _FLIPS_NEG_TO_POS if is_negated(fact) else _FLIPS_POS_TO_NEG
    hits = [(m.start(), k, m) for k, (pat, _) in enumerate(rules) if (m := re.search(pat, fact, re.IGNORECASE))]
    if not hits:
        return None
    _, k, m = min(hits, key=lambda h: (h[0], h[1]))
    rep = rules[k][1]
    new = m.expand(rep) if isinstance(rep, str) else rep(m)
    out = fact[: m.start()] + new + fact[m.end():]
    return out[:1].upper() + out[1:]


_TRAILING_TIME = re.compile(
    r"^(?P<main>.+?)\s+(?P<time>(?:for|since|during|over|in)\s+the\s+(?:past|last)\b.*|for\s+\d.*|since\s+.*|"
    r"(?:\d+|one|two|three|several|a few)\s+(?:hours?|days?|weeks?|months?|years?)\s+ago)\s*[.]?$",
    re.IGNORECASE,
)


def reorder(text: str) -> str:
    """Move a trailing time phrase to the front ("I have had a cough for 3 days." -> "For 3 days, I have had a
    cough."); text without one is returned unchanged."""
    m = _TRAILING_TIME.match(text.strip())
    if not m:
        return text
    main, time = m.group("main"), m.group("time").rstrip(". ")
    if re.search(r"\b(?:began|begun|started|occurred|that|which)$", main):
        return text
    main = main if main.startswith("I ") else main[:1].lower() + main[1:]
    return f"{time[:1].upper()}{time[1:]}, {main}."


# ---- labelled paraphrase sets (benchmark and tests) ---------------------------------------------------------------

GENERIC_DISTRACTORS = (
    "I am not sure, doctor.",
    "Thank you for asking.",
    "I would rather not say.",
    "My daughter drove me here today.",
    "I work as an accountant.",
    "The weather has been cold lately.",
    "I had breakfast this morning.",
    "Can you tell me what is going on?",
    "I have been worried about this.",
    "I live with my husband and two children.",
)
_LEAD_INS = ("Yes, ", "Well, ", "Actually, ", "Hmm, ")
_WORD = re.compile(r"[a-z]+")
_STOP = frozenset(
    "a an the is are was were has have had of in on to and or with for her his she he i my me not no".split()
)


@dataclass(frozen=True)
class CoverageExample:
    """A free-text reply to ``case`` whose truly stated facts are ``ids`` (known by construction)."""

    case: Case
    reply: str
    ids: tuple[int, ...]


def _content(text: str) -> frozenset[str]:
    return frozenset(w for w in _WORD.findall(text.lower()) if w not in _STOP)


_CASUAL = (
    (r"^I have been having ", ("I've been having ", "I've had ", "I've noticed ")),
    (r"^I have not had any ", ("I haven't had any ", "No ", "I've had no ")),
    (r"^I have not ", ("I haven't ",)),
    (r"^I do not ", ("I don't ",)),
    (r"^I am not ", ("I'm not ",)),
    (r"^I have ", ("I've got ", "I've ")),
    (r"^I am ", ("I'm ",)),
)


def _speak(fact: str, rng: np.random.Generator) -> str:
    """Patient speech for a fact: first person, then (so that the text differs from the matcher's first-person
    keys) contractions and alternative leads, clause reordering and a lead-in, each at random."""
    text = first_person(fact)
    for pat, alts in _CASUAL:
        if re.match(pat, text) and rng.random() < 0.8:
            text = re.sub(pat, alts[int(rng.integers(len(alts)))], text)
            break
    if rng.random() < 0.5:
        text = reorder(text)
    if rng.random() < 0.3:
        text = _LEAD_INS[rng.integers(len(_LEAD_INS))] + text[:1].lower() + text[1:] if not text.startswith("I ") \
            else _LEAD_INS[rng.integers(len(_LEAD_INS))] + text
    return text


def paraphrase_examples(
    cases: Sequence[Case], rng: np.random.Generator, per_case: int = 3, allowed: Sequence[Sequence[int]] | None = None
) -> list[CoverageExample]:
    """Rule-built replies with known fact ids: 0-2 first-person paraphrases of the case's facts (positives), plus
    with probability 1/2 each a polarity-flipped fact (hard negative), a fact of another case with little word
    overlap with this case (distractor) and a generic sentence; units shuffled; one reply in ten is the refusal.

    ``allowed[i]`` restricts the positives of ``cases[i]`` (e.g. to its safe facts). The labels are by
    construction, so they are approximate where two facts of a case say nearly the same thing.
    """
    out: list[CoverageExample] = []
    pool = [f.text for c in cases for f in c.facts]
    for ci, case in enumerate(cases):
        ok = list(allowed[ci]) if allowed is not None else [f.id for f in case.facts]
        words = [_content(f.text) for f in case.facts]
        for _ in range(per_case):
            if not ok or rng.random() < 0.1:
                out.append(CoverageExample(case, REFUSAL, ()))
                continue
            k = int(rng.choice([0, 1, 1, 2, 2]))
            pos = sorted(int(i) for i in rng.choice(ok, size=min(k, len(ok)), replace=False))
            units = [_speak(case.facts[i].text, rng) for i in pos]
            rest = [f.id for f in case.facts if f.id not in pos]
            if rest and rng.random() < 0.5:
                flipped = flip_negation(case.facts[int(rng.choice(rest))].text)
                if flipped:
                    units.append(first_person(flipped))
            if pool and rng.random() < 0.5:
                other = pool[int(rng.integers(len(pool)))]
                ow = _content(other)
                if all(len(ow & w) / max(1, len(ow | w)) < 0.5 for w in words):
                    units.append(first_person(other))
            if rng.random() < 0.5 or not units:
                units.append(GENERIC_DISTRACTORS[int(rng.integers(len(GENERIC_DISTRACTORS)))])
            order = rng.permutation(len(units))
            out.append(CoverageExample(case, " ".join(units[j] for j in order), tuple(pos)))
    return out


def precision_recall(predicted: Sequence[Sequence[int]], gold: Sequence[Sequence[int]]) -> tuple[float, float, float]:
    """Micro precision, recall and F1 over (reply, fact) pairs; 1.0 where a denominator is empty."""
    tp = sum(len(set(p) & set(g)) for p, g in zip(predicted, gold))
    n_pred = sum(len(set(p)) for p in predicted)
    n_gold = sum(len(set(g)) for g in gold)
    prec = tp / n_pred if n_pred else 1.0
    rec = tp / n_gold if n_gold else 1.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return prec, rec, f1
