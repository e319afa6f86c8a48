import math

from promed.eval.metrics import compute_metrics, wilson_interval
from promed.types import Transcript, Turn


def test_wilson_interval_properties():
    lo, hi = wilson_interval(50, 100)
    assert math.isclose((lo + hi) / 2, 0.5) and 0.39 < lo < 0.41 and 0.59 < hi < 0.61
    assert wilson_interval(0, 10)[0] == 0.0 and math.isclose(wilson_interval(10, 10)[1], 1.0)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    # narrows with n
    assert (wilson_interval(500, 1000)[1] - wilson_interval(500, 1000)[0]) < (hi - lo)


def test_compute_metrics():
    trs = [
        Transcript("a", (Turn("q", "r", (0, 1), (0, 1), sig=0.5),), answer="A", correct=True, end="answer",
                   n_outputs=2),
        Transcript("b", (Turn("q", "r", (), (), sig=0.0), Turn("q2", "r", (2,), (2,), sig=0.25)), answer="B",
                   correct=False, end="budget", invalid=1, n_outputs=4),
    ]
    m = compute_metrics(trs, [4, 4], {"empty facts": 2}, with_sig=True)
    assert m.accuracy == 0.5 and m.n == 2 and m.mean_questions == 1.5
    assert m.fact_recall == (2 / 4 + 1 / 4) / 2
    assert m.invalid_rate == 1 / 6 and m.truncated_rate == 0.5
    assert math.isclose(m.mean_sig, 0.75 / 3) and math.isclose(m.total_sig, 0.75 / 2)
    assert compute_metrics(trs, [4, 4]).mean_sig is None
