"""FactPatient: replies with the hidden atomic facts that answer the doctor's question, verbatim.

Length: one retrieval pipeline (lexical, embedding, section and matcher scores fused in one ranking), kept whole so
that the fusion reads top to bottom.

What: for each (case, question) pair, the question and the case's *safe* hidden facts (see
:mod:`promed.patient.guard`) are embedded with all-MiniLM-L6-v2; facts whose cosine similarity to the question is
at least ``threshold`` and within ``margin`` of the best match are candidates, and the ``max_facts`` most similar
are revealed. The reply is their texts joined in fact order, and the revealed ids are reported exactly, so the
SIG reward needs no matcher for this patient. If no fact qualifies the reply is the fixed
:data:`~promed.patient.guard.REFUSAL` with no ids.

Why: this is the deterministic, cheap, exactly-labelled patient the environment and the SIG reward are built on
(the paper's patient is an LLM fact-select prompt, offered as :class:`~promed.patient.llm.LLMPatient`).
Verbatim facts keep the reply grounded: it cannot state anything the case does not, and in particular it cannot
state an option or the answer (the guard's safe-fact rule plus a final scan).

How a question is answered (in order):

1. **Questions about the answer are refused**: one that asks for the diagnosis or the answer, or names an option
   (:func:`~promed.patient.guard.asks_for_answer`), gets :data:`~promed.patient.guard.REFUSAL`.
2. **Broad questions** ("What did the physical examination show?", "Any allergies?", "What are his vital signs?":
   :mod:`promed.patient.intent`, read part by part) reveal the safe facts of the record sections they name
   (:mod:`promed.patient.categories`, tagged once per case), in case order, at most ``max_broad_facts`` (6) per
   reply: a chart read aloud, bounded so that one question cannot empty the record. A question with a specific part
   too ("Any allergies, and do you smoke?") adds what retrieval finds; a broad question about an empty section falls
   through to retrieval.
3. **Specific questions** ("Any fever?", "What was her hemoglobin?") go through retrieval: similarity is the higher
   of the question's and its glossary expansion's (:mod:`promed.patient.glossary`: "tummy" also says "abdomen")
   cosine to each of the fact's keys: the fact as written, its rule-based first-person rewrite (:func:`first_person`:
   "She denies fever." -> "I have not had any fever."; doctors ask both "Do you...?" and "Is his...?") and, for a
   fact that lists several findings, each clause (:func:`clauses`). Facts of the sections the question's words
   point to get ``hint_bonus`` and facts containing one of its glossary terms word for word ``term_bonus``; facts
   at least ``threshold`` and within ``margin`` of the best are candidates and the ``max_facts`` best are revealed
   (``max_broad_facts`` for a question about part of a section: "What did the eye examination show?"). Pertinent
   negatives are facts like any other ("Any fever?" -> "He denied fever.").

Only the keys change: the reply is always the original fact texts.

4. **Optional learned matcher** (``matcher``: the directory of a cross-encoder trained by
   ``benchmarks/train_patient_matcher.py`` on pairs from ``benchmarks/patient_pairs.py``; off by default). For a specific
   question the ``matcher_candidates`` best facts by similarity plus bonuses (at least ``matcher_floor``) are read
   with the question by the cross-encoder (:mod:`promed.patient.matcher`), and those scoring at least
   ``matcher_threshold`` (within ``matcher_margin`` of the best) are revealed instead of the threshold rule's; with
   ``matcher_gate`` the rule chooses and the matcher only removes facts. Broad questions and refusals are unchanged.
   With ``matcher=""`` the patient is exactly the rule-only patient. ``embed_model`` instead swaps the shipped
   MiniLM for a fine-tuned copy (``train_patient_matcher.py --kind bi``), with the rule unchanged (its settings
   re-tuned: ``benchmarks/patient_matcher.py``'s ``BI_SETTINGS``). Both are off by default: measured on the
   hand-written questions, neither reaches the issue's targets (figures: ``benchmarks/patient_matcher.py``).

Batching: one ``Embedder.encode`` for all new question texts, one for their expansions and one for all fact keys of
the call; embeddings are cached by text, so a case's facts are embedded once per process.

Defaults were tuned by ``benchmarks/patient_real.py`` on the *tune* and *dev* splits of the hand-written MediQ
questions (grid over threshold, margin and the two bonuses; the *test* split held out), after ``benchmarks/
patient_retrieval.py`` had tuned the previous release's retrieval on SynthClinic. ``both_keys``, ``clause_keys``,
``glossary``, ``broad``, ``refuse_answer_questions`` off and the bonuses at 0, with threshold 0.525 and margin 0.025,
give the previous release's patient. The section rules were extended in session 13 on tune, dev and the matcher's
hand-written training questions pooled (``benchmarks/data/mediq_patient_train.jsonl``); the thresholds above did not
move (re-tuned on the pooled set, the best setting gained 0.005 F1: a plateau).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from promed.errors import InputError
from promed.patient.categories import case_categories
from promed.patient.embed import Embedder, default_embedder, tuned_embedder
from promed.patient.glossary import expand_question, term_pattern
from promed.patient.guard import REFUSAL, asks_for_answer, guard_reply, safe_fact_ids
from promed.patient.intent import QuestionIntent, read_question
from promed.patient.matcher import PairScorer, default_scorer
from promed.types import Case

# Tuned by benchmarks/patient_real.py on the tune+dev splits of the hand-written MediQ questions (micro-F1; grid: threshold
# 0.35-0.60 step 0.025 x margin 0.05-0.2 x hint bonus 0.05-0.2 x term bonus 0-0.2, max_facts 3); a plateau point
# rather than the grid's edge. Figures (tune, held-out test, SynthClinic) are in BENCHMARKS.md.
DEFAULT_THRESHOLD = 0.5
DEFAULT_MARGIN = 0.1
DEFAULT_MAX_FACTS = 3
DEFAULT_MAX_BROAD_FACTS = 6
DEFAULT_HINT_BONUS = 0.15
DEFAULT_TERM_BONUS = 0.15
# The learned matcher (off by default: ``matcher=""``). Its settings were chosen by `benchmarks/patient_matcher.py
# --grid` on the tune+dev splits only (mean micro-F1; candidates 6/10 x floor 0.3/0.4 x threshold 0.3-0.8 x margin
# 0.1-1 x weight 0.2-1) for the matcher trained with the hand-written training questions (`train_patient_matcher.py
# --hand`): a blend that leans on the similarity, since the cross-encoder alone ranks worse than it.
DEFAULT_MATCHER_CANDIDATES = 6
DEFAULT_MATCHER_FLOOR = 0.3
DEFAULT_MATCHER_THRESHOLD = 0.4
DEFAULT_MATCHER_MARGIN = 0.1
DEFAULT_MATCHER_WEIGHT = 0.3


@dataclass(frozen=True)
class FactPatientConfig:
    """Retrieval settings of :class:`FactPatient`."""

    threshold: float = field(
        default=DEFAULT_THRESHOLD,
        metadata={"help": "min cosine similarity (MiniLM) between question and fact for the fact to be revealed"},
    )
    max_facts: int = field(default=DEFAULT_MAX_FACTS, metadata={"help": "max facts revealed per reply"})
    margin: float = field(
        default=DEFAULT_MARGIN,
        metadata={"help": "reveal only facts within this similarity of the best match (inf disables)"},
    )
    first_person_keys: bool = field(
        default=True, metadata={"help": "embed facts through their first-person rewrite (the reply stays verbatim)"}
    )
    both_keys: bool = field(
        default=True,
        metadata={"help": "embed each fact both as written and through its first-person rewrite; a question's "
                          "similarity to the fact is the larger (doctors ask 'Do you...?' and 'Is his...?')"},
    )
    clause_keys: bool = field(
        default=True,
        metadata={"help": "also retrieve a fact by each of its clauses when it lists several findings ('fever, "
                          "fatigue and bleeding gums for 3 weeks')"},
    )
    glossary: bool = field(
        default=True,
        metadata={"help": "also match the question with its lay/clinical synonyms (promed.patient.glossary); the "
                          "higher similarity counts"},
    )
    term_bonus: float = field(
        default=DEFAULT_TERM_BONUS,
        metadata={"help": "similarity added to a fact that contains one of the question's glossary terms word for "
                          "word ('Any fever?' -> 'Her temperature is 38.1 C')"},
    )
    refuse_answer_questions: bool = field(
        default=True,
        metadata={"help": "refuse a question that asks for the diagnosis or the answer or names an option "
                          "(promed.patient.guard.asks_for_answer) instead of retrieving look-alike facts"},
    )
    broad: bool = field(
        default=True,
        metadata={"help": "answer a broad question (one naming a whole section: 'What did the examination show?') "
                          "with that section's facts (promed.patient.intent, promed.patient.categories)"},
    )
    max_broad_facts: int = field(
        default=DEFAULT_MAX_BROAD_FACTS,
        metadata={"help": "max facts revealed by one broad question (the section's first ones, in case order)"},
    )
    hint_bonus: float = field(
        default=DEFAULT_HINT_BONUS,
        metadata={"help": "similarity added to facts of the sections a specific question points to "
                          "('temperature' -> vital signs) before the threshold"},
    )

    embed_model: str = field(
        default="",
        metadata={"help": "directory of a fine-tuned MiniLM bi-encoder (benchmarks/train_patient_matcher.py --kind bi; "
                          "never downloaded) used instead of the shipped MiniLM for this patient's similarities; "
                          "'' = the shipped one"},
    )
    matcher: str = field(
        default="",
        metadata={"help": "directory of a trained (question, fact) cross-encoder (made by benchmarks/"
                          "train_patient_matcher.py; never downloaded) that decides which retrieved facts answer a "
                          "specific question; '' = off, the similarity rule alone decides"},
    )
    matcher_candidates: int = field(
        default=DEFAULT_MATCHER_CANDIDATES,
        metadata={"help": "facts proposed to the matcher per question: the best by similarity plus bonuses"},
    )
    matcher_floor: float = field(
        default=DEFAULT_MATCHER_FLOOR,
        metadata={"help": "min similarity (plus bonuses) for a fact to be proposed to the matcher"},
    )
    matcher_threshold: float = field(
        default=DEFAULT_MATCHER_THRESHOLD,
        metadata={"help": "min matcher score (probability, blended by matcher_weight) for a proposed fact to be "
                          "revealed"},
    )
    matcher_margin: float = field(
        default=DEFAULT_MATCHER_MARGIN,
        metadata={"help": "reveal only proposed facts within this matcher score of the best (1 disables)"},
    )
    matcher_weight: float = field(
        default=DEFAULT_MATCHER_WEIGHT,
        metadata={"help": "matcher score = weight * probability + (1 - weight) * (similarity plus bonuses); 1: the "
                          "matcher's probability alone"},
    )
    matcher_gate: bool = field(
        default=False,
        metadata={"help": "with a matcher: the similarity rule chooses as without it and the matcher only removes "
                          "chosen facts scoring below matcher_threshold (precision only)"},
    )

    def __post_init__(self) -> None:
        if self.matcher_candidates < 1:
            raise InputError(f"matcher_candidates must be >= 1, got {self.matcher_candidates}")
        if not 0.0 <= self.matcher_weight <= 1.0:
            raise InputError(f"matcher_weight must be in [0, 1], got {self.matcher_weight}")
        if self.max_facts < 1:
            raise InputError(f"max_facts must be >= 1, got {self.max_facts}")
        if self.max_broad_facts < 1:
            raise InputError(f"max_broad_facts must be >= 1, got {self.max_broad_facts}")


class FactPatient:
    """Embedding-retrieval patient; implements :class:`promed.types.Patient`.

    ``reply(cases, questions)`` returns one ``(text, revealed fact ids)`` per pair; ids are sorted.
    """

    name = "fact"

    def __init__(
        self,
        threshold: float = DEFAULT_THRESHOLD,
        max_facts: int = DEFAULT_MAX_FACTS,
        margin: float = DEFAULT_MARGIN,
        embedder: Embedder | None = None,
        first_person_keys: bool = True,
        *,
        config: FactPatientConfig | None = None,
        scorer: PairScorer | None = None,
    ):
        self.config = config or FactPatientConfig(threshold, max_facts, margin, first_person_keys)
        self._embedder = embedder
        self._scorer = scorer

    @classmethod
    def from_config(cls, config: FactPatientConfig, embedder: Embedder | None = None,
                    scorer: PairScorer | None = None) -> "FactPatient":
        return cls(embedder=embedder, config=config, scorer=scorer)

    @property
    def scorer(self) -> PairScorer | None:
        """The learned matcher's pair scorer; ``None`` when ``config.matcher`` is off (then a scorer passed in is
        ignored, so switching the matcher off gives the rule-only patient exactly)."""
        if not self.config.matcher:
            return None
        if self._scorer is None:
            self._scorer = default_scorer(self.config.matcher)
        return self._scorer

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = tuned_embedder(self.config.embed_model) if self.config.embed_model else \
                default_embedder()
        return self._embedder

    def similarities(self, cases: Sequence[Case], questions: Sequence[str]) -> list[np.ndarray]:
        """Per pair, the cosine similarity of the question to every fact of the case (shape ``(n_facts,)``)."""
        if len(cases) != len(questions):
            raise ValueError(f"{len(cases)} cases but {len(questions)} questions")
        cfg = self.config
        qtexts = [s.strip() for s in questions]
        q = self.embedder.encode(qtexts)
        qx = self.embedder.encode([expand_question(s) for s in qtexts]) if cfg.glossary else None
        keys = [[self.fact_keys(f.text) for f in c.facts] for c in cases]
        texts = list(dict.fromkeys(k for ks in keys for fk in ks for k in fk))
        row = {t: i for i, t in enumerate(texts)}
        fe = self.embedder.encode(texts)
        out = []
        for i, ks in enumerate(keys):
            if not ks:
                out.append(np.zeros(0, dtype=np.float32))
                continue
            idx = [row[k] for fk in ks for k in fk]
            owner = np.repeat(np.arange(len(ks)), [len(fk) for fk in ks])
            sim = fe[idx] @ q[i]
            if qx is not None:
                sim = np.maximum(sim, fe[idx] @ qx[i])
            best = np.full(len(ks), -np.inf, dtype=np.float32)
            np.maximum.at(best, owner, sim)
            out.append(best)
        return out

    def fact_keys(self, text: str) -> tuple[str, ...]:
        """The texts a fact is retrieved by (its similarity to a question is the best of theirs): its first-person
        rewrite, the fact as written (``both_keys``) and its clauses (``clause_keys``, :func:`clauses`)."""
        return _fact_keys(text, self.config.first_person_keys, self.config.both_keys, self.config.clause_keys)

    def select(self, case: Case, sims: np.ndarray, question: str | None = None) -> tuple[int, ...]:
        """The fact ids revealed for one pair given its similarity row (safe facts only), sorted.

        With ``question`` (and ``broad`` on) a broad question reveals its sections' facts (see
        :meth:`broad_ids`); a question with specific parts too ("Any allergies, and do you smoke?") adds what
        retrieval finds; otherwise, and when those sections are empty, the retrieval rule applies, with the
        :meth:`bonuses` added."""
        cfg = self.config
        safe = np.asarray(safe_fact_ids(case), dtype=int)
        if safe.size == 0:
            return ()
        broad: tuple[int, ...] = ()
        intent = read_question(question) if question is not None else None
        if intent is not None:
            broad = self._section_ids(case, intent, safe)
            if broad and not intent.mixed:
                return broad
            sims = sims + self.bonuses(case, question)
        k = cfg.max_facts
        if intent is not None and cfg.broad and intent.scoped:
            k = max(k, cfg.max_broad_facts)  # "What did the eye examination show?": a part of a section
        scorer = self.scorer if question is not None else None
        if scorer is not None and not cfg.matcher_gate:
            return tuple(sorted(set(broad) | set(self._matched(case, sims, safe, question, k, scorer))))
        s = sims[safe]
        best = float(s.max())
        keep = (s >= cfg.threshold) & (s >= best - cfg.margin)
        cand = safe[keep]
        if cand.size == 0:
            return broad
        order = np.argsort(-sims[cand], kind="stable")[:k]
        chosen = cand[order]
        if scorer is not None:  # gate: the rule chooses, the matcher removes what it scores below its threshold
            p = scorer.score([(question.strip(), case.facts[i].text) for i in chosen])
            chosen = chosen[p >= cfg.matcher_threshold]
        return tuple(sorted(set(broad) | {int(i) for i in chosen}))

    def matcher_candidates(self, sims: np.ndarray, safe: np.ndarray) -> np.ndarray:
        """The safe facts proposed to the matcher: the ``matcher_candidates`` best by ``sims`` (similarity plus
        bonuses) that reach ``matcher_floor``, best first."""
        cfg = self.config
        order = np.argsort(-sims[safe], kind="stable")[: cfg.matcher_candidates]
        cand = safe[order]
        return cand[sims[cand] >= cfg.matcher_floor]

    def _matched(self, case: Case, sims: np.ndarray, safe: np.ndarray, question: str, k: int,
                 scorer: PairScorer) -> list[int]:
        """The learned rule: of the proposed facts, those whose matcher score reaches ``matcher_threshold`` and is
        within ``matcher_margin`` of the best, at most ``k``, best first."""
        cfg = self.config
        cand = self.matcher_candidates(sims, safe)
        if cand.size == 0:
            return []
        p = scorer.score([(question.strip(), case.facts[i].text) for i in cand])
        score = cfg.matcher_weight * p + (1.0 - cfg.matcher_weight) * sims[cand]
        keep = (score >= cfg.matcher_threshold) & (score >= float(score.max()) - cfg.matcher_margin)
        order = np.argsort(-score[keep], kind="stable")[:k]
        return [int(i) for i in cand[keep][order]]

    def _score_candidates(self, cases: Sequence[Case], questions: Sequence[str], all_sims: Sequence[np.ndarray],
                          refused: Sequence[bool]) -> None:
        """One batched matcher pass over every pair :meth:`select` may ask about (it then reads the cache)."""
        pairs: list[tuple[str, str]] = []
        for case, question, sims, refuse in zip(cases, questions, all_sims, refused):
            safe = np.asarray(safe_fact_ids(case), dtype=int)
            if refuse or safe.size == 0:
                continue
            intent = read_question(question)
            if self._section_ids(case, intent, safe) and not intent.mixed:
                continue
            cand = self.matcher_candidates(sims + self.bonuses(case, question), safe)
            pairs += [(question.strip(), case.facts[i].text) for i in cand]
        if pairs and self.scorer is not None:
            self.scorer.score(pairs)

    def bonuses(self, case: Case, question: str) -> np.ndarray:
        """What is added to each fact's similarity for a specific question: ``hint_bonus`` for facts of the
        sections its words point to, ``term_bonus`` for facts containing one of its glossary terms."""
        cfg = self.config
        out = np.zeros(case.n_facts, dtype=np.float32)
        if cfg.hint_bonus:
            hints = read_question(question).hints
            if hints:
                out += cfg.hint_bonus * np.array([c in hints for c in case_categories(case)], dtype=np.float32)
        if cfg.term_bonus and cfg.glossary:
            pattern = term_pattern(question)
            if pattern is not None:
                out += cfg.term_bonus * np.array([bool(pattern.search(f.text)) for f in case.facts],
                                                 dtype=np.float32)
        return out

    def broad_ids(self, case: Case, question: str) -> tuple[int, ...]:
        """The facts a broad question reveals: the safe facts of the sections it names, in case order, at most
        ``max_broad_facts``; ``()`` for a specific question, when ``broad`` is off or the sections are empty."""
        return self._section_ids(case, read_question(question), safe_fact_ids(case))

    def _section_ids(self, case: Case, intent: QuestionIntent, safe: Sequence[int]) -> tuple[int, ...]:
        if not (self.config.broad and intent.broad):
            return ()
        cats = case_categories(case)
        ids = [int(i) for i in safe if cats[i] in intent.sections]
        return tuple(ids[: self.config.max_broad_facts])

    def reply(self, cases: Sequence[Case], questions: Sequence[str]) -> list[tuple[str, tuple[int, ...]]]:
        out: list[tuple[str, tuple[int, ...]]] = []
        all_sims = self.similarities(cases, questions)
        refused = [self.config.refuse_answer_questions and asks_for_answer(c, q) for c, q in zip(cases, questions)]
        if self.scorer is not None:
            self._score_candidates(cases, questions, all_sims, refused)
        for case, question, sims, refuse in zip(cases, questions, all_sims, refused):
            ids = () if refuse else self.select(case, sims, question)
            if not ids:
                out.append((REFUSAL, ()))
                continue
            out.append(guard_reply(case, " ".join(case.facts[i].text for i in ids), ids))
        return out


@functools.lru_cache(maxsize=131072)
def _fact_keys(text: str, first_person_keys: bool, both_keys: bool, clause_keys: bool) -> tuple[str, ...]:
    keys = []
    if first_person_keys:
        keys.append(first_person(text))
    if both_keys or not first_person_keys:
        keys.append(text.strip())
    if clause_keys:
        keys += clauses(text)
    return tuple(dict.fromkeys(keys))


_CLAUSE_SPLIT = re.compile(r";\s*|,\s*(?:and|or|but)?\s*|\s+(?:and|but|while|whereas)\s+")


def clauses(text: str, min_words: int = 2) -> list[str]:
    """The clauses or list items of a fact that names several findings, each of at least ``min_words`` words;
    ``[]`` for a fact that is one clause. Numbers with thousands separators ("15,000/mm3") are not split."""
    t = re.sub(r"(?<=\d),(?=\d{3})", "", text.strip().rstrip("."))
    parts = [p.strip() for p in _CLAUSE_SPLIT.split(t) if p and p.strip()]
    parts = [p for p in parts if len(p.split()) >= min_words]
    return parts if len(parts) >= 2 else []


# ---- first-person retrieval keys -------------------------------------------------------------------------------

_SUBJECT = (
    r"(?:the\s+)?(?:patient|pt|man|woman|boy|girl|child|infant|she|he)(?:'s)?"
)
_LEADS = [
    (rf"^{_SUBJECT}\s+(?:reports|complains\s+of|endorses|describes|notes|mentions)\s+(?:having\s+)?",
     "I have been having "),
    (rf"^{_SUBJECT}\s+(?:denies|denied)\s+(?:any\s+)?(?:history\s+of\s+)?", "I have not had any "),
    (rf"^{_SUBJECT}\s+has\s+not\b", "I have not"),
    (rf"^{_SUBJECT}\s+does\s+not\b", "I do not"),
    (rf"^{_SUBJECT}\s+did\s+not\b", "I did not"),
    (rf"^{_SUBJECT}\s+is\s+not\b", "I am not"),
    (rf"^{_SUBJECT}\s+has\s+had\b", "I have had"),
    (rf"^{_SUBJECT}\s+has\b", "I have"),
    (rf"^{_SUBJECT}\s+had\b", "I had"),
    (rf"^{_SUBJECT}\s+is\b", "I am"),
    (rf"^{_SUBJECT}\s+was\b", "I was"),
    (rf"^{_SUBJECT}\s+(\w+s)\b", None),  # "She smokes" -> "I smoke"
    (r"^(?:her|his|the\s+patient's|patient's)\s+", "My "),
]
_PRONOUNS = [
    (r"\b(?:her|his)\b", "my"),
    (r"\b(?:she|he)\b", "I"),
    (r"\bhim\b", "me"),
    (r"\b(?:herself|himself)\b", "myself"),
]


@functools.lru_cache(maxsize=65536)
def first_person(fact: str) -> str:
    """A rule-based first-person rewrite of a third-person atomic fact ("Patient reports X" -> "I have been
    having X", "Her temperature is ..." -> "My temperature is ...", pronoun swaps). Facts no rule fits come back
    with pronouns swapped only."""
    text = fact.strip()
    for pat, rep in _LEADS:
        m = re.match(pat, text, flags=re.IGNORECASE)
        if not m:
            continue
        if rep is None:
            rep = f"I {_base_form(m.group(1))}"
        text = rep.rstrip() + " " + text[m.end():].lstrip()
        break
    for pat, rep in _PRONOUNS:
        text = re.sub(pat, rep, text, flags=re.IGNORECASE)
    return text[:1].upper() + text[1:]


def _base_form(verb: str) -> str:
    """"smokes" -> "smoke", "washes" -> "wash", "carries" -> "carry"."""
    v = verb.lower()
    if v.endswith(("sses", "shes", "ches", "xes", "zes")):
        return v[:-2]
    if v.endswith("ies"):
        return v[:-3] + "y"
    return v[:-1]
