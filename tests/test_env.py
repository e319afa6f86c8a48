import pytest

from promed.env.consultation import Consultation, EnvConfig
from promed.env.rollout import run_episodes
from tests.conftest import KeywordPatient, make_case


def test_ask_then_answer(case):
    env = Consultation(KeywordPatient(), EnvConfig(max_questions=3))
    view, _ = env.reset(case, seed=1)
    assert view.questions_left == 3 and view.known_facts == ()
    view, r, term, trunc, info = env.step("ASK: tell me about fact 1 and fact 2")
    assert info.revealed == (1, 2) and info.new == (1, 2) and view.questions_left == 2 and not (term or trunc)
    view, r, term, trunc, info = env.step("ASK: fact 2 again please")
    assert info.revealed == (2,) and info.new == ()  # repeated facts are not new
    view, r, term, trunc, info = env.step("ANSWER: B")
    assert term and not trunc and r == 1.0
    tr = env.transcript()
    assert tr.end == "answer" and tr.correct and tr.known == (1, 2) and tr.n_questions == 2


def test_budget_truncates_with_forced_answer(case):
    env = Consultation(KeywordPatient(), EnvConfig(max_questions=1))
    env.reset(case, seed=0)
    env.step("ASK: fact 0?")
    _, _, term, trunc, info = env.step("ASK: fact 1?")
    tr = env.transcript()
    assert trunc and not term and info.forced and tr.end == "budget" and tr.answer in case.letters
    assert tr.n_questions == 1
    with pytest.raises(RuntimeError):
        env.step("ANSWER: A")


def test_invalid_retried_once_then_forced(case):
    env = Consultation(KeywordPatient(), EnvConfig(max_questions=3))
    env.reset(case, seed=0)
    _, _, term, trunc, _ = env.step("hmm")
    assert not (term or trunc)
    env.step("ASK: fact 3")  # a valid output resets the run of invalid outputs
    env.step("???")
    _, _, term, trunc, _ = env.step("still thinking")
    tr = env.transcript()
    assert trunc and tr.end == "invalid" and tr.invalid == 3 and tr.n_outputs == 4


def test_reveal_all_gives_every_fact(case):
    env = Consultation(KeywordPatient(), EnvConfig(reveal_all=True))
    view, _ = env.reset(case)
    assert [f.id for f in view.known_facts] == list(range(case.n_facts))


def test_hidden_facts_not_in_view(case):
    env = Consultation(KeywordPatient(), EnvConfig())
    view, _ = env.reset(case)
    assert all(f.text not in repr(view) for f in case.facts)
    assert "answer='B'" not in repr(view)


class RandomDoctor:
    name = "rand"

    def act(self, views, rng):
        return [f"ASK: fact {rng.integers(4)}" if rng.random() < 0.6 else f"ANSWER: {'ABCD'[rng.integers(4)]}"
                for _ in views]


def test_rollout_deterministic_under_seed():
    cases = [make_case(f"c{i}", answer="ABCD"[i % 4]) for i in range(20)]
    a = run_episodes(cases, RandomDoctor(), KeywordPatient(), EnvConfig(max_questions=3), seed=5, batch_size=8)
    b = run_episodes(cases, RandomDoctor(), KeywordPatient(), EnvConfig(max_questions=3), seed=5, batch_size=8)
    c = run_episodes(cases, RandomDoctor(), KeywordPatient(), EnvConfig(max_questions=3), seed=6, batch_size=8)
    assert a == b and a != c
    assert [t.case_id for t in a] == [c.id for c in cases]
    assert all(t.end in ("answer", "budget") for t in a)


def test_rollout_matches_single_env_stepping():
    """Batched stepping gives the same consultation as stepping one env by hand with the same outputs."""
    case = make_case()
    script = ["ASK: fact 0", "ASK: fact 3", "ANSWER: B"]

    class Scripted:
        name = "s"

        def act(self, views, rng):
            return [script[len(v.turns)] for v in views]

    [tr] = run_episodes([case], Scripted(), KeywordPatient(), EnvConfig(), seed=0)
    env = Consultation(KeywordPatient(), EnvConfig())
    env.reset(case)
    for s in script:
        env.step(s)
    assert tr == env.transcript("s")
