"""A vanilla RNN over a packed sequence, forward or reversed, and one step of it.

  forward:   h_t = f(a_t + h_{t-1} Wh),  h_{-1} = h0 (zero when not given)
  reversed:  h_t = f(a_t + h_{t+1} Wh),  from each sequence's own last step
with f = ReLU or tanh and a_t the input part of the pre-activation (x_t Wx + b, and
whatever else the model adds), made by the caller. Rows are packed (see packed.py). The
multimodal RNN of NeuralTalk runs it forward; the alignment model's BRNN both ways.
"""
from collections import namedtuple

import numpy as np

from neuraltalk.layers.blas import in_sequence_groups
from neuraltalk.layers.packed import next_rows, previous_rows, step_offsets

RNNCache = namedtuple("RNNCache", ["H", "Wh", "counts", "h0", "reverse", "nonlinearity"])


def _activate(a, nonlinearity):
    if nonlinearity == "relu":
        np.clip(a, 0, np.inf, out=a)  # NumPy 2.4's maximum with a scalar: 3-4x slower
    else:
        np.tanh(a, out=a)


def _local_gradient(dz, h, nonlinearity):
    """dz *= f'(pre-activation), from the output h: ReLU: h > 0; tanh: 1 - h^2."""
    if nonlinearity == "relu":
        dz *= h > 0
    else:
        dz *= 1 - h * h


def _step_order(counts, reverse):
    return reversed(range(len(counts))) if reverse else range(len(counts))


def rnn_forward(A, Wh, counts, h0=None, reverse=False, nonlinearity="relu"):
    """A (N, H) input parts of the pre-activations (overwritten by the hidden states);
    Wh (H, H); counts (S,) rows per step; h0 (counts[0], H) or None (forward only).
    Returns H (N, H) and the cache."""
    if reverse and h0 is not None:
        raise ValueError("a reversed RNN starts at each sequence's last step: no h0")
    offsets = step_offsets(counts)
    buf = np.empty((int(counts[0]) if len(counts) else 0, Wh.shape[1]), A.dtype)

    def sequences(lo, hi):  # the recurrence of sequences lo..hi-1: the only loop, over time
        for t in _step_order(counts, reverse):
            k = min(int(counts[t]), hi)
            if k <= lo:
                continue
            a = A[offsets[t] + lo:offsets[t] + k]
            if not reverse and t > 0:
                a += np.matmul(A[offsets[t - 1] + lo:offsets[t - 1] + k], Wh, out=buf[lo:k])
            elif not reverse and h0 is not None:
                a += np.matmul(h0[lo:k], Wh, out=buf[lo:k])
            elif reverse and t + 1 < len(counts):
                n = min(int(counts[t + 1]), hi)  # the sequences that have a step t+1
                if n > lo:
                    a[:n - lo] += np.matmul(A[offsets[t + 1] + lo:offsets[t + 1] + n], Wh,
                                            out=buf[lo:n])
            _activate(a, nonlinearity)
    in_sequence_groups(sequences, counts)  # groups of sequences on threads: see blas.py
    return A, RNNCache(A, Wh, np.asarray(counts), h0, reverse, nonlinearity)


def rnn_backward(dH, cache):
    """dH (N, H) -> (dA (N, H), dWh (H, H), dh0 (counts[0], H) or None)."""
    H, Wh, counts, h0, reverse, nonlinearity = cache
    offsets = step_offsets(counts)
    dA = dH.copy()
    Wh_T = np.ascontiguousarray(Wh.T)  # a transposed view multiplied ~1.5x slower (lstm.py)
    dWh = np.zeros_like(Wh)
    buf = np.empty((int(counts[0]) if len(counts) else 0, Wh.shape[0]), dA.dtype)

    def sequences(lo, hi):
        for t in _step_order(counts, not reverse):
            k = min(int(counts[t]), hi)
            if k <= lo:
                continue
            cur = slice(offsets[t] + lo, offsets[t] + k)
            dz = dA[cur]
            _local_gradient(dz, H[cur], nonlinearity)  # dA becomes d(pre-activation) here
            if not reverse and t > 0:
                prev = slice(offsets[t - 1] + lo, offsets[t - 1] + k)
                dA[prev] += np.matmul(dz, Wh_T, out=buf[lo:k])
            elif reverse and t + 1 < len(counts):
                n = min(int(counts[t + 1]), hi)
                if n > lo:
                    nxt = slice(offsets[t + 1] + lo, offsets[t + 1] + n)
                    dA[nxt] += np.matmul(dz[:n - lo], Wh_T, out=buf[lo:n])
    in_sequence_groups(sequences, counts)
    # dWh from one product over every row that had a recurrent input
    if reverse:
        rows, source = next_rows(counts)
        dWh = H[source].T @ dA[rows]
    elif len(counts) > 1:
        dWh = H[previous_rows(counts)].T @ dA[offsets[1]:]
    dh0 = None
    if h0 is not None:
        B = int(counts[0])
        dWh += h0.T @ dA[:B]
        dh0 = dA[:B] @ Wh_T
    return dA, dWh, dh0


def rnn_step(a, h_prev, Wh, nonlinearity="relu"):
    """One forward step for decoding: a (B, H) input parts, h_prev (B, H) -> h (B, H)."""
    a = a + h_prev @ Wh
    _activate(a, nonlinearity)
    return a
