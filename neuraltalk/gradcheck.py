"""Gradient checks: analytic gradients against centred finite differences, in float64.

The numerical derivative is the five-point centred difference
(f(x-2h) - 8 f(x-h) + 8 f(x+h) - f(x+2h)) / 12h, whose truncation error is O(h^4): it
allows a step large enough that round-off in the cost does not swamp small gradient
entries, so a relative error below 1e-6 is reachable on every entry.

relative error = |analytic - numerical| / max(|analytic| + |numerical|, 1e-12)
"""
import numpy as np


def relative_error(analytic, numerical):
    return np.abs(analytic - numerical) / np.maximum(np.abs(analytic) + np.abs(numerical), 1e-12)


def check_gradients(cost, arrays, analytic, eps=1e-3, max_entries=None, rng=None,
                    min_magnitude=0.0):
    """Worst relative error per array.

    cost: () -> float, reading the arrays of `arrays` (dict name -> float64 array),
    which are perturbed in place and restored. analytic: dict name -> gradient.
    max_entries: check at most this many random entries per array (None: all).
    Entries where both gradients are below min_magnitude are skipped (pure round-off).
    """
    rng = rng or np.random.default_rng(0)
    worst = {}
    for name, x in arrays.items():
        flat = x.reshape(-1)
        entries = np.arange(flat.size)
        if max_entries is not None and flat.size > max_entries:
            entries = rng.choice(flat.size, max_entries, replace=False)
        g = analytic[name].reshape(-1)
        errors = [0.0]
        for i in entries:  # one forward pass per entry and side: unavoidable
            old = flat[i]
            values = []
            for step in (-2, -1, 1, 2):
                flat[i] = old + step * eps
                values.append(cost())
            flat[i] = old
            numerical = (values[0] - 8 * values[1] + 8 * values[2] - values[3]) / (12 * eps)
            if max(abs(numerical), abs(g[i])) < min_magnitude:
                continue
            errors.append(float(relative_error(g[i], numerical)))
        worst[name] = max(errors)
    return worst


def check_task_gradients(task, model, batch, max_entries=40, rng=None):
    """Check every parameter of `model` (float64) on `batch` without dropout.

    Entries whose gradient is below 1e-7 either way are skipped: on real data (sparse
    features, rare words) they are pure round-off of the cost.
    """
    cost, grads = task.cost(model, batch, None)
    return check_gradients(lambda: task.cost(model, batch, None)[0]["total_cost"],
                           {k: model[k] for k in task.update_keys}, grads,
                           max_entries=max_entries, rng=rng, min_magnitude=1e-7)
