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
from neuraltalk.layers.blas import in_row_chunks

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
    b1 = b2 = t = None
    if solver == "adam":
        t = cache.get("adam_t", np.zeros((), np.float64)) + 1
        cache["adam_t"] = np.asarray(t)  # an array, as checkpoints require
        b1, b2 = params.get("adam_beta1", 0.9), params.get("adam_beta2", 0.999)
    for name, g in grads.items():
        x = model[name]
        names = {"vanilla": ("",) if momentum > 0 else (), "rmsprop": ("",), "adagrad": ("",),
                 "adadelta": ("", "_delta"), "adam": ("_m", "_v")}[solver]
        state = [cache.setdefault(name + suffix, np.zeros_like(x)) for suffix in names]
        tmp = np.empty_like(x)  # scratch space for the rule's temporaries
        arrays = [x, g, tmp] + state
        if all(a.flags.c_contiguous for a in arrays):  # row views of the same memory
            arrays = [a.reshape(len(a), -1) if a.ndim > 1 else a.reshape(1, -1) for a in arrays]
        else:  # one block
            arrays = [a[None] for a in arrays]

        def rows(r, arrays=arrays):  # elementwise: the rows run on every core (see blas.py)
            _rule(solver, *[a[r] for a in arrays], lr=lr, clip=clip, eps=eps, decay=decay,
                  momentum=momentum, b1=b1, b2=b2, t=t)
        in_row_chunks(rows, len(arrays[0]))


def _rule(solver, x, g, tmp, *state, lr, clip, eps, decay, momentum, b1, b2, t):
    """One solver's update of x (in place) from g (clipped in place), on any block of
    rows of a parameter and of its state arrays."""
    if clip is not None and clip > 0:
        np.clip(g, -clip, clip, out=g)
    if solver == "vanilla":
        if momentum > 0:  # v = momentum*v - lr*g; x += v
            v, = state
            v *= momentum
            v -= np.multiply(g, lr, out=tmp)
            x += v
        else:
            x -= np.multiply(g, lr, out=tmp)
    elif solver in ("rmsprop", "adagrad", "adadelta"):
        r = state[0]
        g2 = np.multiply(g, g, out=tmp)
        if solver == "adagrad":
            r += g2
        else:  # r = decay*r + (1-decay)*g^2
            r *= decay
            g2 *= 1 - decay
            r += g2
        root = np.sqrt(np.add(r, eps, out=tmp), out=tmp)
        if solver == "adadelta":  # dx = -sqrt((u + eps)/(r + eps))*g; u = decay*u + (1-decay)*dx^2
            u = state[1]
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
        m, v = state
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
