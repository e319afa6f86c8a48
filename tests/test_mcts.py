"""MCTS over consultations: determinism, UCT, optimality on a tiny world, export format, resume, SIG equality."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from conftest import KeywordPatient, make_case
from promed.data.sources import DataConfig
from promed.data.synthclinic import BayesScorer, generate_cases, question_for_fact
from promed.doctor.actions import parse_action
from promed.patient.guard import REFUSAL, has_letter_answer, is_safe
from promed.runs.mcts import MctsRunConfig, run_mcts
from promed.search.candidates import FactQuestions, PolicyQuestions, UnionSource, copies_fact, topic_of
from promed.search.mcts import (ConsultationWorld, MctsConfig, Proposal, Rewarder, mcts_search,
                                rank_trajectories, uct_scores)
from promed.sig.annotate import SigAnnotator
from promed.sig.cache import ShapleyCache
from promed.sig.reward import SigConfig
from promed.sig.value import ScorerValue
from promed.types import Answer, Ask


class TemplatePatient:
    """Reveals exactly the SynthClinic fact whose template question was asked (deterministic, no embeddings)."""

    def __init__(self):
        self.calls = 0

    def reply(self, cases, questions):
        self.calls += 1
        out = []
        for c, q in zip(cases, questions):
            ids = tuple(f.id for f in c.facts if question_for_fact(f) == q)
            out.append((" ".join(c.facts[i].text for i in ids) if ids else REFUSAL, ids))
        return out


class ToyScorer:
    """Gold option B is the argmax only once fact ``key`` is known; otherwise A."""

    id = "toy"

    def __init__(self, key: int = 2):
        self.key = key

    def probs(self, queries):
        rows = []
        for q in queries:
            ids = {f.id for f in q.facts}
            rows.append(np.array([0.1, 0.7, 0.1, 0.1]) if self.key in ids else np.array([0.7, 0.1, 0.1, 0.1]))
        return rows


class AllFacts:
    """Proposes 'Tell me about fact i?' for every fact (the toy world's full action set)."""

    name = "all"
    calls = 0

    def prefetch(self, case):
        return []

    def propose(self, case, view, width, rng):
        return Proposal(tuple(f"Tell me about fact {f.id}?" for f in case.facts))


TOY_W = np.array([0.05, 0.1, 0.5, 0.3, 0.05])


def toy_search(cfg: MctsConfig, seed: int = 0):
    case = make_case(n_facts=5)
    world = ConsultationWorld(case, KeywordPatient(), ToyScorer(), cfg.max_questions)
    return case, mcts_search(world, AllFacts(), Rewarder(case, TOY_W, 1.0, cfg), cfg, np.random.default_rng(seed),
                             top_k=5)


def brute_force_optimum(cfg: MctsConfig) -> float:
    """Best return over every sequence of distinct questions (then the scorer's answer), computed directly."""
    best = -np.inf
    for k in range(cfg.max_questions + 1):
        for seq in itertools.permutations(range(5), k):
            rewards = [cfg.w_sig * TOY_W[i] - cfg.question_cost for i in seq]
            rewards.append(cfg.w_correct * float(2 in seq))
            best = max(best, sum(r * cfg.gamma ** t for t, r in enumerate(rewards)))
    return best


TOY_CFG = MctsConfig(iterations=400, width=5, max_questions=3, c_uct=1.0, gamma=0.9, question_cost=0.08)


def test_uct_scores():
    s = uct_scores([0.2, 0.9, 0.5], [3, 3, 3], 9, c=0.0)
    assert int(np.argmax(s)) == 1
    s = uct_scores([0.5, 0.5], [1, 10], 11, c=1.0)
    assert s[0] > s[1]  # equal means: the less visited child explores
    assert np.isinf(uct_scores([0.0, 1.0], [0, 5], 5, c=1.0)[0])


def test_finds_known_optimum_in_tiny_world():
    _, res = toy_search(TOY_CFG)
    assert res.best is not None and res.best.correct
    assert res.best.ret == pytest.approx(brute_force_optimum(TOY_CFG))
    assert [t.question for t in res.best.turns][:1] == ["Tell me about fact 2?"]
    # 1 + 5 + 20 + 60 terminal paths: the tree is exhausted before 400 iterations and every path was found
    assert res.stats.trajectories == 86 and res.stats.iterations == 86


def test_uct_concentrates_on_best_root_action():
    cfg = replace(TOY_CFG, iterations=60, c_uct=0.3)
    _, res = toy_search(cfg)
    most = max(res.root, key=lambda c: c.visits)
    assert most.action == "ASK: Tell me about fact 2?"
    assert most.value == max(c.value for c in res.root if c.visits > 1)


def test_deterministic_under_seed():
    cfg = replace(TOY_CFG, iterations=25)
    a, b = toy_search(cfg, seed=3)[1], toy_search(cfg, seed=3)[1]
    assert a.top == b.top and a.root == b.root
    assert a.stats.nodes == b.stats.nodes


def test_rank_rule_prefers_correct_then_return_then_fewer_questions():
    _, res = toy_search(replace(TOY_CFG, iterations=86))
    ranked = rank_trajectories(res.top + tuple(res.top), None)
    assert ranked[0] == res.best
    keys = [(not t.correct, -t.ret, t.n_questions) for t in ranked]
    assert keys == sorted(keys)
    _, res0 = toy_search(replace(TOY_CFG, w_correct=0.0, iterations=86))
    assert all(t.correct for t in rank_trajectories(res0.top, None, require_correct=True))


@pytest.fixture(scope="module")
def synth_cases():
    return generate_cases("train", 6)


@pytest.fixture(scope="module")
def annotator():
    return SigAnnotator(ShapleyCache(ScorerValue(BayesScorer())), SigConfig(lam=0.5))


def synth_search(case, annotator, seed=0, cfg=MctsConfig(iterations=16, width=4, max_questions=4)):
    world = ConsultationWorld(case, TemplatePatient(), BayesScorer(), cfg.max_questions)
    rewarder = Rewarder(case, annotator.weights(case), annotator.cfg.lam, cfg)
    return mcts_search(world, FactQuestions(), rewarder, cfg, np.random.default_rng(seed), top_k=3)


def test_synthclinic_search_deterministic_and_sig_matches_annotator(synth_cases, annotator):
    for case in synth_cases[:3]:
        a, b = synth_search(case, annotator, 7), synth_search(case, annotator, 7)
        assert a.top == b.top
        for traj in a.top:
            ann = annotator(case, traj.transcript())
            assert traj.sig == pytest.approx([t.sig for t in ann.turns], abs=1e-12)
            assert [t.new for t in traj.turns] == [t.new for t in ann.turns]
            r = traj.rewards
            assert r[-1] == float(traj.correct) and r[:-1] == pytest.approx(traj.sig)


def test_facts_source_targets_hidden_unrevealed_facts(synth_cases):
    case = synth_cases[0]
    src = FactQuestions(off_target=1)
    world = ConsultationWorld(case, TemplatePatient(), BayesScorer(), 5)
    state = world.step(world.init_state(), Ask(question_for_fact(case.facts[0])))
    prop = src.propose(case, world.view(state), 5, np.random.default_rng(0))
    targeted = {question_for_fact(f) for f in case.facts[1:]}
    on = [q for q in prop.questions if q in targeted]
    assert len(prop.questions) == 5 and len(on) == 4
    assert question_for_fact(case.facts[0]) not in prop.questions
    off = [q for q in prop.questions if q not in targeted]
    assert TemplatePatient().reply([case] * len(off), off)[0][1] == ()  # undocumented: unanswerable


class ScriptedLLM:
    """generate() returns scripted texts (cycled), recording calls and sampling."""

    name = "scripted"

    def __init__(self, texts):
        self.texts, self.calls = list(texts), []

    def generate(self, chats, sampling):
        self.calls.append((len(chats), sampling.n))
        n = len(chats) * sampling.n
        return [self.texts[i % len(self.texts)] for i in range(n)]


def test_policy_source_one_call_dedup_and_answers(synth_cases):
    case = synth_cases[0]
    llm = ScriptedLLM(["ASK: Do you smoke?", "ASK:  do you  smoke?", "ANSWER: C", "gibberish"])
    src = PolicyQuestions(llm)
    world = ConsultationWorld(case, TemplatePatient(), BayesScorer(), 5)
    prop = src.propose(case, world.view(world.init_state()), 4, np.random.default_rng(0))
    assert llm.calls == [(1, 4)] and prop.questions == ("Do you smoke?",)
    assert prop.answers == ("C",) and prop.invalid == 1
    cfg = MctsConfig(iterations=4, width=4, max_questions=2)
    res = mcts_search(world, src, Rewarder(case, np.full(case.n_facts, 1 / case.n_facts), 0.5, cfg), cfg,
                      np.random.default_rng(0))
    assert "ANSWER: C" in {c.action for c in res.root}  # the policy's own answer is an action
    both = UnionSource(PolicyQuestions(ScriptedLLM(["ASK: Do you smoke?"])), FactQuestions())
    assert both.propose(case, world.view(world.init_state()), 3, np.random.default_rng(0)).questions[0] == \
        "Do you smoke?"


def test_real_data_writer_falls_back_on_copies():
    case = make_case(n_facts=2)
    case = replace(case, facts=(replace(case.facts[0], text="Her temperature is 39.2 C."),
                                replace(case.facts[1], text="She reports a dry cough for three weeks.")))
    llm = ScriptedLLM(["Is your temperature 39.2 C?", "How long have you been coughing?"])
    src = FactQuestions(llm)
    qs = src.prefetch(case)
    assert llm.calls == [(2, 1)]  # one batched writer call for the case
    assert qs[0] == "Can you tell me about temperature?" and "39" not in qs[0]
    assert qs[1] == "How long have you been coughing?" and src.rejected == 1
    assert copies_fact("Do you have a dry cough for three weeks?", "She reports a dry cough for three weeks.")
    assert topic_of("Plasma D-dimer is normal.") == "plasma D-dimer"
    assert topic_of("Patient complains of fever for 3 days.") == "fever"
    assert topic_of("Blood pressure is 150/90 mm Hg.") == "blood pressure"


def _run(tmp_path: Path, cases, **kw):
    cfg = MctsRunConfig(data=DataConfig(split="train"), search=MctsConfig(iterations=12, width=4, max_questions=4),
                        out=tmp_path / "mcts", **kw)
    return run_mcts(cfg, progress=False, patient=TemplatePatient(), scorer=BayesScorer(), cases=cases), cfg


def test_export_format_and_no_leaks(tmp_path, synth_cases, annotator):
    summary, cfg = _run(tmp_path, synth_cases, top_k=2, if_none_correct="best")
    recs = [json.loads(line) for line in (cfg.out / "trajectories.jsonl").read_text().splitlines()]
    assert summary.searched == 6 and summary.trajectories == len(recs) == 12
    by_id = {c.id: c for c in synth_cases}
    for rec in recs:
        case, msgs = by_id[rec["id"]], rec["messages"]
        assert [m["role"] for m in msgs[:2]] == ["system", "user"]
        assert [m["role"] for m in msgs[2:]] == ["assistant", "user"] * rec["n_questions"] + ["assistant"]
        actions = [parse_action(m["content"], case.options) for m in msgs if m["role"] == "assistant"]
        assert all(isinstance(a, Ask) for a in actions[:-1]) and actions[-1] == Answer(rec["answer"])
        assert rec["correct"] == (rec["answer"] == case.answer)
        for a, m in zip(actions[:-1], msgs[3::2]):
            reply = m["content"].split("\n")[0]
            assert reply == TemplatePatient().reply([case], [a.question])[0][0]
            assert is_safe(case, reply) and not has_letter_answer(reply)
            assert not any(o.text.lower() in reply.lower() for o in case.options)
        # the exported SIG is the annotator's and the reward is the return under the run's weights
        tr_sig = rec["sig"]
        assert len(tr_sig) == rec["n_questions"]
        assert rec["reward"] == pytest.approx(sum(tr_sig) + float(rec["correct"]), abs=1e-5)
    ranks = [(r["id"], r["rank"]) for r in recs]
    assert len(set(ranks)) == len(ranks)


def test_resume_skips_done_and_drops_partial(tmp_path, synth_cases):
    _run(tmp_path, synth_cases[:3])
    out = tmp_path / "mcts"
    first = (out / "trajectories.jsonl").read_text().splitlines()
    # a crash after a case's trajectories but before its search line: that line must not survive
    ghost = json.loads(first[0]) | {"id": synth_cases[4].id}
    with (out / "trajectories.jsonl").open("a") as fh:
        fh.write(json.dumps(ghost) + "\n")
    summary, _ = _run(tmp_path, synth_cases)
    stats = [json.loads(x)["id"] for x in (out / "search.jsonl").read_text().splitlines()]
    trajs = [json.loads(x)["id"] for x in (out / "trajectories.jsonl").read_text().splitlines()]
    assert stats == [c.id for c in synth_cases]  # the first three were not searched again
    assert len(trajs) == len(set(trajs)) and (out / "trajectories.jsonl").read_text().splitlines()[:3] == first
    assert summary.searched == 6


def test_correctness_only_and_uniform_arms(tmp_path, synth_cases):
    s_off, _ = _run(tmp_path / "off", synth_cases[:3], sig_enabled=False)
    recs = [json.loads(x) for x in (tmp_path / "off/mcts/trajectories.jsonl").read_text().splitlines()]
    assert all(r["reward"] == pytest.approx(1.0) for r in recs)  # correctness only: SIG recorded, not rewarded
    assert all(r["correct"] for r in recs)  # skip mode exports correct trajectories only
    s_uni, _ = _run(tmp_path / "uni", synth_cases[:3], sig=SigConfig(lam=0.0))
    recs = [json.loads(x) for x in (tmp_path / "uni/mcts/trajectories.jsonl").read_text().splitlines()]
    by_id = {c.id: c for c in synth_cases}
    for r in recs:  # lam = 0: every new fact earns exactly 1/n
        n = by_id[r["id"]].n_facts
        assert all(abs(s * n - round(s * n)) < 1e-4 for s in r["sig"])
