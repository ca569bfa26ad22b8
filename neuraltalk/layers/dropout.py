"""Inverted dropout with an explicit mask: out = x * mask, mask = keep / (1 - p).

The mask is drawn once and passed in, so a gradient check can fix it and a data-parallel
run can draw the same mask for a sentence whichever process holds it."""
import numpy as np


def dropout_mask(shape, p, rng, dtype=np.float32):
    """A mask of `shape`: 1/(1-p) where kept (probability 1-p), 0 where dropped; None when
    p is 0 or rng is None (no dropout, as in evaluation)."""
    if rng is None or p <= 0:
        return None
    keep = rng.random(shape, dtype=np.float32) < 1 - p
    return np.multiply(keep, 1.0 / (1 - p), dtype=dtype)


def dropout_forward(x, mask):
    """x (..., D) -> x * mask (a new array); x itself when mask is None."""
    return x if mask is None else x * mask


def dropout_backward(dout, mask):
    return dout if mask is None else dout * mask
