"""Timing the project and PyTorch on the same work, side by side, without one slowing the other.

The benchmarks used to call the two one after the other, call by call (one NumPy step, one
PyTorch step, ...), so that a change of machine load fell on both alike. Measured on the
2-core machine, that made PyTorch's figures up to twice as bad as PyTorch's own steps run
back to back, while the project's were unaffected: LSTM training at config A, PyTorch
436-572 sentences/s interleaved against 812-929 in blocks; the project 953-1004 both ways.
(Each library leaves the other the cores in a state that costs it: OpenBLAS's threads
spin for a while after a call, PyTorch's find the caches and their own pool cold.) So the
ratios those runs printed flattered the project by up to 1.7 times.

Now each side runs in blocks of consecutive calls, the first call of a block untimed (it
pays the switch from the other side), and the blocks alternate for several rounds, so
that a drift of the machine's load still falls on every side.
"""
import time


def alternate(sides, rounds, repeats):
    """sides: {name: fn(i)}, each fn doing one call of its work on input i (i counts the
    calls of that side from 0). Runs `rounds` rounds; in each, every side in turn makes
    a block of consecutive calls, the first untimed, so that each side has at least
    `repeats` timed calls (timed_calls of them). Returns {name: [(i, seconds), ...]}."""
    per_block = timed_calls(rounds, repeats) // rounds + 1
    timed = {name: [] for name in sides}
    count = {name: 0 for name in sides}
    for _ in range(rounds):
        for name, fn in sides.items():
            for j in range(per_block):
                i = count[name]
                t0 = time.perf_counter()
                fn(i)
                t = time.perf_counter() - t0
                count[name] += 1
                if j > 0:
                    timed[name].append((i, t))
    return timed


def timed_calls(rounds, repeats):
    """How many calls of each side alternate(sides, rounds, repeats) times."""
    return rounds * max(1, -(-repeats // rounds))


METHOD = ("each side in blocks of consecutive calls (the first untimed), the blocks "
          "alternating for %d rounds")
