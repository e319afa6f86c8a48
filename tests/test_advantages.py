"""Stage 2 credit assignment (promed.train.advantages) against hand-computed examples."""

import numpy as np
import pytest

from promed.train.advantages import (
    EpisodeCredit, RewardWeights, credit_advantages, episode_reward, group_token_advantages, outcome_advantages,
    spread_over_tokens, turn_group_advantages, turn_rewards,
)


def test_turn_rewards_by_hand():
    w = RewardWeights()  # alpha 2, beta 1, gamma 3, f 1
    # two questions (SIG 0.5 and 0), one unreadable turn, the answer; the answer is right
    r = turn_rewards(["ask", "ask", "invalid", "answer"], [0.5, 0.0, 0.0, 0.0], correct=True, w=w)
    assert r.tolist() == [2 * 0.5 + 1 * 0.5 + 1, 1.0, 0.0, 3 + 1]
    # the same, answered wrongly: the SIG x correct term and the correctness term vanish
    r = turn_rewards(["ask", "ask", "invalid", "answer"], [0.5, 0.0, 0.0, 0.0], correct=False, w=w)
    assert r.tolist() == [2 * 0.5 + 1, 1.0, 0.0, 1.0]
    with pytest.raises(ValueError, match="SIG values"):
        turn_rewards(["ask"], [], True)
    with pytest.raises(ValueError, match="unknown turn kind"):
        turn_rewards(["shout"], [0.0], True)


def test_sig_lands_on_its_question_tokens_only():
    # tokens: env env q0 q0 env env q1 env a a   (turn indices; -1 = environment, e.g. the patient)
    turn_index = np.array([-1, -1, 0, 0, -1, -1, 1, -1, 2, 2])
    r = spread_over_tokens(turn_index, np.array([2.5, 1.0, 4.0]))
    assert r.tolist() == [0, 0, 2.5, 2.5, 0, 0, 1.0, 0, 4.0, 4.0]
    with pytest.raises(ValueError, match="turn rewards"):
        spread_over_tokens(np.array([0, 3]), np.array([1.0]))


def test_group_token_advantages_by_hand():
    # group 0: episode A has doctor tokens with rewards 2, 2, 4 ; episode B has 1, 3 -> group mean 12 / 5 = 2.4
    a_r, a_m = np.array([0.0, 2, 2, 0, 4]), np.array([0, 1, 1, 0, 1])
    b_r, b_m = np.array([1.0, 0, 3]), np.array([1, 0, 1])
    # group 1: one episode, rewards 5, 5 -> advantages 0
    c_r, c_m = np.array([5.0, 5.0]), np.array([1, 1])
    adv = group_token_advantages([a_r, b_r, c_r], [a_m, b_m, c_m], [0, 0, 1])
    assert adv[0] == pytest.approx([0, -0.4, -0.4, 0, 1.6])
    assert adv[1] == pytest.approx([-1.4, 0, 0.6])
    assert adv[2] == pytest.approx([0, 0])
    # environment tokens get exactly zero, whatever their (spurious) reward
    adv = group_token_advantages([np.array([9.0, 1.0])], [np.array([0, 1])], [0])
    assert adv[0].tolist() == [0.0, 0.0]


def test_outcome_advantages_by_hand():
    r = [1.0, 0.0, 1.0, 1.0, 2.0, 2.0]
    g = [0, 0, 0, 0, 1, 1]
    adv = outcome_advantages(r, g, scale=False)
    assert adv == pytest.approx([0.25, -0.75, 0.25, 0.25, 0.0, 0.0])
    std = np.std([1, 0, 1, 1])
    assert outcome_advantages(r, g) == pytest.approx(np.array([0.25, -0.75, 0.25, 0.25, 0, 0]) /
                                                     np.array([std + 1e-4] * 4 + [1e-4] * 2))
    # group-relative: adding a constant to a group's rewards changes nothing
    assert outcome_advantages(np.array(r) + 5, g) == pytest.approx(outcome_advantages(r, g))


def _ep(turn_index, kinds, sig, correct, format_ok=True):
    return EpisodeCredit(np.array(turn_index), tuple(kinds), tuple(sig), correct, format_ok)


