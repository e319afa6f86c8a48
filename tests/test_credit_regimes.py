"""Issue 31's credit regimes against hand-computed examples: the information-gain arm (ig-mixed, IGPO-style), the
``questions`` scope of sig-mixed, and the questioner-only mode (``--answerer scorer``)."""

from __future__ import annotations

import numpy as np
import pytest

from promed.env.rollout import Episode, run_consultations
from promed.env.consultation import EnvConfig
from promed.train.advantages import EpisodeCredit, credit_advantages, outcome_advantages, turn_group_advantages
from promed.train.grpo.episode import scorer_correct, turn_gains
from promed.types import Generation
from tests.conftest import KeywordPatient, make_case


class ScriptDoctor:
    """Plays a fixed list of outputs, one per turn (the same for every episode)."""

    name = "script"

    def __init__(self, outputs):
        self.outputs = outputs

    def act(self, views, rngs):
        return [Generation(self.outputs[len(v.turns)]) for v in views]


def _transcript(outputs, case=None):
    case = case or make_case("c0", answer="B")
    [tr] = run_consultations([Episode(case)], ScriptDoctor(outputs), KeywordPatient(), EnvConfig(max_questions=3))
    return case, tr


def test_turn_gains_by_hand():
    """v(S) = 0.1 + 0.3 [fact 0 in S] + 0.2 [fact 2 in S]: asking about fact 0 gains 0.3, repeating it 0, asking
    about fact 2 gains 0.2; the answer turn gains nothing. One value call for the consultation."""
    case, tr = _transcript(["ASK: Tell me about fact 0?", "ASK: Tell me about fact 0 again?",
                            "ASK: And fact 2?", "ANSWER: B"])
    calls = []

    def value(c, subsets):
        calls.append(len(subsets))
        return np.array([0.1 + 0.3 * (0 in s) + 0.2 * (2 in s) for s in subsets])

    assert turn_gains(case, tr, value) == pytest.approx((0.3, 0.0, 0.2, 0.0))
    assert len(calls) == 1 and calls[0] == 3  # {}, {0}, {0, 2}: distinct subsets only


def test_ig_mixed_is_sig_mixed_with_gains_in_place_of_sig():
    ti = np.array([-1, 0, 0, -1, 1, 1])  # a question, then the answer
    eps = [EpisodeCredit(ti, ("ask", "answer"), (0.9, 0.0), True, True, gain=(0.25, 0.0)),
           EpisodeCredit(ti, ("ask", "answer"), (0.1, 0.0), False, True, gain=(0.05, 0.0))]
    swapped = [EpisodeCredit(e.turn_index, e.kinds, e.gain, e.correct, e.format_ok) for e in eps]
    ig = credit_advantages("ig-mixed", eps, [0, 0])
    assert all(np.allclose(a, b) for a, b in zip(ig, credit_advantages("sig-mixed", swapped, [0, 0])))
    # by hand: outcome (4 vs 1 -> +-1 / (1.5 + 1e-4) x 1.5) plus the turns' normalised gains (0.25, 0, 0.05, 0)
    out = outcome_advantages([4.0, 1.0], [0, 0])
    g = np.array([0.25, 0.0, 0.05, 0.0])
    z = (g - g.mean()) / (g.std() + 1e-4)
    assert ig[0][[1, 4]] == pytest.approx([out[0] + z[0], out[0] + z[1]])
    assert ig[1][[1, 4]] == pytest.approx([out[1] + z[2], out[1] + z[3]])
    with pytest.raises(ValueError, match="information gains"):
        credit_advantages("ig-mixed", swapped, [0, 0])


def test_questions_scope_never_pushes_a_right_diagnosis_down():
    """An all-correct group: with the default scope the answer turns sit below the questions' mean and get a negative
    SIG term; with ``questions`` an answer keeps the outcome advantage alone (0 in an all-correct group)."""
    ti = np.array([0, 0, -1, 1, 1])
    eps = [EpisodeCredit(ti, ("ask", "answer"), (0.8, 0.0), True, True),
           EpisodeCredit(ti, ("ask", "answer"), (0.2, 0.0), True, True)]
    turn = credit_advantages("sig-mixed", eps, [0, 0], mix_scope="turn")
    scoped = credit_advantages("sig-mixed", eps, [0, 0], mix_scope="questions")
    assert all(a[3:].max() < 0 for a in turn)  # the default pushes the right answers down
    assert all(np.allclose(a[3:], 0.0) for a in scoped)  # outcome only: everyone was right
    t = turn_group_advantages([e.kinds for e in eps], [e.sig for e in eps], [0, 0])
    assert scoped[0][:2] == pytest.approx([t[0][0]] * 2) and scoped[1][:2] == pytest.approx([t[1][0]] * 2)


def test_questioner_only_leaves_the_diagnosis_untrained():
    ti = np.array([0, 0, -1, 1, 1, 1])
    content = np.array([False, False, False, False, True, True])  # "ANSWER:" then the diagnosis' two tokens
    eps = [EpisodeCredit(ti, ("ask", "answer"), (0.5, 0.0), True, True, content=content),
           EpisodeCredit(ti, ("ask", "answer"), (0.0, 0.0), False, True, content=content)]
    for credit in ("sig", "sig-mixed", "outcome"):
        full = credit_advantages(credit, eps, [0, 0])
        asker = credit_advantages(credit, eps, [0, 0], train_diagnosis=False)
        for f, a in zip(full, asker):
            assert np.allclose(a[content], 0.0) and np.allclose(a[~content], f[~content])


def test_scorer_correct_reads_the_revealed_facts():
    class FactTwoScorer:
        """Picks B (the gold) only once fact 2 is known."""

        id = "fact-two"

        def probs(self, queries):
            return [np.array([0.1, 0.7, 0.1, 0.1]) if any(f.id == 2 for f in q.facts) else
                    np.array([0.7, 0.1, 0.1, 0.1]) for q in queries]

    case, asked = _transcript(["ASK: Tell me about fact 2?", "ANSWER: A"])
    _, silent = _transcript(["ANSWER: B"])
    assert scorer_correct(case, asked, FactTwoScorer()) and not asked.correct  # the policy said A: wrong
    assert not scorer_correct(case, silent, FactTwoScorer()) and silent.correct
