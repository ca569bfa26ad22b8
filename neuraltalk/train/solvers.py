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
    """Update `model` in place from `grads` (clipped in place); `cache` (dict of arrays) holds
    the solver state and is created on first use."""
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
        cache["adam_t"] = np.asarray(t)  # an array, as checkpoints require
        b1, b2 = params.get("adam_beta1", 0.9), params.get("adam_beta2", 0.999)
    for name, g in grads.items():
        x = model[name]
        if clip is not None and clip > 0:
            np.clip(g, -clip, clip, out=g)
        tmp = np.empty_like(x)  # scratch space for the rule's temporaries
        if solver == "vanilla":
            if momentum > 0:  # v = momentum*v - lr*g; x += v
                v = cache.setdefault(name, np.zeros_like(x))
                v *= momentum
                v -= np.multiply(g, lr, out=tmp)
                x += v
            else:
                x -= np.multiply(g, lr, out=tmp)
        elif solver in ("rmsprop", "adagrad", "adadelta"):
            r = cache.setdefault(name, np.zeros_like(x))
            g2 = np.multiply(g, g, out=tmp)
            if solver == "adagrad":
                r += g2
            else:  # r = decay*r + (1-decay)*g^2
                r *= decay
                g2 *= 1 - decay
                r += g2
            root = np.sqrt(np.add(r, eps, out=tmp), out=tmp)
            if solver == "adadelta":  # dx = -sqrt((u + eps)/(r + eps))*g; u = decay*u + (1-decay)*dx^2
                u = cache.setdefault(name + "_delta", np.zeros_like(x))
                dx = np.divide(np.sqrt(u + eps), root, out=tmp)
                dx *= g
                x -= dx
                u *= decay
                dx *= dx
                dx *= 1 - decay
                u += dx
            else:  # x -= lr*g / sqrt(r + eps)
                step = np.divide(g, root, out=tmp)
                step *= lr
                x -= step
        else:  # adam, with bias correction
            m = cache.setdefault(name + "_m", np.zeros_like(x))
            v = cache.setdefault(name + "_v", np.zeros_like(x))
            m *= b1
            m += np.multiply(g, 1 - b1, out=tmp)
            v *= b2
            g2 = np.multiply(g, g, out=tmp)
            g2 *= 1 - b2
            v += g2
            denom = np.sqrt(v, out=tmp)
            denom *= 1 / np.sqrt(1 - b2 ** t)
            denom += eps
            step = np.divide(m, denom, out=tmp)
            step *= lr / (1 - b1 ** t)
            x -= step
