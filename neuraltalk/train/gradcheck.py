"""Gradient checks: analytic gradients against centred finite differences, in float64.

The numerical derivative is the five-point centred difference
(f(x-2h) - 8 f(x-h) + 8 f(x+h) - f(x+2h)) / 12h, whose truncation error is O(h^4): it
allows a step large enough that round-off in the cost does not swamp small gradient
entries, so a relative error below 1e-6 is reachable on every entry.

relative error = |analytic - numerical| / max(|analytic| + |numerical|, 1e-12)

Kinks. ReLUs, max over regions and hinge losses make the cost piecewise smooth; where a
kink lies within [x-2h, x+2h] no finite difference estimates the derivative the backward
pass takes, and the check would cry wolf. The same five costs give two tests that a kink
fails and a smooth cost passes to O(h^2): the second-order one-sided estimates
(-3f(x) + 4f(x+h) - f(x+2h)) / 2h and (3f(x) - 4f(x-h) + f(x-2h)) / 2h agree, and the
centred estimates at steps h and 2h agree. A kink at offset d from x breaks at least one
of them by about |slope jump| / 7 for every d in (-2h, 2h), while its error in the
five-point estimate is at most about the slope jump: entries whose disagreement exceeds
KINK_TOLERANCE * |numerical| (so that a kink could explain a relative error of a few
1e-5, under the 1e-4 a check fails at) are skipped and counted, not checked.
"""
import numpy as np

KINK_TOLERANCE = 1e-5


def relative_error(analytic, numerical):
    return np.abs(analytic - numerical) / np.maximum(np.abs(analytic) + np.abs(numerical), 1e-12)


def five_point(cost, flat, i, h, f0):
    """The five-point derivative of cost() in flat[i] with step h, and how far the
    kink tests (module docstring) disagree."""
    old = flat[i]
    values = []
    for step in (-2, -1, 1, 2):  # one forward pass per side and step: unavoidable
        flat[i] = old + step * h
        values.append(cost())
    flat[i] = old
    fm2, fm1, fp1, fp2 = values
    numerical = (fm2 - 8 * fm1 + 8 * fp1 - fp2) / (12 * h)
    forward = (-3 * f0 + 4 * fp1 - fp2) / (2 * h)
    backward = (3 * f0 - 4 * fm1 + fm2) / (2 * h)
    centred_h = (fp1 - fm1) / (2 * h)
    centred_2h = (fp2 - fm2) / (4 * h)
    return numerical, max(abs(forward - backward), abs(centred_h - centred_2h))


def gradient_errors(cost, arrays, analytic, eps=1e-3, max_entries=None, rng=None,
                    min_magnitude=0.0, kink_tolerance=KINK_TOLERANCE):
    """(worst relative error per array, number of entries skipped at a kink per array).

    cost: () -> float, reading the arrays of `arrays` (dict name -> float64 array),
    which are perturbed in place and restored. analytic: dict name -> gradient.
    max_entries: check at most this many random entries per array (None: all).
    Entries where both gradients are below min_magnitude are skipped (pure round-off).
    kink_tolerance: see the module docstring (None: check every entry, kinks or not).
    An entry at a kink is tried again with a step 10 times smaller, which moves most
    kinks out of the stencil, before it is skipped.
    """
    rng = rng or np.random.default_rng(0)
    f0 = cost()
    worst, skipped = {}, {}
    for name, x in arrays.items():
        flat = x.reshape(-1)
        entries = np.arange(flat.size)
        if max_entries is not None and flat.size > max_entries:
            entries = rng.choice(flat.size, max_entries, replace=False)
        g = analytic[name].reshape(-1)
        errors = [0.0]
        skipped[name] = 0
        for i in entries:
            for h in (eps, eps / 10):
                numerical, disagreement = five_point(cost, flat, i, h, f0)
                # the cost's own round-off, as it shows in a difference quotient
                round_off = 8 * np.finfo(np.float64).eps * max(1.0, abs(f0)) / h
                at_kink = (kink_tolerance is not None and
                           disagreement > kink_tolerance * abs(numerical) + round_off)
                if not at_kink:
                    break
            if max(abs(numerical), abs(g[i])) < min_magnitude:
                continue
            if at_kink:
                skipped[name] += 1
                continue
            errors.append(float(relative_error(g[i], numerical)))
        worst[name] = max(errors)
    return worst, skipped


def check_gradients(cost, arrays, analytic, eps=1e-3, max_entries=None, rng=None,
                    min_magnitude=0.0, kink_tolerance=KINK_TOLERANCE):
    """Worst relative error per array (see gradient_errors; entries at kinks skipped)."""
    return gradient_errors(cost, arrays, analytic, eps, max_entries, rng, min_magnitude,
                           kink_tolerance)[0]


def check_task_gradients(task, model, batch, max_entries=40, rng=None):
    """Check every parameter of `model` (float64) on `batch` without dropout: (worst
    relative error per parameter, entries skipped at a kink per parameter).

    Entries whose gradient is below 1e-7 either way are skipped: on real data (sparse
    features, rare words) they are pure round-off of the cost.
    """
    cost, grads = task.cost(model, batch, None)
    return gradient_errors(lambda: task.cost(model, batch, None)[0]["total_cost"],
                           {k: model[k] for k in task.update_keys}, grads,
                           max_entries=max_entries, rng=rng, min_magnitude=1e-7)
