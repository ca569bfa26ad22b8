"""An LSTM over a packed sequence, and the single step decoding uses: one cell, written once.

Gate pre-activations a_t = p_t + h_{t-1} Wh, where p_t is the input projection of step t
(made by the caller: x_t Wx + b, so an image step is just the first input row and one LSTM
can be fed another's output), columns ordered i, f, o, g:
  i, f, o = sigmoid(a[i, f, o]);  g = tanh(a[g])
  c_t = i*g + f*c_{t-1};  h_t = o*c_t  (o*tanh(c_t) with tanhC, NeuralTalk's tanhC_version)
with h_{-1} = h0, c_{-1} = c0 (zero when not given). Rows are packed (see packed.py): step
t runs on counts[t] rows, a prefix of step t-1's.

sigmoid(z) = (1 + tanh(z/2)) / 2: one tanh over all four gates of a step, much faster
than exp, and exact to round-off; the i, f, o pre-activations are halved first (exact).
"""
from collections import namedtuple

import numpy as np

from neuraltalk.layers.blas import in_sequence_groups
from neuraltalk.layers.packed import previous_rows, step_offsets

LSTMCache = namedtuple("LSTMCache", [
    "gates",    # (N, 4H) i, f, o, g of every row (the forward pass's input projection, reused)
    "C",        # (N, H) cell states
    "H",        # (N, H) hidden states (the output)
    "Wh",       # (H, 4H) recurrent weights
    "counts",   # (S,) rows per step
    "h0", "c0",  # (counts[0], H) initial states, or None
    "tanhC",    # h = o * tanh(c) instead of o * c
])


def lstm_cell(a, c_prev, c_out, h_out, tanhC, buf):
    """One step on k rows, in place: a (k, 4H) pre-activations (i, f, o columns halved)
    become the gates; c_out, h_out (k, H) receive c_t, h_t; c_prev (k, H) or None (zero);
    buf (>= k, >= H) scratch. The same code serves training and decoding."""
    H = a.shape[1] // 4
    k = len(a)
    np.tanh(a, out=a)
    a[:, :3 * H] += 1
    a[:, :3 * H] *= 0.5  # i, f, o = sigmoid; g = tanh
    c = np.multiply(a[:, :H], a[:, 3 * H:], out=c_out)
    if c_prev is not None:
        c += np.multiply(a[:, H:2 * H], c_prev, out=buf[:k, :H])
    if tanhC:
        np.multiply(a[:, 2 * H:3 * H], np.tanh(c, out=buf[:k, :H]), out=h_out)
    else:
        np.multiply(a[:, 2 * H:3 * H], c, out=h_out)


