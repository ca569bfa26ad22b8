"""The generators' decoding step used plainly, as the tests' reference for the packed
training forward and for beam search: one step at a time, no beams, no packing.

`state` is what `captioning.start` (or `attention.start`, with regions) returns for a
batch of images; these helpers only call `captioning.step` on it.
"""
import itertools

import numpy as np

from neuraltalk.models import captioning


def teacher_forced_log_likelihood(model, params, state, words, lengths):
    """Sum over the sentences of log p(w_1 .. w_n, END | image), fed their own words one
    step at a time: words (B, >= max length) with lengths (B,)."""
    B = len(lengths)
    targets = np.concatenate([np.asarray(words)[:, :max(lengths)],
                              np.zeros((B, 1), int)], axis=1)
    prev = np.zeros(B, int)  # START
    total = 0.0
    for t in range(max(lengths) + 1):
        logprobs, state = captioning.step(model, state, prev, params)
        scored = t <= lengths  # a sentence of n words is scored on n words and END
        target = np.where(t < lengths, targets[:, t], 0)
        total += logprobs[scored, target[scored]].sum()
        prev = targets[:, t]
    return total


def greedy(model, params, state, count, max_steps=20):
    """Greedy decoding of `count` images: for each, (sum of the chosen words' log
    probabilities, chosen words up to and with END, and when the model attends, each
    chosen word's attention weights (len, R))."""
    prev = np.zeros(count, int)
    done = np.zeros(count, bool)
    totals = np.zeros(count)
    words = [[] for _ in range(count)]
    weights = [[] for _ in range(count)]
    for _ in range(max_steps):
        logprobs, state = captioning.step(model, state, prev, params)
        prev = logprobs.argmax(1)
        for n in np.flatnonzero(~done):
            words[n].append(int(prev[n]))
            totals[n] += logprobs[n, prev[n]]
            if "alpha" in state:
                weights[n].append(state["alpha"][n])
        done |= prev == 0
        if done.all():
            break
    return [(totals[n], words[n], np.array(weights[n])) for n in range(count)]


def sentence_loss(Y, words):
    """NeuralTalk's cost of one sentence from its decoder scores Y (n + 1, V), row t
    scoring word t + 1 (the last row END): (sum of -log(1e-20 + p), the same in bits)."""
    P = np.exp(Y - Y.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    p = P[np.arange(len(words) + 1), list(words) + [0]]
    return -np.sum(np.log(1e-20 + p)), -np.sum(np.log2(1e-20 + p))


def best_sequence_by_brute_force(model, params, feat, V, steps):
    """(log probability, words) of the most likely sequence of at most `steps` words (a
    shorter one must end with END) for one image feature (D,), scoring every sequence."""
    best = (-np.inf, None)
    for length in range(1, steps + 1):
        for seq in itertools.product(range(V), repeat=length):
            if 0 in seq[:-1] or (length < steps and seq[-1] != 0):
                continue  # END only last; short sequences must end
            best = max(best, (sequence_log_probability(model, params, feat, seq), list(seq)))
    return best


def sequence_log_probability(model, params, feat, seq):
    """log p(seq | image) for one image feature (D,), step by step from START."""
    state = captioning.start(model, feat[None], params)
    prev, total = 0, 0.0
    for w in seq:
        logprobs, state = captioning.step(model, state, np.array([prev]), params)
        total += logprobs[0, w]
        prev = w
    return total
