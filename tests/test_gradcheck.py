"""The gradient checker: it skips entries whose finite difference straddles a kink, and
still catches a wrong gradient."""
import numpy as np

from neuraltalk.train.gradcheck import check_gradients, gradient_errors


def _relu_cost(x, w):
    return lambda: float(np.maximum(x, 0) @ w)


def test_entries_exactly_at_a_relu_kink_are_skipped_and_counted():
    x = np.array([0.0, 0.0, 0.5, -0.5, 1.5])  # two entries on the kink
    w = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    right = (x > 0) * w  # the backward pass's choice at 0: the left slope
    worst, skipped = gradient_errors(_relu_cost(x, w), {"x": x}, {"x": right})
    assert skipped == {"x": 2}
    assert worst["x"] < 1e-9


def test_a_kink_just_beside_the_entry_is_skipped_too():
    x = np.array([1.3e-3, -0.7e-3, 1.0])  # kinks within 2h = 2e-3, off the centre
    w = np.array([1.0, 1.0, 1.0])
    worst, skipped = gradient_errors(_relu_cost(x, w), {"x": x}, {"x": (x > 0) * w},
                                     eps=1e-2)
    assert skipped == {"x": 2} and worst["x"] < 1e-9


def test_a_wrong_gradient_fails_on_a_piecewise_linear_cost():
    x = np.array([0.0, 0.5, -0.5, 1.5])
    w = np.array([1.0, 2.0, 3.0, 4.0])
    wrong = (x > 0) * w * 1.01
    assert check_gradients(_relu_cost(x, w), {"x": x}, {"x": wrong})["x"] > 1e-3


def test_a_smooth_cost_has_nothing_skipped():
    rng = np.random.default_rng(0)
    x = rng.normal(size=20)
    worst, skipped = gradient_errors(lambda: float(np.sum(np.tanh(x) ** 2)), {"x": x},
                                     {"x": 2 * np.tanh(x) / np.cosh(x) ** 2})
    assert skipped == {"x": 0} and worst["x"] < 1e-8


def test_the_checked_array_is_restored():
    x = np.array([0.0, 0.25, -1.0])
    before = x.copy()
    gradient_errors(_relu_cost(x, np.ones(3)), {"x": x}, {"x": (x > 0) * 1.0})
    np.testing.assert_array_equal(x, before)
