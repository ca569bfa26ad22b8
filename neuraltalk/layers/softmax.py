"""Softmax cross-entropy over rows, as NeuralTalk scores a word: -log(1e-20 + p[target]).

The backward pass takes per-row weights: the gradient of sum_r w_r * loss_r, so the same
layer gives the batch average (w = 1/B), or a policy gradient's advantage-weighted
log-likelihood (w = -advantage / B). Like NeuralTalk, the gradient is w_r * (p - onehot),
leaving out the 1e-20's vanishing effect.
"""
from collections import namedtuple

import numpy as np

from neuraltalk.layers.blas import in_row_chunks

SoftmaxCache = namedtuple("SoftmaxCache", ["P", "row_sums", "targets"])


def softmax_cross_entropy_forward(Y, targets):
    """Y (N, V) logits, targets (N,) int -> (losses (N,) float64, cache).

    losses[r] = -log(1e-20 + softmax(Y[r])[targets[r]]). Y is overwritten: the cache holds
    the unnormalised probabilities in its place (the vocabulary-wide exp is the biggest
    temporary of a caption model, so it is made once)."""
    row_sums = np.empty(len(Y), Y.dtype)

    def rows(r):  # the rows are independent: the exp runs on every core (see blas.py)
        y = Y[r]
        y -= y.max(1, keepdims=True)
        np.exp(y, out=y)
        row_sums[r] = y.sum(1)
    in_row_chunks(rows, len(Y))
    P = Y
    p_target = P[np.arange(len(P)), targets] / row_sums
    losses = -np.log(1e-20 + p_target.astype(np.float64))
    return losses, SoftmaxCache(P, row_sums, targets)


def softmax_cross_entropy_backward(row_weights, cache):
    """row_weights (N,) (or a scalar) -> dY (N, V), the gradient of sum_r w_r losses[r].
    Consumes the cache: dY is built in place of its probabilities."""
    P = cache.P
    w = np.broadcast_to(np.asarray(row_weights, dtype=np.float64), cache.row_sums.shape)
    dY = P
    scale = (w / cache.row_sums).astype(P.dtype)[:, None]

    def rows(r):
        dY[r] *= scale[r]
    in_row_chunks(rows, len(P))
    dY[np.arange(len(P)), cache.targets] -= w.astype(P.dtype)
    return dY


def log_softmax(Y):
    """log(1e-20 + softmax(Y)) per row (N, V): how NeuralTalk scores words when decoding."""
    e = np.exp(Y - Y.max(1, keepdims=True))
    return np.log(1e-20 + e / e.sum(1, keepdims=True))
