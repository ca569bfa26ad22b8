"""The packed layout of a batch of sequences: time-major, sorted by length, no padding.

Sequence b has lengths[b] steps. The sequences are sorted by decreasing length (stably),
and step t holds the first counts[t] sorted sequences, those with more than t steps; the
rows of step t follow those of step t-1. So a batch of N = sum(lengths) steps is an
(N, ...) array whose steps are contiguous blocks, and a recurrence runs each step on a
shrinking prefix of the previous step's block:

    step 0: rows offsets[0] .. offsets[0] + counts[0]   (every sequence with a step)
    step t: rows offsets[t] .. offsets[t] + counts[t]   (sorted sequences 0 .. counts[t]-1)

Row offsets[t] + j is sorted sequence j at step t, whose previous step is row
offsets[t-1] + j and whose next step (if counts[t+1] > j) is row offsets[t+1] + j.
"""
from collections import namedtuple

import numpy as np

Packing = namedtuple("Packing", [
    "order",     # (B,) the batch's sequences in decreasing order of length (stable)
    "counts",    # (S,) sequences running at step t: #(lengths > t), non-increasing
    "offsets",   # (S + 1,) the first row of each step, and N at the end
    "sequence",  # (N,) the sorted sequence of each packed row
    "step",      # (N,) the step of each packed row
])


def pack(lengths):
    """The Packing of sequences with `lengths` (B,) steps each (0 allowed: no rows)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")
    n = lengths[order]
    S = int(n[0]) if len(n) else 0
    counts = (n[None, :] > np.arange(S)[:, None]).sum(1)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    sequence = np.concatenate([np.arange(k) for k in counts] + [np.zeros(0, np.int64)])
    step = np.repeat(np.arange(S), counts)
    return Packing(order, counts, offsets, sequence, step)


def step_offsets(counts):
    """(S + 1,) the first row of each step of a packed sequence with `counts` rows per step."""
    return np.concatenate([[0], np.cumsum(np.asarray(counts, dtype=np.int64))]).astype(np.int64)


def previous_rows(counts):
    """For every row of steps 1.., the row of the same sequence at the step before."""
    offsets = step_offsets(counts)
    return np.concatenate([np.arange(offsets[t - 1], offsets[t - 1] + counts[t])
                           for t in range(1, len(counts))] + [np.zeros(0, np.int64)])


def next_rows(counts):
    """For every row that has a next step, (its row, the row of that next step)."""
    offsets = step_offsets(counts)
    rows = previous_rows(counts)
    return rows, np.arange(offsets[1] if len(counts) > 1 else 0, offsets[-1])


Layout = namedtuple("Layout", [
    "order",     # (B,) the batch's sentences in decreasing order of length (stable)
    "counts",    # (S,) sentences still running at word step t (t = 0 feeds START): #(n >= t)
    "sentence",  # (N,) the sorted sentence of each packed row
    "step",      # (N,) the word step of each packed row
    "inputs",    # (N,) the word fed at that row: START (0) at step 0, else w_t
    "targets",   # (N,) the word to predict there: w_{t+1}, or END (0) after the last word
])


def layout(words, lengths):
    """The teacher-forced layout of a caption batch: the packing of n_b + 1 steps per
    sentence (START, w_1..w_n fed; w_1..w_n, END predicted).

    words (B, T) int, lengths (B,) int n_b. Index 0 is both START and END, as in NeuralTalk.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    p = pack(lengths + 1)
    B, S = len(lengths), len(p.counts)
    n = lengths[p.order]
    W = np.zeros((B, S + 1), dtype=np.int64)
    W[:, 1:1 + min(words.shape[1], S)] = np.asarray(words)[p.order, :S]
    W[np.arange(S + 1)[None, :] > n[:, None]] = 0  # ignore anything past n_b
    inputs = W[p.sequence, p.step]  # W[:, 0] = START
    targets = W[p.sequence, p.step + 1]  # 0 = END after the last word
    return Layout(p.order, p.counts, p.sequence, p.step, inputs, targets)
