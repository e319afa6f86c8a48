"""Baseline doctors, the LLM doctor's chat rendering, and a prompted tiny model end to end."""

import numpy as np
import pytest

from promed.data.synthclinic import BayesScorer, generate_cases
from promed.doctor.baselines import AbstainDoctor, RandomQuestionDoctor, ReactiveDoctor
from promed.doctor.policy import LLMDoctor, view_to_chat
from promed.doctor.questions import GENERIC_QUESTIONS, candidate_questions
from promed.env.consultation import Consultation, EnvConfig
from promed.env.rollout import run_episodes
from tests.conftest import KeywordPatient, make_case


class ExactPatient:
    """SynthClinic patient by exact finding code (isolates doctor behaviour from retrieval)."""

    def reply(self, cases, questions):
        from promed.data.synthclinic.questions import fact_for_question

        out = []
        for c, q in zip(cases, questions):
            f = fact_for_question(c, q)
            out.append((f.text, (f.id,)) if f else ("Sorry, I cannot answer that question.", ()))
        return out


@pytest.fixture(scope="module")
def sc_cases():
    return generate_cases("val", 40)


def test_reactive_answers_scorer_argmax(sc_cases):
    scorer = BayesScorer()
    trs = run_episodes(sc_cases, ReactiveDoctor(scorer), ExactPatient(), EnvConfig(), seed=0)
    probs = scorer.probs([c.query() for c in sc_cases])
    assert [t.answer for t in trs] == [c.letters[int(np.argmax(p))] for c, p in zip(sc_cases, probs)]
    assert all(t.n_questions == 0 and t.end == "answer" for t in trs)


def test_full_information_beats_reactive(sc_cases):
    scorer = BayesScorer()
    react = run_episodes(sc_cases, ReactiveDoctor(scorer), ExactPatient(), EnvConfig(), seed=0)
    full = run_episodes(sc_cases, ReactiveDoctor(scorer), ExactPatient(), EnvConfig(reveal_all=True), seed=0)
    assert sum(t.correct for t in full) > sum(t.correct for t in react)
    assert all(len(t.known) == c.n_facts for t, c in zip(full, sc_cases))


def test_random_k_asks_k_distinct_questions(sc_cases):
    trs = run_episodes(sc_cases, RandomQuestionDoctor(BayesScorer(), 3), ExactPatient(), EnvConfig(max_questions=5),
                       seed=1)
    for t in trs:
        assert t.n_questions == 3 and len({tu.question for tu in t.turns}) == 3 and t.end == "answer"


def test_abstention_threshold_controls_asking(sc_cases):
    never = AbstainDoctor(BayesScorer(), "numeric", threshold=0.0)
    always = AbstainDoctor(BayesScorer(), "numeric", threshold=1.01)
    a = run_episodes(sc_cases, never, ExactPatient(), EnvConfig(max_questions=4), seed=0)
    b = run_episodes(sc_cases, always, ExactPatient(), EnvConfig(max_questions=4), seed=0)
    assert all(t.n_questions == 0 for t in a) and all(t.n_questions == 4 for t in b)
    scale = AbstainDoctor(BayesScorer(), "scale")
    conf = scale.confidence([Consultation(ExactPatient()).reset(c)[0] for c in sc_cases])
    assert np.all((conf >= 1.0) & (conf <= 5.0))


def test_generic_pool_for_real_cases():
    view, _ = Consultation(KeywordPatient()).reset(make_case())
    assert candidate_questions(view) == list(GENERIC_QUESTIONS)