def test_credit_of_each_arm_by_hand():
    # episode A: question (SIG 0.5) on tokens 0-1, patient token 2, answer (right) on token 3
    # episode B: answers at once (wrong) on tokens 0-1
    a = _ep([0, 0, -1, 1], ["ask", "answer"], [0.5, 0.0], True)
    b = _ep([0, 0], ["answer"], [0.0], False)
    w = RewardWeights()
    assert episode_reward(a, w) == 4.0 and episode_reward(b, w) == 1.0
    # sig: A's question tokens 2*0.5 + 0.5 + 1 = 2.5, A's answer 4, B's answer 1; mean over 5 doctor tokens = 11 / 5
    sig_a, sig_b = credit_advantages("sig", [a, b], [0, 0], w)
    assert sig_a == pytest.approx([0.3, 0.3, 0, 1.8]) and sig_b == pytest.approx([-1.2, -1.2])
    # outcome: rewards 4 and 1 -> (+-1.5) / (1.5 + 1e-4), the same on every doctor token, 0 on the patient's
    out_a, out_b = credit_advantages("outcome", [a, b], [0, 0], w)
    z = 1.5 / (1.5 + 1e-4)
    assert out_a == pytest.approx([z, z, 0, z]) and out_b == pytest.approx([-z, -z])
    # sig-mixed: outcome + lambda x the question's SIG normalised over the group's questions (one question: 0)
    mix_a, _ = credit_advantages("sig-mixed", [a, b], [0, 0], w, mix_lambda=2.0, mix_baseline="questions")
    assert mix_a == pytest.approx(out_a)
    c = _ep([0, 1, -1, 2], ["ask", "ask", "answer"], [0.1, 0.3, 0.0], True)
    mix_a, mix_c = credit_advantages("sig-mixed", [a, c], [0, 0], w, mix_lambda=2.0, mix_baseline="questions")
    qs = np.array([0.5, 0.1, 0.3])
    t = (qs - qs.mean()) / (qs.std() + 1e-4)
    assert mix_a == pytest.approx([2 * t[0]] * 2 + [0, 0], abs=1e-3)  # both episodes have reward 4: outcome 0
    assert mix_c == pytest.approx([2 * t[1], 2 * t[2], 0, 0], abs=1e-3)
    with pytest.raises(ValueError, match="unknown credit"):
        credit_advantages("bogus", [a], [0])


def test_turn_group_advantages_ignore_other_groups_and_non_questions():
    adv = turn_group_advantages([("ask", "answer"), ("ask",), ("ask", "ask")], [(1.0, 9.0), (3.0,), (5.0, 5.0)],
                                [0, 0, 1], baseline="questions")
    assert adv[0] == pytest.approx([-1.0, 0.0], abs=1e-3) and adv[1] == pytest.approx([1.0], abs=1e-3)
    assert adv[2] == pytest.approx([0.0, 0.0])  # equal SIGs: nothing to prefer


def test_turn_baseline_counts_answers_as_turns_that_reveal_nothing():
    kinds = [("ask", "ask", "answer"), ("ask", "answer")]
    sig = [(0.4, 0.18, 0.0), (0.2, 0.0)]
    # questions: SIGs 0.4, 0.18, 0.2 -> mean 0.26; the answers get 0
    q = turn_group_advantages(kinds, sig, [0, 0], baseline="questions")
    qs = np.array([0.4, 0.18, 0.2])
    t = (qs - qs.mean()) / (qs.std() + 1e-4)
    assert q[0] == pytest.approx([t[0], t[1], 0.0], abs=1e-6) and q[1] == pytest.approx([t[2], 0.0], abs=1e-6)
    # turns: five turns with rewards 0.4, 0.18, 0, 0.2, 0 -> mean 0.156; every turn gets its advantage
    a = turn_group_advantages(kinds, sig, [0, 0], baseline="turns")
    r = np.array([0.4, 0.18, 0.0, 0.2, 0.0])
    z = (r - r.mean()) / (r.std() + 1e-4)
    assert a[0] == pytest.approx(z[:3], abs=1e-6) and a[1] == pytest.approx(z[3:], abs=1e-6)
    # the 0.18 question is below the mean of the group's questions but above answering
    assert q[0][1] < 0 < a[0][1] and a[0][2] < 0
    with pytest.raises(ValueError, match="unknown turn baseline"):
        turn_group_advantages(kinds, sig, [0, 0], baseline="bogus")


def test_position_baseline_compares_questions_asked_at_the_same_turn():
    kinds = [("ask", "ask", "answer"), ("ask", "answer"), ("ask", "ask", "ask", "answer"), ("answer",)]
    sig = [(0.4, 0.1, 0.0), (0.2, 0.0), (0.3, 0.3, 0.5, 0.0), (0.0,)]
    adv = turn_group_advantages(kinds, sig, [0, 0, 0, 0], baseline="position")
    first = np.array([0.4, 0.2, 0.3])  # turn 0: three questions from the same state (the fourth answered)
    z0 = (first - first.mean()) / (first.std() + 1e-4)
    second = np.array([0.1, 0.3])  # turn 1: two questions; episode 1 answered there
    z1 = (second - second.mean()) / (second.std() + 1e-4)
    assert adv[0] == pytest.approx([z0[0], z1[0], 0.0], abs=1e-6)
    assert adv[1] == pytest.approx([z0[1], 0.0], abs=1e-6)  # answering is not judged by SIG here
    # turn 2: episode 2's question is alone there, so it has no comparison and gets 0
    assert adv[2] == pytest.approx([z0[2], z1[1], 0.0, 0.0], abs=1e-6)
    assert adv[3] == pytest.approx([0.0])
    # groups are separate: the same turns in another group do not enter the pool
    both = turn_group_advantages(kinds + [("ask",), ("ask",)], sig + [(9.0,), (1.0,)], [0, 0, 0, 0, 1, 1],
                                 baseline="position")
    assert all(np.allclose(a, b) for a, b in zip(both[:4], adv))
    assert both[4] == pytest.approx([1.0], abs=1e-3) and both[5] == pytest.approx([-1.0], abs=1e-3)


