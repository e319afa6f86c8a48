"""LLMScorer: any LLM backend as a :class:`promed.types.Scorer` (probabilities over a query's options).

For each :class:`~promed.types.Query` it writes one prompt (:data:`SCORER_PROMPT`) and asks the backend for the
probability of each option letter (``" A"``, ``" B"``, ...) as the continuation of the prompt, normalised over
the letters - the answer is scored *after* the prompt, as the SIG definition requires. All queries go to the
backend in one batched ``score_options`` call.

Prompt order is chosen for prefix reuse: everything shared by every fact subset of a case (instruction, question,
options, initial information) comes first, then the subset's facts (one per line, in the query's order), then
the answer cue. The backend can then run the shared part once for all subsets of a case.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from promed.llm.base import LLM, ContextLengthError
from promed.types import Query

SCORER_PROMPT = (
    "The following is a multiple-choice question about a patient. Read the question, the options and what is "
    "known about the patient, then give the letter of the correct option.\n\n"
    "Question: {question}\n"
    "{options}\n\n"
    "Patient information:\n"
    "{initial}\n"
    "{facts}"
    "Answer:"
)
"""The scorer's prompt. ``{options}`` is one ``"<letter>. <text>"`` line per option; ``{facts}`` is one line per
fact of the query (each ending with a newline; empty for the empty subset). The letter is scored right after
``Answer:`` as ``" <letter>"``."""


def render_query(query: Query) -> str:
    """The scorer prompt for ``query`` (see :data:`SCORER_PROMPT`)."""
    return SCORER_PROMPT.format(
        question=query.question.strip(),
        options="\n".join(f"{o.letter}. {o.text.strip()}" for o in query.options),
        initial=query.initial.strip(),
        facts="".join(f"{f.text.strip()}\n" for f in query.facts),
    )


class LLMScorer:
    """A :class:`promed.types.Scorer` backed by an LLM's ``score_options``.

    Args:
        llm: any backend of :class:`promed.llm.base.LLM`.
        log: marks the log-probability variant of the value function (a config switch of the SIG). It only
            changes ``id`` (``llm:<name>:log``), so that caches keep the two variants apart; ``probs`` always
            returns probabilities and :meth:`log_probs` their logarithms.
    """

    def __init__(self, llm: LLM, log: bool = False):
        self.llm = llm
        self.log = log
        self.id = f"llm:{llm.name}" + (":log" if log else "")

    def __repr__(self) -> str:
        return f"LLMScorer(id={self.id!r})"

    def probs(self, queries: Sequence[Query]) -> list[np.ndarray]:
        """Probabilities over each query's options (rows sum to 1), from one batched backend call."""
        if not queries:
            return []
        prompts = [render_query(q) for q in queries]
        letters = [tuple(f" {letter}" for letter in q.letters) for q in queries]
        options = [list(letters[0])] if len(set(letters)) == 1 else [list(ls) for ls in letters]
        try:
            return [np.asarray(p, dtype=float) for p in self.llm.score_options(prompts, options)]
        except ContextLengthError as err:
            q = queries[err.index] if 0 <= err.index < len(queries) else None
            where = f"case {q.case_id!r}: " if q is not None and q.case_id else ""
            raise ContextLengthError(f"{where}the scorer prompt has {err.length:,} tokens, more than {self.llm.name}'s "
                                     f"context of {err.limit:,} (a fact or the initial statement is too long)",
                                     err.index, err.length, err.limit) from None

    def log_probs(self, queries: Sequence[Query]) -> list[np.ndarray]:
        """Natural logarithms of :meth:`probs` (floored at 1e-300 to stay finite)."""
        return [np.log(np.maximum(p, 1e-300)) for p in self.probs(queries)]
