"""GreedyEIGDoctor: action format, no repeats, stopping rules, and it beats random questions on SynthClinic."""

from __future__ import annotations

import numpy as np
import pytest

from promed.data.synthclinic import BayesScorer, candidate_questions, fact_for_question, finding_of_question, generate_cases
from promed.doctor.actions import parse_action
from promed.doctor.eig import EIGConfig, GreedyEIGDoctor
from promed.types import Answer, Ask, DoctorView, Turn


@pytest.fixture(scope="module")
def cases():
    return generate_cases("val", 100, seed=1)


def _view(case, turns=(), known=(), left=5):
    return DoctorView(case.id, case.initial, case.question, case.options, tuple(turns), tuple(known), left,
                      case.initial_findings)


def _simulate(cases, act, budget):
    """Lockstep episodes with the exact-code patient; returns (answers, per-case asked questions)."""
    turns = [[] for _ in cases]
    known = [[] for _ in cases]
    answers = [None] * len(cases)
    for _ in range(budget + 1):
        live = [i for i, a in enumerate(answers) if a is None]
        if not live:
            break
        for i, text in zip(live, act([_view(cases[i], turns[i], known[i], budget - len(turns[i])) for i in live])):
            action = parse_action(text, cases[i].options)
            if isinstance(action, Answer):
                answers[i] = action.letter
                continue
            assert isinstance(action, Ask)
            fact = fact_for_question(cases[i], action.question)
            new = (fact.id,) if fact is not None and fact not in known[i] else ()
            turns[i].append(Turn(action.question, fact.text if fact else "I can't answer that.", new, new))
            known[i].extend(cases[i].facts[j] for j in new)
    return answers, [[t.question for t in ts] for ts in turns]


def _random_act(rng, k):
    scorer = BayesScorer()

    def act(views):
        out = []
        for v in views:
            asked = {t.question for t in v.turns}
            known = {f.finding.code for f in v.known_facts}
            pool = [q for _, q in candidate_questions(v.options, known, initial_findings=v.initial_findings)
                    if q not in asked]
            if len(v.turns) < k and v.questions_left > 0 and pool:
                out.append(f"ASK: {pool[int(rng.integers(len(pool)))]}")
            else:
                out.append(f"ANSWER: {v.letters[int(np.argmax(scorer.probs([v.query()])[0]))]}")
        return out
    return act


def test_actions_parse_and_budget_zero_answers(cases):
    doc = GreedyEIGDoctor()
    rng = np.random.default_rng(0)
    asks = doc.act([_view(c) for c in cases[:20]], rng)
    assert all(isinstance(parse_action(a, c.options), (Ask, Answer)) for a, c in zip(asks, cases))
    assert any(a.startswith("ASK: ") for a in asks)
    for a in asks:
        if a.startswith("ASK: "):
            assert finding_of_question(a[5:]) is not None
    final = doc.act([_view(c, left=0) for c in cases[:20]], rng)
    assert all(isinstance(parse_action(a, c.options), Answer) for a, c in zip(final, cases))


def test_never_repeats_and_never_asks_known(cases):
    doc = GreedyEIGDoctor(EIGConfig(stop_threshold=1.1))  # never stop early: exercise long dialogues
    rng = np.random.default_rng(0)
    answers, asked = _simulate(cases[:30], lambda vs: doc.act(vs, rng), budget=12)
    for c, qs in zip(cases[:30], asked):
        assert len(qs) == len(set(qs))
        codes = [finding_of_question(q) for q in qs]
        assert None not in codes and c.initial_findings[0].code not in codes
    assert all(a in "ABCD" for a in answers)


def test_stops_when_confident_and_gains_are_consistent(cases):
    doc = GreedyEIGDoctor()
    rng = np.random.default_rng(0)
    views = [_view(c, known=c.facts) for c in cases[:40]]
    for v, plan, text in zip(views, doc.plan(views, rng), doc.act(views, rng)):
        assert np.all(plan.gains >= 0)
        if plan.posterior.max() >= 0.95:
            assert text.startswith("ANSWER:") and plan.choice is None
        if text.startswith("ANSWER:"):
            assert text.endswith(v.letters[int(np.argmax(plan.posterior))])
    # known findings never get a positive gain
    from promed.data.synthclinic import model

    m = model()
    for v, plan in zip(views, doc.plan(views, rng)):
        for f in v.known_facts:
            assert plan.gains[m.finding_index[f.finding.code]] == 0


def test_beats_random_questions(cases):
    scorer = BayesScorer()
    doc = GreedyEIGDoctor()
    eig_answers, eig_asked = _simulate(cases, lambda vs: doc.act(vs, np.random.default_rng(0)), budget=5)
    rnd_answers, _ = _simulate(cases, _random_act(np.random.default_rng(0), 5), budget=5)
    acc_eig = np.mean([a == c.answer for a, c in zip(eig_answers, cases)])
    acc_rnd = np.mean([a == c.answer for a, c in zip(rnd_answers, cases)])
    acc_init = np.mean([p.argmax() == c.gold_index for p, c in zip(scorer.probs([c.query() for c in cases]), cases)])
    assert acc_eig > acc_rnd + 0.1 and acc_rnd > acc_init, (acc_eig, acc_rnd, acc_init)
    assert max(len(q) for q in eig_asked) <= 5


def test_rejects_non_synthclinic_views():
    from promed.types import Option

    v = DoctorView("x", "A man with cough.", "Dx?", (Option("A", "Flu"), Option("B", "Cold")), (), (), 3)
    with pytest.raises(ValueError):
        GreedyEIGDoctor().act([v], np.random.default_rng(0))