def _halved(Wh):
    W = Wh.copy()
    W[:, :3 * (Wh.shape[1] // 4)] *= 0.5
    return W


def lstm_forward(P, Wh, counts, h0=None, c0=None, tanhC=False):
    """P (N, 4H) input projections of the packed rows (overwritten: the cache keeps the
    gates in its place); Wh (H, 4H); counts (S,) rows per step; h0, c0 (counts[0], H) or
    None. Returns H (N, H), the hidden state of every row, and the cache."""
    H = Wh.shape[0]
    offsets = step_offsets(counts)
    P[:, :3 * H] *= 0.5
    Whalf = _halved(Wh)
    C = np.empty((len(P), H), P.dtype)
    Hout = np.empty((len(P), H), P.dtype)
    buf = np.empty((int(counts[0]) if len(counts) else 0, 4 * H), P.dtype)

    def sequences(lo, hi):  # the recurrence of sequences lo..hi-1: the only loop, over time
        for t, k in enumerate(counts):
            k = min(int(k), hi)
            if k <= lo:
                break  # counts do not increase
            cur = slice(offsets[t] + lo, offsets[t] + k)
            a, b = P[cur], buf[lo:k]
            if t > 0:
                prev = slice(offsets[t - 1] + lo, offsets[t - 1] + k)
                a += np.matmul(Hout[prev], Whalf, out=b)
                c_prev = C[prev]
            else:
                if h0 is not None:
                    a += np.matmul(h0[lo:k], Whalf, out=b)
                c_prev = c0[lo:k] if c0 is not None else None
            lstm_cell(a, c_prev, C[cur], Hout[cur], tanhC, b)
    in_sequence_groups(sequences, counts)
    return Hout, LSTMCache(P, C, Hout, Wh, np.asarray(counts), h0, c0, tanhC)


def lstm_backward(dH, cache):
    """dH (N, H) -> (dP (N, 4H), dWh (H, 4H), dh0, dc0 (counts[0], H) or None when the
    forward pass had no h0 / c0). dH is left as it was."""
    gates, C, Hout, Wh, counts, h0, c0, tanhC = cache
    H = Wh.shape[0]
    offsets = step_offsets(counts)
    B = int(counts[0]) if len(counts) else 0
    dHout = dH.copy()
    dP = np.empty_like(gates)
    dC = np.zeros((B, H), dH.dtype)  # gradient on c_t from step t+1, per row of step 0
    buf = np.empty((B, 4 * H), dH.dtype)
    hbuf = np.empty((B, H), dH.dtype)
    Wh_T = np.ascontiguousarray(Wh.T)  # each step's product ran ~1.5x slower with the view

    def sequences(lo, hi):  # the recurrence of sequences lo..hi-1, backwards in time
        for t in reversed(range(len(counts))):
            k = min(int(counts[t]), hi)
            if k <= lo:
                continue
            cur = slice(offsets[t] + lo, offsets[t] + k)
            a, d, dh, dc = gates[cur], dP[cur], dHout[cur], dC[lo:k]
            i, f, o, g = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
            tmp = buf[lo:k, :H]
            if tanhC:
                tc = np.tanh(C[cur], out=buf[lo:k, H:2 * H])
                np.multiply(tc, dh, out=d[:, 2 * H:3 * H])
                np.multiply(tc, tc, out=tmp)
                np.subtract(1, tmp, out=tmp)
                tmp *= o
                tmp *= dh
                dc += tmp
            else:
                np.multiply(C[cur], dh, out=d[:, 2 * H:3 * H])
                dc += np.multiply(o, dh, out=tmp)
            if t > 0:
                c_prev = C[offsets[t - 1] + lo:offsets[t - 1] + k]
            else:
                c_prev = c0[lo:k] if c0 is not None else None
            if c_prev is not None:
                np.multiply(c_prev, dc, out=d[:, H:2 * H])
            else:
                d[:, H:2 * H] = 0  # c_{-1} = 0: the forget gate of step 0 has no effect
            np.multiply(g, dc, out=d[:, :H])
            # sigmoid' = y(1-y) on i, f, o; tanh' = 1-y^2 on g
            y = buf[lo:k, :3 * H]
            np.subtract(1, a[:, :3 * H], out=y)
            y *= a[:, :3 * H]
            d[:, :3 * H] *= y
            np.multiply(g, g, out=tmp)
            np.subtract(1, tmp, out=tmp)
            tmp *= i
            np.multiply(tmp, dc, out=d[:, 3 * H:])
            if t > 0:
                prev = slice(offsets[t - 1] + lo, offsets[t - 1] + k)
                dHout[prev] += np.matmul(d, Wh_T, out=hbuf[lo:k])
                dc *= f
    in_sequence_groups(sequences, counts)
    dWh = Hout[previous_rows(counts)].T @ dP[B:]
    dh0 = dc0 = None
    if h0 is not None:
        dWh += h0.T @ dP[:B]
        dh0 = dP[:B] @ Wh_T
    if c0 is not None:
        dc0 = dC * gates[:B, H:2 * H]
    return dP, dWh, dh0, dc0


def lstm_step(p, h_prev, c_prev, Wh, tanhC=False):
    """One step for decoding: p (B, 4H) input projections (overwritten), h_prev, c_prev
    (B, H) -> (h, c). The same cell as lstm_forward, bit for bit: halving after the sum
    is exact, as halving before it is."""
    H = Wh.shape[0]
    a = p
    a += h_prev @ Wh
    a[:, :3 * H] *= 0.5
    h = np.empty((len(a), H), a.dtype)
    c = np.empty((len(a), H), a.dtype)
    lstm_cell(a, c_prev, c, h, tanhC, np.empty((len(a), H), a.dtype))
    return h, c
