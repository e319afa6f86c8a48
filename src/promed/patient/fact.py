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

Batching: one ``Embedder.encode`` for all new question texts and one for all fact texts of the call; fact
embeddings are cached by text, so a case's facts are embedded once per process.

Defaults were tuned by ``benchmarks/patient_retrieval.py`` (F1 on SynthClinic question->fact labels with
off-topic, absent-finding and adversarial questions as negatives); see BENCHMARKS.md for the figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from promed.patient.embed import Embedder, default_embedder
from promed.patient.guard import REFUSAL, guard_reply, safe_fact_ids
from promed.types import Case

# Provisional defaults; to be tuned by benchmarks/patient_retrieval.py (max F1 on SynthClinic question labels).
DEFAULT_THRESHOLD = 0.5
DEFAULT_MARGIN = 0.1
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
    ):
        if max_facts < 1:
            raise ValueError(f"max_facts must be >= 1, got {max_facts}")
        self.config = FactPatientConfig(threshold=threshold, max_facts=max_facts, margin=margin)
        self._embedder = embedder

    @classmethod
    def from_config(cls, config: FactPatientConfig, embedder: Embedder | None = None) -> "FactPatient":
        return cls(config.threshold, config.max_facts, config.margin, embedder)

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
        texts = list(dict.fromkeys(f.text for c in cases for f in c.facts))
        row = {t: i for i, t in enumerate(texts)}
        fe = self.embedder.encode(texts)
        return [fe[[row[f.text] for f in c.facts]] @ q[i] if c.facts else np.zeros(0) for i, c in enumerate(cases)]

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
