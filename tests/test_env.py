import pytest

from promed.doctor.actions import normalise_question
from promed.env.consultation import Consultation, DialogueState, EnvConfig, transition
from promed.env.rollout import Episode, run_consultations, run_episodes, run_groups
from promed.types import Answer, Ask, Generation, Invalid, per_view
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
    # every output is a step, the forced answer one the policy did not produce
    assert [s.text for s in tr.steps] == ["hmm", "ASK: fact 3", "???", "still thinking", ""]
    assert [type(s.action) for s in tr.steps] == [Invalid, Ask, Invalid, Invalid, Answer]
    assert [s.policy for s in tr.steps] == [True, True, True, True, False]
    assert tr.steps[1].turn == 0 and tr.steps[0].turn is None


def test_invalid_output_is_shown_to_the_doctor(case):
    """The next prompt contains the unreadable output and a note: the conversation only grows."""
    from promed.doctor.policy import view_to_chat

    env = Consultation(KeywordPatient(), EnvConfig(max_questions=3))
    env.reset(case, seed=0)
    before = view_to_chat(env.view())
    view, *_ = env.step("I am not sure")
    after = view_to_chat(view)
    assert after[:len(before)] == before
    assert after[len(before)] == {"role": "assistant", "content": "I am not sure"}
    assert "not a valid turn" in after[-1]["content"]


def test_generation_ids_are_recorded(case):
    env = Consultation(KeywordPatient(), EnvConfig())
    env.reset(case, seed=0)
    env.step(Generation("ASK: fact 1?", (5, 6, 7), (-0.1, -0.2, -0.3), "stop"))
    env.step("ANSWER: B")
    s0, s1 = env.transcript().steps
    assert s0.token_ids == (5, 6, 7) and s0.logprobs == (-0.1, -0.2, -0.3) and s0.finish_reason == "stop"
    assert s1.token_ids == () and s1.logprobs is None


def test_transition_is_pure_and_counts_only_new_facts():
    s0 = DialogueState()
    s1, new1 = transition(s0, Ask("fact 1 and 2?"), ("r", (1, 2)))
    s2, new2 = transition(s1, Ask("fact 2 again?"), ("r", (2, 3)))
    assert s0 == DialogueState() and new1 == (1, 2) and new2 == (3,)
    assert s2.known == {1, 2, 3} and s2.turns[1].revealed == (2, 3) and s2.turns[1].new == (3,)
    assert normalise_question(" Fact 2 AGAIN ") in s2.asked
    s3, _ = transition(s2, Answer("C"))
    assert s3.terminal and s3.answer == "C"
    with pytest.raises(ValueError):
        transition(s3, Ask("more?"), ("r", ()))


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

    def act(self, views, rngs):
        return [f"ASK: fact {rng.integers(4)}" if rng.random() < 0.6 else f"ANSWER: {'ABCD'[rng.integers(4)]}"
                for rng in per_view(rngs, len(views))]


def test_rollout_deterministic_under_seed():
    cases = [make_case(f"c{i}", answer="ABCD"[i % 4]) for i in range(20)]
    a = run_episodes(cases, RandomDoctor(), KeywordPatient(), EnvConfig(max_questions=3), seed=5, batch_size=8)
    b = run_episodes(cases, RandomDoctor(), KeywordPatient(), EnvConfig(max_questions=3), seed=5, batch_size=8)
    c = run_episodes(cases, RandomDoctor(), KeywordPatient(), EnvConfig(max_questions=3), seed=6, batch_size=8)
    assert a == b and a != c
    assert [t.case_id for t in a] == [c.id for c in cases]
    assert all(t.end in ("answer", "budget") for t in a)


def test_rollout_independent_of_batch_and_order():
    """An episode's result depends on (seed, case, sample) only: not on batch size, position or resume point."""
    cases = [make_case(f"c{i}", answer="ABCD"[i % 4]) for i in range(20)]
    cfg = EnvConfig(max_questions=3)
    ref = run_episodes(cases, RandomDoctor(), KeywordPatient(), cfg, seed=5, batch_size=8)
    assert run_episodes(cases, RandomDoctor(), KeywordPatient(), cfg, seed=5, batch_size=1) == ref
    assert run_episodes(cases, RandomDoctor(), KeywordPatient(), cfg, seed=5, batch_size=64) == ref
    rev = run_episodes(cases[::-1], RandomDoctor(), KeywordPatient(), cfg, seed=5, batch_size=3)
    assert rev[::-1] == ref
    resumed = run_episodes(cases[7:], RandomDoctor(), KeywordPatient(), cfg, seed=5, batch_size=8)
    assert resumed == ref[7:]


def test_groups_are_keyed_and_deterministic():
    cases = [make_case(f"c{i}", answer="ABCD"[i % 4]) for i in range(6)]
    cfg = EnvConfig(max_questions=3)
    g = run_groups(cases, RandomDoctor(), KeywordPatient(), group_size=4, cfg=cfg, seed=1, batch_size=5)
    assert [[t.key for t in grp] for grp in g] == [[(c.id, s) for s in range(4)] for c in cases]
    assert g == run_groups(cases, RandomDoctor(), KeywordPatient(), group_size=4, cfg=cfg, seed=1, batch_size=64)
    assert any(len({(t.answer, t.turns) for t in grp}) > 1 for grp in g)  # samples differ
    # sample 0 of a group is the single run of the same seed; sample 2 alone equals sample 2 in the group
    assert [grp[0] for grp in g] == run_episodes(cases, RandomDoctor(), KeywordPatient(), cfg, seed=1)
    alone = run_consultations([Episode(cases[3], 2)], RandomDoctor(), KeywordPatient(), cfg, seed=1)
    assert alone == [g[3][2]]
    with pytest.raises(ValueError):
        run_groups(cases, RandomDoctor(), KeywordPatient(), group_size=0)


def test_rollout_matches_single_env_stepping():
    """Batched stepping gives the same consultation as stepping one env by hand with the same outputs."""
    case = make_case()
    script = ["ASK: fact 0", "ASK: fact 3", "ANSWER: B"]

    class Scripted:
        name = "s"

        def act(self, views, rngs):
            return [script[len(v.turns)] for v in views]

    [tr] = run_episodes([case], Scripted(), KeywordPatient(), EnvConfig(), seed=0)
    env = Consultation(KeywordPatient(), EnvConfig())
    env.reset(case)
    for s in script:
        env.step(s)
    assert tr == env.transcript("s")
