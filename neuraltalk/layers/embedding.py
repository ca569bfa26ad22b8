"""Row lookup: out = W[idx], and its backward, the scatter-add of dout into W's rows."""
from collections import namedtuple

import numpy as np

EmbeddingCache = namedtuple("EmbeddingCache", ["idx", "n_rows"])


def embedding_forward(W, idx):
    """W (V, E), idx (N,) int -> out (N, E) = W[idx]."""
    return np.take(W, idx, axis=0), EmbeddingCache(np.asarray(idx), W.shape[0])


def embedding_backward(dout, cache):
    """dout (N, E) -> dW (V, E)."""
    return scatter_rows(cache.n_rows, cache.idx, dout)


def scatter_rows(n_rows, index, values):
    """dW (n_rows, E) with dW[i] = sum of values[r] over the rows r where index[r] == i,
    by sorting rather than np.add.at (which is many times slower)."""
    index = np.asarray(index).reshape(-1)
    values = values.reshape(len(index), -1)
    order = np.argsort(index, kind="stable")
    sorted_index = index[order]
    starts = np.flatnonzero(np.concatenate([[True], sorted_index[1:] != sorted_index[:-1]]))
    out = np.zeros((n_rows, values.shape[1]), values.dtype)
    if len(index):
        out[sorted_index[starts]] = np.add.reduceat(values[order], starts, axis=0)
    return out
