"""Each solver's update against values worked out by hand."""
import math

import numpy as np
import pytest

from neuraltalk.train import solvers
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


@pytest.mark.parametrize("solver", solvers.SOLVERS)
def test_a_saved_cache_resumes_exactly(solver, tmp_path):
    from neuraltalk.train.checkpoint import load_checkpoint, save_checkpoint
    rng = np.random.default_rng(0)
    params = {"solver": solver, "learning_rate": 0.01, "grad_clip": 0.5, "momentum": 0.9,
              "decay_rate": 0.95, "smooth_eps": 1e-8, "adam_beta1": 0.9, "adam_beta2": 0.999}
    model = {"W": rng.normal(size=(4, 3)).astype(np.float32),
             "b": rng.normal(size=(1, 3)).astype(np.float32)}
    grads = [{k: rng.normal(size=v.shape).astype(np.float32) for k, v in model.items()}
             for _ in range(4)]
    straight, cache = {k: v.copy() for k, v in model.items()}, {}
    for g in grads:
        solvers.update(straight, {k: v.copy() for k, v in g.items()}, cache, params)
    resumed, cache = {k: v.copy() for k, v in model.items()}, {}
    for g in grads[:2]:
        solvers.update(resumed, {k: v.copy() for k, v in g.items()}, cache, params)
    save_checkpoint(str(tmp_path / "c.p"), {"model": resumed, "params": params, "solver_cache": cache})
    saved = load_checkpoint(str(tmp_path / "c.p"))
    resumed, cache = saved["model"], saved["solver_cache"]
    for g in grads[2:]:
        solvers.update(resumed, {k: v.copy() for k, v in g.items()}, cache, params)
    for k in model:
        assert resumed[k].dtype == np.float32
        np.testing.assert_array_equal(resumed[k], straight[k])
        assert not np.array_equal(straight[k], model[k])


def test_update_is_in_place_and_keeps_float32():
    model = {"w": np.array([1.0, -2.0], np.float32)}
    w = model["w"]
    g = np.array([10.0, -0.5], np.float32)
    cache = {}
    solvers.update(model, {"w": g}, cache, {"solver": "rmsprop", "learning_rate": 0.1,
                                            "grad_clip": 1.0, "decay_rate": 0.9,
                                            "smooth_eps": 1e-8})
    assert model["w"] is w and w.dtype == np.float32 and cache["w"].dtype == np.float32
    np.testing.assert_array_equal(g, [1.0, -0.5])  # clipped in place
