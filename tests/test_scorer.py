"""LLMScorer: the Scorer protocol over an LLM backend, prompt order for prefix reuse."""

from __future__ import annotations

import numpy as np

from promed.llm import load_llm
from promed.llm.scorer import SCORER_PROMPT, LLMScorer, render_query
from promed.types import Case, Fact, Option, Scorer


def _case() -> Case:
    return Case(
        id="c1",
        initial="A 45-year-old man comes to the emergency department because of chest pain.",
        facts=tuple(Fact(i, t) for i, t in enumerate([
            "The pain started two hours ago.",
            "The pain radiates to the left arm.",
            "He smokes one pack of cigarettes daily.",
        ])),
        question="Which of the following is the most likely diagnosis?",
        options=(Option("A", "Asthma"), Option("B", "Pneumonia"), Option("C", "Myocardial infarction"),
                 Option("D", "Appendicitis")),
        answer="C",
    )


class Recorder:
    """A fake LLM that records the calls it gets (the real backends are tested in their own files)."""

    name = "rec"

    def __init__(self):
        self.calls = []

    def generate(self, chats, sampling):
        return ["" for _ in chats]

    def score_options(self, prompts, options):
        self.calls.append((list(prompts), [list(o) for o in options]))
        return [np.full(len(options[0] if len(options) == 1 else options[i]), 1.0 / 4) for i in range(len(prompts))]


def test_ids_and_protocol():
    rec = Recorder()
    s, slog = LLMScorer(rec), LLMScorer(rec, log=True)
    assert s.id == "llm:rec" and slog.id == "llm:rec:log"
    assert isinstance(s, object) and hasattr(s, "probs")
    _: Scorer = s  # structural typing


def test_prompt_order_shared_part_first():
    case = _case()
    full = render_query(case.query([0, 1, 2]))
    empty = render_query(case.query([]))
    two = render_query(case.query([2, 0]))
    shared = empty[: -len("Answer:")]
    assert full.startswith(shared) and two.startswith(shared)  # subsets differ only after the shared part
    assert full.endswith("Answer:") and empty.endswith("Answer:")
    # facts one per line in the query's (sorted) order, options as "X. text" lines, question before the facts
    assert two[len(shared):] == "The pain started two hours ago.\nHe smokes one pack of cigarettes daily.\nAnswer:"
    assert "C. Myocardial infarction\n" in full and full.index("Question:") < full.index(case.initial)
    assert "{" not in full and SCORER_PROMPT.endswith("Answer:")


def test_one_batched_call():
    rec = Recorder()
    case = _case()
    queries = [case.query(s) for s in ([], [0], [1, 2], [0, 1, 2])]
    probs = LLMScorer(rec).probs(queries)
    assert len(rec.calls) == 1
    prompts, options = rec.calls[0]
    assert len(prompts) == 4 and options == [[" A", " B", " C", " D"]]
    assert all(p.shape == (4,) for p in probs)
    assert LLMScorer(rec).probs([]) == []


def test_with_tiny_backend():
    llm = load_llm("tiny")
    case = _case()
    queries = [case.query(s) for s in ([], [0], [1], [0, 1, 2])]
    scorer = LLMScorer(llm)
    probs = scorer.probs(queries)
    for p in probs:
        assert p.shape == (4,) and abs(p.sum() - 1) < 1e-9 and np.all(p > 0)
    logp = scorer.log_probs(queries)
    np.testing.assert_allclose(np.exp(logp), probs, atol=1e-12)
    # same numbers as scoring each query alone
    alone = [scorer.probs([q])[0] for q in queries]
    np.testing.assert_allclose(np.array(probs), np.array(alone), atol=1e-4)


def test_over_long_prompt_is_an_error_naming_the_case():
    """A fact longer than the model's context is an input error naming the case, never a giant allocation."""
    from dataclasses import replace

    import pytest

    from promed.llm import load_llm
    from promed.llm.base import ContextLengthError
    from promed.llm.scorer import LLMScorer
    from promed.types import Fact
    from tests.conftest import make_case

    case = make_case("huge")
    big = replace(case, facts=case.facts[:3] + (Fact(3, "cough " * 6000),))
    with pytest.raises(ContextLengthError, match=r"case 'huge'.*context of 4,096"):
        LLMScorer(load_llm("tiny")).probs([big.query([0]), big.query([3])])
