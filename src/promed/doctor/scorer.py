"""A doctor as its own scorer: v(S) from the doctor's consultation prompt and its answer turns.

:class:`promed.llm.scorer.LLMScorer` asks a model for an option *letter* after a generic multiple-choice prompt,
which suits instruction models. The pretrained SynthClinic doctor (:mod:`promed.train.pretrain`) has only ever seen
consultations (:func:`promed.doctor.policy.view_to_chat`) and answers by naming the diagnosis
(``ANSWER: <option text>``), so a prompt it never saw would measure nothing. :class:`DoctorScorer` asks it the way
it answers: the query becomes the consultation the doctor would be shown with the query's facts known and no
questions left, and each option's answer turn (:func:`promed.doctor.actions.answer_turn` in the doctor's answer
format) is scored after that prompt with the backend's batched ``score_options``, normalised over the options.
That is the SIG definition's v(S) (the answer scored after the prompt), on the doctor's own terms.

Its ``id`` (``doctor:<model>:<format>``) keeps its Shapley cache entries apart from ``LLMScorer``'s.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from promed.doctor.actions import ANSWER_FORMATS, answer_turn
from promed.doctor.policy import view_to_chat
from promed.errors import InputError
from promed.llm.base import LLM
from promed.types import DoctorView, Query

SPEC_PREFIX = "doctor:"
"""``--scorer doctor:<model spec>``: :class:`DoctorScorer` on that model (e.g. ``doctor:hf:runs/pretrain``)."""


def query_view(query: Query, questions_left: int = 0) -> DoctorView:
    """The consultation state a doctor would see for ``query``: its facts known up front, no dialogue."""
    return DoctorView(case_id=query.case_id, initial=query.initial, question=query.question, options=query.options,
                      turns=(), known_facts=tuple(sorted(query.facts, key=lambda f: f.id)),
                      questions_left=questions_left, initial_findings=query.initial_findings)


class DoctorScorer:
    """A :class:`promed.types.Scorer` that scores a doctor's answer turns after its own consultation prompt.

    Args:
        llm: the doctor's backend (any :class:`promed.llm.base.LLM`).
        answer_format: how the doctor writes its answer (:data:`promed.doctor.actions.ANSWER_FORMATS`; the
            pretrained SynthClinic doctor: ``name``).
        questions_left: the question budget shown in the prompt (0: "no questions left", as a reactive answer).
    """

    def __init__(self, llm: LLM, answer_format: str = "name", questions_left: int = 0):
        if not callable(getattr(llm, "render", None)):
            raise InputError(f"{llm.name}: a doctor scorer needs a backend that renders chats into prompts (hf:, "
                             "gguf:, tiny); an OpenAI-compatible server scores plain prompts only")
        if answer_format not in ANSWER_FORMATS:
            raise InputError(f"answer_format must be one of {', '.join(ANSWER_FORMATS)}, got {answer_format!r}")
        self.llm = llm
        self.answer_format = answer_format
        self.questions_left = questions_left
        self.id = f"doctor:{llm.name}:{answer_format}"

    def __repr__(self) -> str:
        return f"DoctorScorer(id={self.id!r})"

    def probs(self, queries: Sequence[Query]) -> list[np.ndarray]:
        """Probabilities over each query's options (rows sum to 1), from one batched backend call."""
        if not queries:
            return []
        prompts = [self.llm.render(view_to_chat(query_view(q, self.questions_left))) for q in queries]
        options = [[answer_turn(q.options, o.letter, self.answer_format) for o in q.options] for q in queries]
        return [np.asarray(p, dtype=float) for p in self.llm.score_options(prompts, options)]

    def log_probs(self, queries: Sequence[Query]) -> list[np.ndarray]:
        """Natural logarithms of :meth:`probs` (floored at 1e-300 to stay finite)."""
        return [np.log(np.maximum(p, 1e-300)) for p in self.probs(queries)]
