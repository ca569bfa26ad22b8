"""Parameter updates, as NeuralTalk's solver.py makes them, plus Adam.

Every gradient is first clipped elementwise to [-grad_clip, grad_clip] (when
grad_clip > 0). The cache (a dict of arrays) is the solver's whole state and goes into
checkpoints, so training resumes exactly.

- vanilla: x += -lr*g, or with momentum v = momentum*v - lr*g, x += v
- rmsprop: r = decay*r + (1-decay)*g^2, x -= lr*g / sqrt(r + eps)
- adagrad: r += g^2, x -= lr*g / sqrt(r + eps)
- adadelta: r = decay*r + (1-decay)*g^2, dx = -sqrt((u + eps)/(r + eps))*g,
  u = decay*u + (1-decay)*dx^2, x += dx
- adam: m = b1*m + (1-b1)*g, v = b2*v + (1-b2)*g^2, with bias correction,
  x -= lr*m_hat / (sqrt(v_hat) + eps)
"""
import numpy as np

from neuraltalk.errors import NeuralTalkError

SOLVERS = ("vanilla", "rmsprop", "adagrad", "adadelta", "adam")


def update(model, grads, cache, params):
    """Update `model` in place from `grads`; `cache` (dict) holds the solver state."""
    solver = params["solver"]
    if solver not in SOLVERS:
        raise NeuralTalkError("unknown --solver %r: use one of %s" % (solver, ", ".join(SOLVERS)))
    lr = params["learning_rate"]
    clip = params.get("grad_clip", -1)
    eps = params.get("smooth_eps", 1e-8)
    decay = params.get("decay_rate", 0.999)
    momentum = params.get("momentum", 0.0)
    if solver == "adam":
        t = cache.get("adam_t", np.zeros((), np.float64)) + 1
        cache["adam_t"] = t
        b1, b2 = params.get("adam_beta1", 0.9), params.get("adam_beta2", 0.999)
    for name, g in grads.items():
        x = model[name]
        if clip is not None and clip > 0:
            g = np.clip(g, -clip, clip)
        if solver == "vanilla":
            if momentum > 0:
                v = cache.setdefault(name, np.zeros_like(x))
                v *= momentum
                v -= lr * g
                x += v
            else:
                x -= lr * g
        elif solver in ("rmsprop", "adagrad", "adadelta"):
            r = cache.setdefault(name, np.zeros_like(x))
            if solver == "adagrad":
                r += g * g
            else:
                r *= decay
                r += (1 - decay) * (g * g)
            if solver == "adadelta":
                u = cache.setdefault(name + "_delta", np.zeros_like(x))
                dx = -np.sqrt((u + eps) / (r + eps)) * g
                u *= decay
                u += (1 - decay) * (dx * dx)
                x += dx
            else:
                x -= lr * g / np.sqrt(r + eps)
        else:
            m = cache.setdefault(name + "_m", np.zeros_like(x))
            v = cache.setdefault(name + "_v", np.zeros_like(x))
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * (g * g)
            x -= (lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)).astype(x.dtype)


def init_cache(model, params):
    """An empty solver state: update() creates each array the first time it needs it."""
    return {}
