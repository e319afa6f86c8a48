"""Mathematical properties of the Shapley estimators in promed.sig.shapley, on toy games."""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promed.sig.shapley import (
    CountingSetFunction,
    ExactShapley,
    KernelShapley,
    PermutationShapley,
    ReferenceShapley,
    get_estimator,
)
from promed.sig.shapley.surrogate import detect_link, fit_softmax_surrogate, surrogate_shapley
from promed.sig.value import keys_to_masks, masks_to_keys

SAMPLING = ["permutation", "kernel"]


def make(name: str):
    """The sampling estimators in their linear form (the kernel's surrogate control variate is fitted to the values,
    which makes it non-linear in v; it has its own tests below)."""
    return KernelShapley(surrogate="none") if name == "kernel" else get_estimator(name)


def table_game(table: np.ndarray):
    """A game given by its full value table (key bit i = player i)."""

    def f(masks: np.ndarray) -> np.ndarray:
        return table[masks_to_keys(masks)]

    return f


def smooth_game(n: int, seed: int):
    """Sigmoid of a random quadratic: interactions of every order, values in (0, 1) like a posterior."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    b = rng.normal(size=(n, n)) * 0.3

    def f(masks: np.ndarray) -> np.ndarray:
        m = np.asarray(masks, dtype=float)
        return 1 / (1 + np.exp(-(m @ a + np.einsum("ki,ij,kj->k", m, b, m)) / 3))

    return f


def brute_force(table: np.ndarray, n: int) -> np.ndarray:
    """Shapley values by averaging marginals over all n! orders (the definition)."""
    phi = np.zeros(n)
    perms = list(itertools.permutations(range(n)))
    for p in perms:
        key = 0
        for i in p:
            phi[i] += table[key | (1 << i)] - table[key]
            key |= 1 << i
    return phi / len(perms)


tables = st.integers(1, 6).flatmap(
    lambda n: st.tuples(
        st.just(n), st.lists(st.floats(-5, 5, allow_nan=False), min_size=2**n, max_size=2**n).map(np.array)
    )
)


# ---- exact -----------------------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(tables)
def test_exact_matches_definition_and_is_efficient(nt):
    n, table = nt
    res = ExactShapley().estimate(table_game(table), n, None, np.random.default_rng(0))
    np.testing.assert_allclose(res.values, brute_force(table, n), atol=1e-9)
    assert res.base == table[0] and res.full == table[-1]
    assert abs(res.efficiency_gap) < 1e-9
    assert res.n_evals == 2**n and np.all(res.stderr == 0)


def test_exact_symmetry_null_player_linearity():
    n = 5
    rng = np.random.default_rng(1)
    keys = np.arange(2**n)
    bits = (keys[:, None] >> np.arange(n)) & 1
    # players 0 and 1 symmetric, player 4 null
    v1 = np.sin(bits[:, 0] + bits[:, 1]) + 2 * bits[:, 2] * bits[:, 3] + 0.3 * bits[:, 2]
    v2 = rng.normal(size=2**n)
    ex = ExactShapley()
    p1 = ex.estimate(table_game(v1), n, None, rng).values
    p2 = ex.estimate(table_game(v2), n, None, rng).values
    p12 = ex.estimate(table_game(v1 + 3 * v2), n, None, rng).values
    assert p1[0] == pytest.approx(p1[1]) and p1[4] == pytest.approx(0, abs=1e-12)
    np.testing.assert_allclose(p12, p1 + 3 * p2, atol=1e-10)


SHAP_SCRIPT = """
import json, sys
import numpy as np
import shap

table = np.array(json.load(sys.stdin))
n = int(np.log2(len(table)))

def model(x):
    keys = (np.asarray(x) > 0.5).astype(np.int64) @ (1 << np.arange(n))
    return table[keys]