def test_view_to_chat_renders_dialogue():
    case = make_case()
    env = Consultation(KeywordPatient(), EnvConfig(max_questions=3))
    env.reset(case)
    env.step("ASK: tell me fact 1")
    chat = view_to_chat(env.view())
    assert [m["role"] for m in chat] == ["system", "user", "assistant", "user"]
    assert chat[2]["content"] == "ASK: tell me fact 1"
    assert case.facts[1].text in chat[3]["content"] and "Questions left: 2." in chat[3]["content"]
    assert "Questions left: 3." in chat[1]["content"] and "B. Pneumonia" in chat[1]["content"]
    assert all(f.text not in chat[1]["content"] for f in case.facts)  # hidden facts stay hidden
    # budget spent: the last message says so
    env.step("ASK: fact 2")
    env.step("ASK: fact 3")
    assert "no questions left" in view_to_chat(env.view())[-1]["content"]


def test_prompted_tiny_llm_doctor_runs_and_counts_invalid_outputs():
    from promed.llm import load_llm

    doctor = LLMDoctor(load_llm("tiny"), "prompted")
    cases = [make_case(f"c{i}") for i in range(3)]
    trs = run_episodes(cases, doctor, KeywordPatient(), EnvConfig(max_questions=2), seed=0)
    assert len(trs) == 3
    for t in trs:  # random weights: gibberish, so mostly invalid -> forced answers, never a crash
        assert t.end in ("answer", "budget", "invalid") and t.answer in "ABCD"
        assert t.n_outputs >= 1 and t.invalid <= t.n_outputs


def test_scorer_answers_wrapper_keeps_questions_and_replaces_answers(sc_cases):
    from promed.doctor.baselines import ScorerAnswers

    class AskTwiceThenGuessA:
        name = "inner"

        def act(self, views, rng):
            return ["ASK: Have you had a fever?" if len(v.turns) < 2 else "ANSWER: A" for v in views]

    scorer = BayesScorer()
    doc = ScorerAnswers(AskTwiceThenGuessA(), scorer, "ask:inner")
    trs = run_episodes(sc_cases, doc, ExactPatient(), EnvConfig(max_questions=5), seed=0)
    for case, t in zip(sc_cases, trs):
        assert t.n_questions == 2 and t.turns[0].question == "Have you had a fever?"
        p = scorer.probs([case.query(t.known)])[0]
        assert t.answer == case.letters[int(np.argmax(p))]


def test_no_repeat_takes_the_best_question_not_asked_yet():

    class Sampled:
        """Greedy output repeats the first question; hot samples ask something new (an API without beams)."""

        name, supports_beams = "sampled", False

        def generate(self, chats, sampling):
            assert sampling.beams == 1
            return ["ASK: Do you smoke?" if sampling.temperature == 0 else "ASK: Any fever?"
                    for _ in chats for _ in range(sampling.n)]

    class Beamed:
        """Beam search: the best beam repeats, the second asks about fever, the third about cough."""

        name, supports_beams = "beamed", True
        seen: list = []

        def generate(self, chats, sampling):
            self.seen.append(sampling)
            if sampling.beams == 1:
                return ["ASK: Do you smoke?" for _ in chats]
            best = ["ASK: Do you smoke?", "ASK: Any fever?", "ASK: Any cough?"][: sampling.n]
            return [b for _ in chats for b in best]

    case = make_case()
    env = Consultation(KeywordPatient(), EnvConfig(max_questions=3))
    env.reset(case)
    env.step("ASK: Do you smoke?")
    rng = np.random.default_rng(0)

    def texts(doc):
        return [g.text for g in doc.act([env.view()], rng)]

    assert texts(LLMDoctor(Sampled(), no_repeat=0)) == ["ASK: Do you smoke?"]
    assert texts(LLMDoctor(Sampled(), no_repeat=2)) == ["ASK: Any fever?"]
    beamed = Beamed()
    assert texts(LLMDoctor(beamed, no_repeat=3)) == ["ASK: Any fever?"]
    assert beamed.seen[-1].beams == 3 and beamed.seen[-1].temperature == 0
    # nothing repeated: one greedy call, no beam search
    env.reset(case)
    beamed.seen.clear()
    assert texts(LLMDoctor(beamed, no_repeat=3)) == ["ASK: Do you smoke?"]
    assert len(beamed.seen) == 1