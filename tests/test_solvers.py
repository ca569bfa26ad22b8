"""Each solver's update against values worked out by hand."""
import math

import numpy as np
import pytest

from neuraltalk import solvers
from neuraltalk.errors import NeuralTalkError


def _step(solver, grads, x0=(1.0, -2.0), steps=1, **params):
    params = dict({"solver": solver, "learning_rate": 0.1, "grad_clip": 5, "momentum": 0.0,
                   "decay_rate": 0.9, "smooth_eps": 1e-8}, **params)
    model = {"w": np.array(x0)}
    cache = {}
    for g in grads[:steps]:
        solvers.update(model, {"w": np.array(g)}, cache, params)
    return model["w"], cache


def test_vanilla_sgd():
    w, _ = _step("vanilla", [[0.5, -1.0]])
    np.testing.assert_allclose(w, [1.0 - 0.05, -2.0 + 0.1])


def test_sgd_with_momentum_accumulates_velocity():
    # v1 = -0.1*g1 = [-0.05, 0.1]; v2 = 0.9*v1 - 0.1*g2 = [-0.045-0.05, 0.09+0.1]
    w, cache = _step("vanilla", [[0.5, -1.0], [0.5, -1.0]], steps=2, momentum=0.9)
    np.testing.assert_allclose(cache["w"], [-0.095, 0.19])
    np.testing.assert_allclose(w, [1.0 - 0.05 - 0.095, -2.0 + 0.1 + 0.19])


def test_rmsprop():
    # r = 0.9*0 + 0.1*g^2 = [0.025, 0.1]; x -= 0.1*g/sqrt(r + 1e-8)
    w, cache = _step("rmsprop", [[0.5, -1.0]])
    np.testing.assert_allclose(cache["w"], [0.025, 0.1])
    np.testing.assert_allclose(w, [1.0 - 0.05 / math.sqrt(0.025 + 1e-8),
                                   -2.0 + 0.1 / math.sqrt(0.1 + 1e-8)])


def test_adagrad_sums_squared_gradients():
    # r = 0.25 + 0.25 = 0.5 after two steps of g = 0.5
    w, cache = _step("adagrad", [[0.5, 0.0], [0.5, 0.0]], steps=2)
    np.testing.assert_allclose(cache["w"], [0.5, 0.0])
    expected = 1.0 - 0.05 / math.sqrt(0.25 + 1e-8) - 0.05 / math.sqrt(0.5 + 1e-8)
    assert w[0] == pytest.approx(expected) and w[1] == -2.0


def test_adadelta():
    # r = 0.1*g^2 = 0.025; dx = -sqrt((0 + eps)/(r + eps))*g; u = 0.1*dx^2
    g, eps = 0.5, 1e-8
    r = 0.1 * g * g
    dx = -math.sqrt(eps / (r + eps)) * g
    w, cache = _step("adadelta", [[g, 0.0]])
    assert w[0] == pytest.approx(1.0 + dx, abs=1e-15)
    assert cache["w_delta"][0] == pytest.approx(0.1 * dx * dx)


def test_adam_first_step_moves_by_the_learning_rate():
    # with bias correction m_hat = g, v_hat = g^2: x -= lr * g / (|g| + eps)
    w, cache = _step("adam", [[0.5, -1.0]], adam_beta1=0.9, adam_beta2=0.999)
    np.testing.assert_allclose(w, [1.0 - 0.1 * 0.5 / (0.5 + 1e-8), -2.0 + 0.1 * 1.0 / (1.0 + 1e-8)])
    assert cache["adam_t"] == 1


def test_adam_second_step():
    b1, b2, lr, eps = 0.9, 0.999, 0.1, 1e-8
    g1, g2 = 0.5, -0.25
    m = (1 - b1) * g1
    v = (1 - b2) * g1 ** 2
    x = 1.0 - lr * (m / (1 - b1)) / (math.sqrt(v / (1 - b2)) + eps)
    m = b1 * m + (1 - b1) * g2
    v = b2 * v + (1 - b2) * g2 ** 2
    x -= lr * (m / (1 - b1 ** 2)) / (math.sqrt(v / (1 - b2 ** 2)) + eps)
    w, _ = _step("adam", [[g1, 0.0], [g2, 0.0]], steps=2, adam_beta1=b1, adam_beta2=b2)
    assert w[0] == pytest.approx(x, rel=1e-12)


def test_gradients_are_clipped_elementwise_first():
    w, _ = _step("vanilla", [[50.0, -0.5]], grad_clip=1.0)
    np.testing.assert_allclose(w, [1.0 - 0.1, -2.0 + 0.05])


def test_unknown_solver():
    with pytest.raises(NeuralTalkError, match="unknown --solver 'sgdd'"):
        _step("sgdd", [[0.0, 0.0]])