explainer = shap.explainers.Exact(model, shap.maskers.Independent(np.zeros((1, n)), max_samples=1))
out = explainer(np.ones((1, n)), silent=True)
print(json.dumps({"values": out.values[0].tolist(), "base": float(np.ravel(out.base_values)[0])}))
"""


def test_exact_agrees_with_shap_exact_explainer():
    """shap's Exact explainer on a model over 0/1 features, background = zeros, explaining x = ones.

    shap masks a feature by replacing it with the background value, so model(x masked by S) = v(S): its values
    are the game's Shapley values and its base value is v(empty). Run in a subprocess with numba's JIT off: the
    answer is the same and the test avoids ~20 s of one-off JIT compilation.
    """
    pytest.importorskip("shap")
    n = 5
    table = np.random.default_rng(3).random(2**n)
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    proc = subprocess.run([sys.executable, "-c", SHAP_SCRIPT], input=json.dumps(table.tolist()), env=env,
                          capture_output=True, text=True, timeout=120, check=True)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    ours = ExactShapley().estimate(table_game(table), n, None, np.random.default_rng(0))
    np.testing.assert_allclose(out["values"], ours.values, atol=1e-10)
    assert out["base"] == pytest.approx(ours.base)


def test_exact_refuses_small_budget_and_large_n():
    f = smooth_game(4, 0)
    with pytest.raises(ValueError):
        ExactShapley().estimate(f, 4, 15, np.random.default_rng(0))
    with pytest.raises(ValueError):
        ExactShapley(max_players=3).estimate(f, 4, None, np.random.default_rng(0))


def test_trivial_games():
    for name in ["exact", "reference", "permutation", "kernel"]:
        est = get_estimator(name)
        r1 = est.estimate(table_game(np.array([0.2, 0.7])), 1, None, np.random.default_rng(0))
        assert r1.values.tolist() == pytest.approx([0.5]) and r1.n_evals == 2
        r0 = est.estimate(table_game(np.array([0.2])), 0, None, np.random.default_rng(0))
        assert r0.values.shape == (0,) and r0.n_evals == 1


# ---- sampling estimators ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SAMPLING)
@settings(max_examples=25, deadline=None)
@given(nt=tables, seed=st.integers(0, 2**16))
def test_sampling_is_efficient_and_exact_with_full_budget(name, nt, seed):
    n, table = nt
    f = table_game(table)
    rng = np.random.default_rng(seed)
    budget = max(2 * n + 2, 4)
    res = get_estimator(name).estimate(f, n, budget, rng)
    assert abs(res.efficiency_gap) < 1e-8
    assert res.n_evals <= budget
    if name == "kernel":  # every coalition + exact kernel weights = exact Shapley values
        full = KernelShapley().estimate(f, n, 2**n, rng)
        np.testing.assert_allclose(full.values, brute_force(table, n), atol=1e-7)
        assert np.all(full.stderr == 0)


@pytest.mark.parametrize("name", SAMPLING)
def test_additive_game_is_recovered_exactly(name):
    n = 9
    a = np.random.default_rng(0).normal(size=n)

    def f(masks):
        return 0.3 + np.asarray(masks, float) @ a

    res = make(name).estimate(f, n, 3 * n, np.random.default_rng(1))
    np.testing.assert_allclose(res.values, a, atol=1e-9)


@pytest.mark.parametrize("name", SAMPLING)
def test_null_player_symmetry_linearity_under_a_seed(name):
    """Coalitions are drawn from the rng only (never from the values), so with a shared seed the estimators are
    linear in v; a null player gets exactly 0 from permutation sampling and ~0 from the regression."""
    n = 8
    g1, g2 = smooth_game(n, 5), smooth_game(n, 6)

    def null_last(masks):  # player n-1 never matters
        m = np.asarray(masks).copy()
        m[:, -1] = False
        return g1(m)

    est = make(name)
    r1 = est.estimate(null_last, n, 6 * n, np.random.default_rng(9))
    r2 = est.estimate(g2, n, 6 * n, np.random.default_rng(9))
    r12 = est.estimate(lambda m: null_last(m) - 2 * g2(m), n, 6 * n, np.random.default_rng(9))
    np.testing.assert_allclose(r12.values, r1.values - 2 * r2.values, atol=1e-10)
    assert abs(r1.values[-1]) < (1e-12 if name == "permutation" else 0.02)

    def sym(masks):  # players 0 and 1 interchangeable
        m = np.asarray(masks, float)
        return np.tanh(m[:, 0] + m[:, 1] + 0.5 * m[:, 2:].sum(1) * (m[:, 0] + m[:, 1]))

    errs = []
    for seed in range(20):
        r = est.estimate(sym, n, 8 * n, np.random.default_rng(seed))
        errs.append(r.values[0] - r.values[1])
    assert abs(np.mean(errs)) < 0.02  # symmetric in expectation


@pytest.mark.parametrize("name", SAMPLING)
def test_deterministic_under_seed_and_budget_respected(name):
    n = 12
    f = smooth_game(n, 2)
    est = get_estimator(name)
    for budget in [n + 1, 2 * n, 5 * n, 10 * n, 20 * n]:
        counted = CountingSetFunction(f, n)
        a = est.estimate(counted, n, budget, np.random.default_rng(7))
        b = est.estimate(f, n, budget, np.random.default_rng(7))
        np.testing.assert_array_equal(a.values, b.values)
        assert a.n_evals <= budget and counted.n_evals == a.n_evals
    with pytest.raises(ValueError):
        est.estimate(f, n, n, np.random.default_rng(0))


@pytest.mark.parametrize("name", SAMPLING)
def test_error_shrinks_with_budget_and_stderr_is_calibrated(name):
    n = 10
    f = smooth_game(n, 4)
    truth = ExactShapley().estimate(f, n, None, np.random.default_rng(0)).values
    est = make(name)
    mae = {}
    for budget in [4 * n, 20 * n]:
        runs = [est.estimate(f, n, budget, np.random.default_rng(s)) for s in range(30)]
        vals = np.array([r.values for r in runs])
        mae[budget] = np.abs(vals - truth).mean()
        emp = vals.std(axis=0).mean()
        reported = np.nanmean([r.stderr.mean() for r in runs])
        assert 0.4 * emp < reported < 2.5 * emp, (budget, emp, reported)
    assert mae[20 * n] < 0.6 * mae[4 * n]


# ---- the kernel's surrogate control variate -----------------------------------------------------------------


def naive_bayes_game(n: int, seed: int, n_options: int = 4, log: bool = False):
    """P(gold | S) of a naive-Bayes posterior over ``n_options`` options (SynthClinic's form of v)."""
    rng = np.random.default_rng(seed)
    ll = rng.normal(size=(n, n_options)) * 1.2
    prior = rng.normal(size=n_options) * 0.5
    gold = int(np.argmax(prior + ll.sum(0)))

    def f(masks):
        s = prior + np.asarray(masks, float) @ ll
        lp = s[:, gold] - np.logaddexp.reduce(s, axis=1)
        return lp if log else np.exp(lp)

    return f


def rel_error(res, truth):
    return np.abs(res.values - truth.values).mean() / abs(truth.full - truth.base)


@pytest.mark.parametrize("log", [False, True])
def test_surrogate_makes_in_family_games_nearly_exact(log):
    n = 12
    errs = {"none": [], "auto": []}
    for seed in range(6):
        f = naive_bayes_game(n, seed, log=log)
        truth = ExactShapley().estimate(f, n, None, np.random.default_rng(0))
        for mode in errs:
            res = KernelShapley(surrogate=mode, n_bootstrap=0).estimate(f, n, 8 * n, np.random.default_rng(seed))
            assert abs(res.efficiency_gap) < 1e-9 and res.n_evals <= 8 * n
            errs[mode].append(rel_error(res, truth))
    assert np.mean(errs["auto"]) < 1e-3 < np.mean(errs["none"])


def test_surrogate_does_not_hurt_out_of_family():
    """A sigmoid of a random quadratic (pairwise interactions): not a softmax of additive scores."""
    n = 10
    errs = {"none": [], "auto": []}
    for seed in range(8):
        f = smooth_game(n, seed)
        truth = ExactShapley().estimate(f, n, None, np.random.default_rng(0))
        for mode in errs:
            res = KernelShapley(surrogate=mode, n_bootstrap=0).estimate(f, n, 6 * n, np.random.default_rng(seed))
            errs[mode].append(rel_error(res, truth))
    assert np.mean(errs["auto"]) < 1.2 * np.mean(errs["none"])


def test_surrogate_fit_and_shapley():
    n = 9
    f = naive_bayes_game(n, 3)
    rng = np.random.default_rng(0)
    masks = keys_to_masks(rng.choice(2**n, 120, replace=False), n)
    g = fit_softmax_surrogate(masks, f(masks), 3, "prob", rng)
    test = keys_to_masks(np.arange(2**n), n)
    np.testing.assert_allclose(g(test), f(test), atol=1e-3)  # recovers the game everywhere, not just on the fit
    exact = surrogate_shapley(g, n, rng)
    truth = ExactShapley().estimate(g, n, None, rng).values
    np.testing.assert_allclose(exact, truth, atol=1e-12)
    sampled = surrogate_shapley(g, n, rng, exact_max=4, pairs=3000)  # the n > exact_max path
    np.testing.assert_allclose(sampled, truth, atol=3e-3)
    assert detect_link(np.array([0.0, 0.5, 1.0])) == "prob"
    assert detect_link(np.array([-3.0, -0.1, 0.0])) == "logprob"
    assert detect_link(np.array([-1.0, 2.0])) is None and detect_link(np.array([np.nan])) is None


# ---- reference -------------------------------------------------------------------------------------------------


def reference_transcription(f, n, perms, max_samples=50, min_samples=3, tol=1e-2):
    """A line-by-line transcription of the reference ``compute_equal_shapley_values`` loop over ``f``."""
    full_mask = np.ones((1, n), bool)
    v_empty = f(np.zeros((1, n), bool))[0]
    full_score = f(full_mask)[0]
    shapley_scores = np.zeros(n)
    for t in range(1, max_samples + 1):
        perm = perms[t - 1]
        shapley_scores_prev = shapley_scores.copy()
        v_prev = v_empty
        active = np.zeros(n, bool)
        for idx in perm:
            active[idx] = True
            v_j = f(active[None, :])[0]
            marginal = v_j - v_prev
            shapley_scores[idx] = (t - 1) / t * shapley_scores[idx] + (1 / t) * marginal
            v_prev = v_j
            if abs(v_j - full_score) < 1e-2:
                break
        if t >= min_samples and np.mean(np.abs(shapley_scores - shapley_scores_prev)) < tol:
            break
    return shapley_scores


@pytest.mark.parametrize("seed", range(5))
def test_reference_reproduces_the_reference_loop(seed):
    n = 9
    f = smooth_game(n, seed)
    perm_rng = np.random.default_rng(seed)
    perms = [perm_rng.permutation(n) for _ in range(50)]
    expected = reference_transcription(f, n, perms)
    res = ReferenceShapley().estimate(f, n, None, np.random.default_rng(seed))
    np.testing.assert_allclose(res.values, expected, atol=1e-12)
    assert np.all(np.isnan(res.stderr))
    assert res.n_queries >= res.n_evals >= 2


def test_reference_early_exit_leaves_unreached_players_untouched():
    """v jumps to v(all) as soon as player 0 joins: walks stop there and later players keep old estimates."""
    n = 4

    def f(masks):
        m = np.asarray(masks)
        return np.where(m[:, 0], 1.0, 0.1 * m[:, 1:].sum(1))

    res = ReferenceShapley().estimate(f, n, None, np.random.default_rng(0))
    assert res.values[0] > 0.5
    assert res.n_evals < 2**n


def test_get_estimator():
    assert isinstance(get_estimator("kernel", n_bootstrap=0), KernelShapley)
    assert isinstance(get_estimator("permutation"), PermutationShapley)
    assert get_estimator("reference", max_samples=10).max_samples == 10
    with pytest.raises(ValueError):
        get_estimator("nope")
    assert math.isclose(get_estimator("exact").estimate(smooth_game(3, 0), 3, None, np.random.default_rng(0))
                        .efficiency_gap, 0, abs_tol=1e-12)