def test_sig_mixed_turn_baseline_reaches_the_answer_tokens():
    w = RewardWeights()
    a = _ep([0, 0, -1, 1], ["ask", "answer"], [0.5, 0.0], True)
    b = _ep([0, -1, 1], ["ask", "answer"], [0.1, 0.0], True)  # same reward: the outcome term is 0
    adv_a, adv_b = credit_advantages("sig-mixed", [a, b], [0, 0], w, mix_lambda=1.0, mix_baseline="turns")
    r = np.array([0.5, 0.0, 0.1, 0.0])
    z = (r - r.mean()) / (r.std() + 1e-4)
    assert adv_a == pytest.approx([z[0], z[0], 0.0, z[1]], abs=1e-6)
    assert adv_b == pytest.approx([z[2], 0.0, z[3]], abs=1e-6)


def test_sig_mixed_position_baseline_lands_on_question_tokens_only():
    w = RewardWeights()
    a = _ep([0, 0, -1, 1], ["ask", "answer"], [0.5, 0.0], True)
    b = _ep([0, -1, 1], ["ask", "answer"], [0.1, 0.0], False)
    adv_a, adv_b = credit_advantages("sig-mixed", [a, b], [0, 0], w, mix_lambda=1.0, mix_baseline="position")
    out_a, out_b = credit_advantages("outcome", [a, b], [0, 0], w)
    z = np.array([0.2, -0.2]) / (0.2 + 1e-4)  # the two first questions: SIG 0.5 and 0.1, mean 0.3, std 0.2
    assert adv_a == pytest.approx(out_a + np.array([z[0], z[0], 0.0, 0.0]), abs=1e-6)  # env token and answer: 0
    assert adv_b == pytest.approx(out_b + np.array([z[1], 0.0, 0.0]), abs=1e-6)


def test_sig_mixed_decision_scope_leaves_the_diagnosis_to_the_outcome():
    w = RewardWeights()
    # episode a: a question (2 tokens), then the answer: 1 keyword token + 2 diagnosis tokens; b answers at once
    a = EpisodeCredit(np.array([0, 0, -1, 1, 1, 1]), ("ask", "answer"), (0.5, 0.0), True, True,
                      content=np.array([0, 0, 0, 0, 1, 1], dtype=bool))
    b = EpisodeCredit(np.array([0, 0, 0]), ("answer",), (0.0,), False, True, content=np.array([0, 1, 1], dtype=bool))
    whole_a, whole_b = credit_advantages("sig-mixed", [a, b], [0, 0], w, mix_lambda=1.0, mix_scope="turn")
    dec_a, dec_b = credit_advantages("sig-mixed", [a, b], [0, 0], w, mix_lambda=1.0, mix_scope="decision")
    out_a, out_b = credit_advantages("outcome", [a, b], [0, 0], w)
    r = np.array([0.5, 0.0, 0.0])  # the group's turns: a's question, a's answer, b's answer
    z = (r - r.mean()) / (r.std() + 1e-4)
    assert whole_a == pytest.approx(out_a + np.array([z[0], z[0], 0, z[1], z[1], z[1]]), abs=1e-6)
    # decision scope: the keyword token keeps the SIG term, the diagnosis tokens get the outcome advantage alone
    assert dec_a == pytest.approx(out_a + np.array([z[0], z[0], 0, z[1], 0, 0]), abs=1e-6)
    assert dec_b == pytest.approx(out_b + np.array([z[2], 0, 0]), abs=1e-6)
    assert whole_b == pytest.approx(out_b + z[2], abs=1e-6)
    # without a content mask the scope changes nothing
    plain = EpisodeCredit(a.turn_index, a.kinds, a.sig, a.correct, a.format_ok)
    assert credit_advantages("sig-mixed", [plain, b], [0, 0], w, mix_scope="decision")[0] == pytest.approx(whole_a)
    with pytest.raises(ValueError, match="unknown turn scope"):
        credit_advantages("sig-mixed", [a, b], [0, 0], w, mix_scope="tokens")
