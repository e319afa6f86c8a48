"""Value functions v(S) (promed.sig.value) over toy scorers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promed.sig.shapley import ExactShapley
from promed.sig.value import ScorerValue, keys_to_masks, masks_to_keys, set_function
from promed.types import Case, Fact, Option, Query


class ToyScorer:
    """Softmax over options of summed per-fact scores; counts calls and queries."""

    id = "toy"

    def __init__(self, scores: np.ndarray, prior: np.ndarray | None = None):
        self.scores = scores  # (n_facts, n_options)
        self.prior = np.zeros(scores.shape[1]) if prior is None else prior
        self.calls = 0
        self.queries = 0

    def probs(self, queries):
        self.calls += 1
        self.queries += len(queries)
        out = []
        for q in queries:
            s = self.prior + sum((self.scores[f.id] for f in q.facts), np.zeros(self.scores.shape[1]))
            e = np.exp(s - s.max())
            out.append(e / e.sum())
        return out


def make_case(n: int = 4, answer: str = "B", cid: str = "c") -> Case:
    return Case(
        id=cid,
        initial="A 40-year-old with a cough.",
        facts=tuple(Fact(i, f"fact {i}") for i in range(n)),
        question="Diagnosis?",
        options=(Option("A", "a"), Option("B", "b"), Option("C", "c")),
        answer=answer,
    )


def toy(n: int = 4, seed: int = 0) -> ToyScorer:
    return ToyScorer(np.random.default_rng(seed).normal(size=(n, 3)))


def test_values_are_gold_probabilities_and_logs_with_floor():
    case = make_case()
    sc = toy()
    v = ScorerValue(sc)
    subsets = [frozenset(), frozenset({0, 2}), frozenset({1, 2, 3})]
    expected = [sc.probs([case.query(sorted(s))])[0][case.gold_index] for s in subsets]
    np.testing.assert_allclose(v.v(case, subsets), expected)
    lv = ScorerValue(sc, log=True)
    np.testing.assert_allclose(lv.v(case, subsets), np.log(expected))
    assert v.id == "toy:p" and lv.id == "toy:logp"
    # a scorer certain of a wrong option: the log variant is clipped at log(floor), not -inf
    hard = ToyScorer(np.zeros((4, 3)), prior=np.array([0.0, -1000.0, 0.0]))
    assert ScorerValue(hard, log=True, floor=1e-6).v(case, [frozenset()])[0] == pytest.approx(math.log(1e-6))


def test_one_scorer_call_per_batch_and_memoised():
    case = make_case()
    sc = toy()
    v = ScorerValue(sc)
    subsets = [frozenset({0}), frozenset({1}), frozenset({0}), frozenset({0, 1})]
    first = v.v(case, subsets)
    assert sc.calls == 1 and sc.queries == 3  # duplicates inside a batch are scored once
    again = v.v(case, subsets + [frozenset({3})])
    assert sc.calls == 2 and sc.queries == 4  # only the new subset is scored
    np.testing.assert_array_equal(again[:4], first)
    v.v(case, subsets)
    assert sc.calls == 2 and v.n_scored == 4
    v.v(case, [])
    assert sc.calls == 2


def test_memo_is_per_case_content_and_bounded():
    sc = toy()
    v = ScorerValue(sc, max_cases=2)
    c1, c2, c3 = make_case(answer="A", cid="1"), make_case(answer="B", cid="2"), make_case(answer="C", cid="3")
    s = [frozenset({1})]
    vals = [v.v(c, s)[0] for c in (c1, c2, c3)]
    assert sc.calls == 3 and len(set(vals)) == 3  # different gold options, different values
    v.v(c3, s)
    v.v(c2, s)
    assert sc.calls == 3
    v.v(c1, s)  # evicted (least recently used), scored again
    assert sc.calls == 4
    # the same content under a new object hits the memo
    v.v(make_case(answer="A", cid="1"), s)
    assert sc.calls == 4


def test_queries_sort_facts_and_reject_bad_ids():
    case = make_case()
    seen: list[Query] = []

    class Spy(ToyScorer):
        def probs(self, queries):
            seen.extend(queries)
            return super().probs(queries)

    v = ScorerValue(Spy(np.zeros((4, 3))))
    v.v(case, [frozenset({3, 0, 2})])
    assert [f.id for f in seen[0].facts] == [0, 2, 3]
    with pytest.raises(ValueError):
        v.v(case, [frozenset({4})])
    with pytest.raises(ValueError):
        ScorerValue(toy(), floor=0.0)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 12), st.integers(0, 2**31 - 1))
def test_masks_keys_roundtrip(n, seed):
    masks = np.random.default_rng(seed).random((20, n)) < 0.5
    np.testing.assert_array_equal(keys_to_masks(masks_to_keys(masks), n), masks)


def test_set_function_counts_distinct_and_matches_value():
    n = 5
    case = make_case(n)
    sc = toy(n)
    value = ScorerValue(sc)
    f = set_function(value, case)
    masks = np.array([[1, 0, 0, 0, 0], [0, 0, 0, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 1]], dtype=bool)
    out = f(masks)
    assert f.n_evals == 3 and f.n_calls == 4 and sc.calls == 1
    np.testing.assert_allclose(out, value.v(case, [frozenset({0}), frozenset(), frozenset({0}), frozenset(range(5))]))
    f(masks[:2])
    assert f.n_evals == 3 and f.n_calls == 6
    np.testing.assert_allclose(f(masks[0]), out[:1])  # a single mask row is accepted
    with pytest.raises(ValueError):
        f(np.zeros((1, 4), bool))


def test_exact_shapley_through_the_value_is_efficient():
    n = 6
    case = make_case(n)
    f = set_function(ScorerValue(toy(n, seed=3)), case)
    res = ExactShapley().estimate(f, n, None, np.random.default_rng(0))
    assert res.n_evals == 2**n == f.n_evals
    assert res.values.sum() == pytest.approx(res.full - res.base)
    assert 0.0 <= res.base <= 1.0 and 0.0 <= res.full <= 1.0


def test_subset_probs_fast_path_is_used_and_agrees():
    n = 5
    case = make_case(n)
    slow = toy(n, seed=4)

    class Fast(ToyScorer):
        def __init__(self, scores):
            super().__init__(scores)
            self.fast_calls = 0

        def subset_probs(self, case, masks):
            self.fast_calls += 1
            s = np.asarray(masks, float) @ self.scores + self.prior
            e = np.exp(s - s.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)

    fast = Fast(slow.scores)
    subsets = [frozenset(np.flatnonzero(m).tolist()) for m in keys_to_masks(np.arange(2**n), n)]
    a = ScorerValue(fast).v(case, subsets)
    b = ScorerValue(slow).v(case, subsets)
    np.testing.assert_allclose(a, b, atol=1e-12)
    assert fast.fast_calls == 1 and fast.calls == 0

    # set functions hand their masks to v_masks (no frozensets): the same values, p and log p, and the same
    # exact Shapley values as through the memo path; a scorer without subset_probs has no mask path
    masks = keys_to_masks(np.arange(2**n), n)
    for log in (False, True):
        value = ScorerValue(Fast(slow.scores), log=log)
        np.testing.assert_allclose(value.v_masks(case, masks), ScorerValue(slow, log=log).v(case, subsets),
                                   atol=1e-12)
        assert value.n_scored == 2**n and value.scorer.calls == 0
        via_masks = ExactShapley().estimate(set_function(value, case), n, None, np.random.default_rng(0))
        via_memo = ExactShapley().estimate(set_function(ScorerValue(slow, log=log), case), n, None,
                                           np.random.default_rng(0))
        np.testing.assert_allclose(via_masks.values, via_memo.values, atol=1e-12)
        assert value.scorer.fast_calls == 2 and value.scorer.calls == 0
    assert ScorerValue(slow).v_masks(case, masks) is None
