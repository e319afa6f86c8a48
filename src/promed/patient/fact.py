"""FactPatient: replies with the hidden atomic facts that answer the doctor's question, verbatim.

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

Retrieval keys (a deviation from plain question-vs-fact similarity): each fact is embedded through a rule-based
first-person rewrite (:func:`first_person`: "She denies fever." -> "I have not had any fever.", "He has never
smoked." -> "I have never smoked."), because the doctor asks in the second person ("Do you smoke?") and MiniLM
scores "you"/"I" pairs markedly higher than "you"/"he" pairs. Only the key changes: the reply is still the
original fact text. On the benchmark's held-out SynthClinic questions this raised F1 from 0.74 to 0.84
(MediQ hand set: 0.73 to 0.75)
(``first_person_keys=False`` restores plain keys).

Batching: one ``Embedder.encode`` for all new question texts and one for all fact keys of the call; embeddings
are cached by text, so a case's facts are embedded once per process.

Defaults were tuned by ``benchmarks/patient_retrieval.py`` (F1 on SynthClinic question->fact labels with
off-topic, absent-finding and adversarial questions as negatives, plus a small hand-labelled MediQ question set).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from promed.patient.embed import Embedder, default_embedder
from promed.patient.guard import REFUSAL, guard_reply, safe_fact_ids
from promed.types import Case

# Tuned by benchmarks/patient_retrieval.py: max of the mean micro-F1 on SynthClinic val questions and 65 hand-written
# MediQ questions, at max_facts 3 (grid: threshold 0.30-0.80 step 0.025 x margin). Held-out SynthClinic test:
# P 0.790 R 0.903 F1 0.843; MediQ hand set (in-sample): P 0.950 R 0.623 F1 0.752. SynthClinic alone would pick
# ~0.575 (its questions share the facts' key words); real questions need a lower threshold.
DEFAULT_THRESHOLD = 0.525
DEFAULT_MARGIN = 0.025
DEFAULT_MAX_FACTS = 3


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
    ):
        if max_facts < 1:
            raise ValueError(f"max_facts must be >= 1, got {max_facts}")
        self.config = FactPatientConfig(threshold, max_facts, margin, first_person_keys)
        self._embedder = embedder

    @classmethod
    def from_config(cls, config: FactPatientConfig, embedder: Embedder | None = None) -> "FactPatient":
        return cls(config.threshold, config.max_facts, config.margin, embedder, config.first_person_keys)

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = default_embedder()
        return self._embedder

    def similarities(self, cases: Sequence[Case], questions: Sequence[str]) -> list[np.ndarray]:
        """Per pair, the cosine similarity of the question to every fact of the case (shape ``(n_facts,)``)."""
        if len(cases) != len(questions):
            raise ValueError(f"{len(cases)} cases but {len(questions)} questions")
        q = self.embedder.encode([s.strip() for s in questions])
        key = first_person if self.config.first_person_keys else str.strip
        keys = [[key(f.text) for f in c.facts] for c in cases]
        texts = list(dict.fromkeys(k for ks in keys for k in ks))
        row = {t: i for i, t in enumerate(texts)}
        fe = self.embedder.encode(texts)
        return [fe[[row[k] for k in ks]] @ q[i] if ks else np.zeros(0) for i, ks in enumerate(keys)]

    def select(self, case: Case, sims: np.ndarray) -> tuple[int, ...]:
        """The fact ids revealed for one pair given its similarity row (safe facts only), sorted."""
        cfg = self.config
        safe = np.asarray(safe_fact_ids(case), dtype=int)
        if safe.size == 0:
            return ()
        s = sims[safe]
        best = float(s.max())
        keep = (s >= cfg.threshold) & (s >= best - cfg.margin)
        cand = safe[keep]
        if cand.size == 0:
            return ()
        order = np.argsort(-sims[cand], kind="stable")[: cfg.max_facts]
        return tuple(sorted(int(i) for i in cand[order]))

    def reply(self, cases: Sequence[Case], questions: Sequence[str]) -> list[tuple[str, tuple[int, ...]]]:
        out: list[tuple[str, tuple[int, ...]]] = []
        for case, sims in zip(cases, self.similarities(cases, questions)):
            ids = self.select(case, sims)
            if not ids:
                out.append((REFUSAL, ()))
                continue
            out.append(guard_reply(case, " ".join(case.facts[i].text for i in ids), ids))
        return out


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
