"""SynthClinic: knowledge base, generator (determinism, splits, calibration), exact posterior, questions."""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import replace

import numpy as np
import pytest

from promed.data.synthclinic import (
    BayesScorer,
    GeneratorConfig,
    candidate_questions,
    fact_for_question,
    fact_text,
    finding_of_question,
    generate_cases,
    gold_disease,
    model,
    question_for,
    question_for_fact,
)
from promed.data.synthclinic import kb
from promed.data.synthclinic.generator import pool
from promed.data.synthclinic.posterior import initial_logits, parse_initial
from promed.types import Fact, Finding, Option, Query


@pytest.fixture(scope="module")
def test200():
    return generate_cases("test", 200)


@pytest.fixture(scope="module")
def scorer():
    return BayesScorer()


# ---- knowledge base ----------------------------------------------------------------------------------------------


def test_kb_size_and_shape():
    assert len(kb.DISEASES) >= 30
    assert len({d.specialty for d in kb.DISEASES}) >= 5
    assert len(kb.FINDINGS) >= 100
    assert {f.category for f in kb.FINDINGS} == set(kb.CATEGORIES)
    m = model()
    assert m.lik.shape == (len(kb.DISEASES), len(kb.FINDINGS))
    assert ((m.lik > 0) & (m.lik < 1)).all()
    for f in kb.FINDINGS:
        for sex in (0, 1):
            for present in (True, False):
                text = fact_text(f.code, present, sex)
                assert "{" not in text and text.endswith(".")
        assert f.question.endswith("?")
    # every disease can present with some chief complaint, and complaint priors are normalised
    pcc = np.exp(m.log_cc)
    assert np.allclose(pcc.sum(0), 1.0)


def test_questions_are_a_bijection():
    for f in kb.FINDINGS:
        assert finding_of_question(question_for(f.code)) == f.code
        assert finding_of_question("  ASK: " + question_for(f.code).upper() + " ") == f.code
    assert finding_of_question("How are you today?") is None


# ---- generator ---------------------------------------------------------------------------------------------------


def test_cases_are_well_formed(test200):
    m = model()
    for i, c in enumerate(test200):
        assert c.id == f"sc-test-{i:05d}" and c.source == "synthclinic"
        assert re.fullmatch(r"An? \d+-year-old (woman|man) presents with [a-z ]+\.", c.initial)
        assert c.letters == ("A", "B", "C", "D") and c.answer in c.letters
        assert len({o.key for o in c.options}) == 4 and all(o.key in m.disease_index for o in c.options)
        assert [f.id for f in c.facts] == list(range(c.n_facts))
        codes = [f.finding.code for f in c.facts]
        assert len(set(codes)) == len(codes)
        init = parse_initial(c.initial_findings)
        assert init.cc is not None and m.finding_codes[init.cc] not in codes
        assert kb.FINDINGS[init.cc].complaint in c.initial
        sex = 0 if " woman " in c.initial else 1
        assert init.sex == sex
        for f in c.facts:
            assert f.text == fact_text(f.finding.code, f.finding.present, sex)
            assert not (sex == 1 and m.female_only[m.finding_index[f.finding.code]])
        # distractors are confusable: all options come from the pool of the initial statement
        cfg = GeneratorConfig()
        pl = pool(init.band, init.sex, init.cc, cfg.pool_size, cfg.pool_min_ratio)
        assert {m.disease_index[o.key] for o in c.options} <= set(pl)


def test_gold_position_roughly_uniform(test200):
    counts = np.bincount([c.gold_index for c in test200], minlength=4)
    assert counts.min() >= 25, counts


def test_determinism_and_prefix_stability():
    a = generate_cases("val", 30, seed=3)
    assert a == generate_cases("val", 30, seed=3)
    assert generate_cases("val", 10, seed=3) == a[:10]
    assert generate_cases("val", 30, seed=4) != a
    with pytest.raises(ValueError):
        generate_cases("dev", 3)


