"""Properties of the SIG reward (promed.sig.reward)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promed.sig.reward import SigConfig, annotate, importance_weights, new_facts, sig_of_turns
from promed.types import Transcript, Turn

phis = st.lists(st.floats(-3, 3, allow_nan=False), min_size=1, max_size=12).map(np.array)


@settings(max_examples=60, deadline=None)
@given(phi=phis, weighting=st.sampled_from(["softmax", "positive"]), temp=st.floats(0.05, 10))
def test_weights_are_a_distribution_and_keep_the_order(phi, weighting, temp):
    w = importance_weights(phi, weighting, temp)
    assert w.shape == phi.shape and np.all(w >= 0) and w.sum() == pytest.approx(1.0)
    order = np.argsort(phi, kind="stable")
    assert np.all(np.diff(w[order]) >= -1e-12)  # monotone in phi


def test_weights_reference_behaviour_and_fallbacks():
    phi = np.array([0.3, -0.1, 0.0])
    e = np.exp(phi / 2.0)
    np.testing.assert_allclose(importance_weights(phi), e / e.sum())  # softmax(phi / 2), the reference default
    np.testing.assert_allclose(importance_weights(phi + 100), importance_weights(phi))  # shift-invariant
    np.testing.assert_allclose(importance_weights(phi, "positive"), [1, 0, 0])
    np.testing.assert_allclose(importance_weights(-np.abs(phi), "positive"), [1 / 3] * 3)  # uniform fallback
    assert importance_weights(np.zeros(0)).shape == (0,)
    assert importance_weights(np.array([1e6, -1e6])).tolist() == pytest.approx([1.0, 0.0])  # no overflow
    with pytest.raises(ValueError):
        importance_weights(np.array([np.nan, 1.0]))
    with pytest.raises(ValueError):
        importance_weights(phi, "bogus")  # type: ignore[arg-type]


def test_new_facts():
    assert new_facts([(2, 0), (0,), (), (1, 2, 1), (3,)]) == [(0, 2), (), (), (1,), (3,)]
    assert new_facts([]) == []


turn_lists = st.integers(1, 10).flatmap(
    lambda n: st.tuples(
        st.just(n),
        st.lists(st.lists(st.integers(0, n - 1), max_size=4), max_size=8),
        st.lists(st.floats(0.01, 5), min_size=n, max_size=n).map(lambda x: np.array(x) / np.sum(x)),
        st.floats(0, 1),
    )
)


@settings(max_examples=100, deadline=None)
@given(turn_lists, st.randoms(use_true_random=False))
def test_sig_totals_order_free_and_zero_for_repeats(args, rnd):
    n, turns, w, lam = args
    sig = sig_of_turns(turns, w, n, lam)
    assert sig.shape == (len(turns),) and np.all(sig >= 0)
    revealed = sorted({i for t in turns for i in t})
    expected = len(revealed) * (1 - lam) / n + lam * w[revealed].sum()
    assert sig.sum() == pytest.approx(expected)
    # any order of the same turns gives the same total
    shuffled = list(turns)
    rnd.shuffle(shuffled)
    assert sig_of_turns(shuffled, w, n, lam).sum() == pytest.approx(expected)
    # passing the already-new lists gives the same per-turn values (idempotent)
    np.testing.assert_allclose(sig_of_turns(new_facts(turns), w, n, lam), sig)
    # a turn that repeats only known facts earns exactly 0
    again = sig_of_turns(list(turns) + [revealed], w, n, lam)
    assert again[-1] == 0.0


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 12), st.floats(0, 1), st.randoms(use_true_random=False))
def test_revealing_every_fact_earns_exactly_one(n, lam, rnd):
    w = importance_weights(np.array([rnd.uniform(-1, 1) for _ in range(n)]))
    ids = list(range(n))
    rnd.shuffle(ids)
    cuts = sorted(rnd.sample(range(n + 1), k=min(3, n + 1)))
    turns = [ids[a:b] for a, b in zip([0] + cuts, cuts + [n])]
    assert sig_of_turns(turns, w, n, lam).sum() == pytest.approx(1.0)


def test_sig_lam_extremes_and_validation():
    w = np.array([0.7, 0.2, 0.1])
    np.testing.assert_allclose(sig_of_turns([(0,), (1, 2)], w, 3, 0.0), [1 / 3, 2 / 3])  # amount only
    np.testing.assert_allclose(sig_of_turns([(0,), (1, 2)], w, 3, 1.0), [0.7, 0.3])  # importance only
    assert sig_of_turns([(), ()], np.zeros(0), 0, 0.5).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError):
        sig_of_turns([(3,)], w, 3, 0.5)
    with pytest.raises(ValueError):
        sig_of_turns([(0,)], w, 4, 0.5)
    with pytest.raises(ValueError):
        sig_of_turns([(0,)], w, 3, 1.5)
    with pytest.raises(ValueError):
        SigConfig(lam=-0.1)
    with pytest.raises(ValueError):
        SigConfig(weighting="z")  # type: ignore[arg-type]


def test_annotate_fills_new_sig_weights():
    cfg = SigConfig(lam=0.5)
    w = np.array([0.5, 0.3, 0.2])
    tr = Transcript(
        case_id="c1",
        turns=(
            Turn("q1", "r1", revealed=(1,), new=(0, 1, 2)),  # a wrong `new` is recomputed, not trusted
            Turn("q2", "r2", revealed=(1, 2)),
            Turn("q3", "r3", revealed=()),
            Turn("q4", "r4", revealed=(0,), raw="ASK: q4?"),
        ),
        answer="A",
    )
    out = annotate(tr, w, 3, cfg)
    assert [t.new for t in out.turns] == [(1,), (2,), (), (0,)]
    expected = [1 / 6 + 0.15, 1 / 6 + 0.1, 0.0, 1 / 6 + 0.25]
    assert [t.sig for t in out.turns] == pytest.approx(expected)
    assert [t.weights for t in out.turns] == [(0.3,), (0.2,), (), (0.5,)]
    assert sum(t.sig for t in out.turns) == pytest.approx(1.0)
    assert out.turns[3].raw == "ASK: q4?" and out.answer == "A" and out.case_id == "c1"
    assert tr.turns[0].sig is None  # input untouched (frozen)
