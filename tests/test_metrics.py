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


def test_expected_calibration_error():
    import numpy as np
    import pytest

    from promed.eval.metrics import expected_calibration_error

    # a perfectly calibrated forecaster: confidence 0.7, right 7 times in 10
    p = np.array([[0.7, 0.1, 0.1, 0.1]] * 10)
    assert expected_calibration_error(p, [0] * 7 + [1] * 3) == pytest.approx(0.0)
    # always certain, right half the time: |0.5 - 1.0|
    q = np.eye(4)[[0] * 10]
    assert expected_calibration_error(q, [0] * 5 + [2] * 5) == pytest.approx(0.5)
    # two bins, weighted by their share: 4 cases at 0.9 all right (0.1), 6 at 0.3 (~0.35) with 2 right (1/3 - 0.3)
    r = np.array([[0.9, 0.1, 0, 0]] * 4 + [[0.3, 0.3, 0.2, 0.2]] * 6)
    gold = [0] * 4 + [0, 0, 1, 1, 2, 3]
    assert expected_calibration_error(r, gold) == pytest.approx(0.4 * 0.1 + 0.6 * abs(2 / 6 - 0.3))
    with pytest.raises(ValueError):
        expected_calibration_error(p, [0])