def _content(case):
    rec = case.to_json()
    rec.pop("id")
    return repr(sorted(rec.items()))


def test_splits_are_disjoint():
    splits = {s: generate_cases(s, n) for s, n in (("train", 300), ("val", 200), ("test", 200))}
    contents = {s: {_content(c) for c in cs} for s, cs in splits.items()}
    for s, cs in splits.items():
        assert len(contents[s]) == len(cs)  # no duplicates within a split
    for s, t in itertools.combinations(contents, 2):
        assert not contents[s] & contents[t]


def test_case_round_trips_through_jsonl(tmp_path, test200):
    from promed.data.cases import load_cases, write_cases

    path = tmp_path / "sc.jsonl"
    write_cases(test200[:20], path)
    back = load_cases(path).cases
    assert [c.to_json() for c in back] == [c.to_json() for c in test200[:20]]
    for a, b in zip(back, test200[:20]):
        assert b.facts == a.facts and b.options == a.options and b.initial_findings == a.initial_findings
        assert a.content_hash() == b.content_hash()


# ---- calibration -------------------------------------------------------------------------------------------------


def test_calibration_on_200_cases(test200, scorer):
    nf = np.array([c.n_facts for c in test200])
    assert nf.mean() >= 8 and nf.max() <= 16 and nf.min() >= 8
    gold = np.array([c.gold_index for c in test200])
    p0 = np.array(scorer.probs([c.query() for c in test200]))
    p1 = np.array(scorer.probs([c.query(range(c.n_facts)) for c in test200]))
    acc0, acc1 = (p0.argmax(1) == gold).mean(), (p1.argmax(1) == gold).mean()
    assert acc0 <= 0.5 and acc1 >= 0.88 and acc1 - acc0 >= 0.35, (acc0, acc1)
    # an exact posterior is calibrated: E[top probability] = P(top option is gold)
    for p, acc in ((p0, acc0), (p1, acc1)):
        assert abs(p.max(1).mean() - acc) < 0.07


# ---- exact posterior ---------------------------------------------------------------------------------------------


def _brute_force(case, fact_ids):
    """Bayes' rule written directly from the KB specs, with plain floats (independent of posterior.py)."""
    fspec = {f.code: f for f in kb.FINDINGS}
    init = {g.code: g for g in case.initial_findings}
    band = next(i for i, b in enumerate(kb.AGE_BANDS) if f"age:{b[0]}" in init)
    sex = next(i for i, s in enumerate(kb.SEXES) if f"sex:{s}" in init)
    cc = case.initial_findings[0].code
    out = []
    for o in case.options:
        d = next(x for x in kb.DISEASES if x.code == o.key)
        lik = {c: dict(d.lik).get(c, fspec[c].base) for c in fspec}
        w = d.prior * d.age[band] * d.sex[sex]
        w *= lik[cc] / sum(lik[c] for c, f in fspec.items() if f.complaint)
        for i in fact_ids:
            g = case.facts[i].finding
            w *= lik[g.code] if g.present else 1 - lik[g.code]
        out.append(w)
    return np.array(out) / sum(out)


def test_posterior_matches_brute_force_bayes(test200, scorer):
    rng = np.random.default_rng(0)
    for c in test200[:25]:
        for _ in range(4):
            ids = np.flatnonzero(rng.random(c.n_facts) < rng.random())
            np.testing.assert_allclose(scorer.probs([c.query(ids)])[0], _brute_force(c, ids), rtol=1e-9, atol=1e-12)


def test_posterior_tiny_example_by_hand():
    """Two options, one finding: the posterior is prior x likelihood, normalised."""
    m = model()
    opts = (Option("A", "", "acute_mi"), Option("B", "", "gerd"))
    init = (Finding("chest_pain", True), Finding("age:middle", True), Finding("sex:male", True))
    q = Query("", "", opts, (Fact(0, "", Finding("troponin_high", True)),), init)
    lp = initial_logits(parse_initial(init))
    i, j, f = m.disease_index["acute_mi"], m.disease_index["gerd"], m.finding_index["troponin_high"]
    w = np.exp(lp[[i, j]]) * np.array([0.95, 0.01])
    np.testing.assert_allclose(BayesScorer().probs([q])[0], w / w.sum())
    assert m.lik[i, f] == 0.95 and m.lik[j, f] == 0.01


def test_probs_properties(test200, scorer):
    rng = np.random.default_rng(1)
    queries = [c.query(np.flatnonzero(rng.random(c.n_facts) < 0.5)) for c in test200]
    batch = scorer.probs(queries)
    for p, q in zip(batch, queries):
        assert p.shape == (4,) and np.all(p >= 0) and math.isclose(p.sum(), 1.0, rel_tol=1e-12)
    single = [scorer.probs([q])[0] for q in queries[:20]]
    np.testing.assert_allclose(np.array(batch[:20]), np.array(single))
    # order of facts and of options does not matter (beyond permuting the output)
    q = queries[0]
    np.testing.assert_allclose(scorer.probs([replace(q, facts=q.facts[::-1])])[0], batch[0])
    rev = scorer.probs([replace(q, options=q.options[::-1])])[0]
    np.testing.assert_allclose(rev[::-1], batch[0])
    # facts without findings are ignored; unknown codes are an error; mixed option counts work
    np.testing.assert_allclose(scorer.probs([replace(q, facts=q.facts + (Fact(99, "free text"),))])[0], batch[0])
    with pytest.raises(ValueError):
        scorer.probs([replace(q, facts=(Fact(0, "x", Finding("no_such_code", True)),))])
    two = scorer.probs([replace(q, options=q.options[:2]), q])
    assert two[0].shape == (2,) and math.isclose(two[0].sum(), 1.0) and np.allclose(two[1], batch[0])


def test_subset_probs_equals_queries(test200, scorer):
    c = max(test200, key=lambda c: c.n_facts)
    masks = (np.arange(2 ** c.n_facts)[:, None] >> np.arange(c.n_facts)) & 1
    fast = scorer.subset_probs(c, masks)
    assert fast.shape == (2 ** c.n_facts, 4) and np.allclose(fast.sum(1), 1.0)
    pick = np.random.default_rng(2).choice(len(masks), 200, replace=False)
    slow = scorer.probs([c.query(np.flatnonzero(masks[i])) for i in pick])
    np.testing.assert_allclose(np.array(slow), fast[pick], rtol=1e-10, atol=1e-13)
    assert scorer.probs([]) == []
    # freshly built (non-shared) fact objects give the same answer as the case's own
    q = c.query(range(c.n_facts))
    fresh = replace(q, facts=tuple(Fact(f.id, f.text, Finding(f.finding.code, f.finding.present)) for f in q.facts))
    np.testing.assert_allclose(scorer.probs([fresh])[0], fast[-1])


# ---- questions ---------------------------------------------------------------------------------------------------


def test_candidate_questions_and_fact_questions(test200):
    m = model()
    c = test200[0]
    known = {c.facts[0].finding.code}
    cands = candidate_questions(c.options, known, initial_findings=c.initial_findings)
    codes = [code for code, _ in cands]
    assert codes and len(set(codes)) == len(codes) and not known & set(codes)
    assert m.finding_codes[parse_initial(c.initial_findings).cc] not in codes
    opt = [m.disease_index[o.key] for o in c.options]
    for code, q in cands:
        assert m.listed[opt, m.finding_index[code]].any() and question_for(code) == q
    # every hidden fact is reachable by its question, and the exact-code patient finds it
    for f in c.facts:
        assert fact_for_question(c, question_for_fact(f)) == f
    assert fact_for_question(c, "What is your favourite colour?") is None
    with pytest.raises(ValueError):
        question_for_fact(Fact(0, "free text"))


def test_gold_disease_helper(test200):
    assert all(gold_disease(c) == c.option(c.answer).key for c in test200[:10])
