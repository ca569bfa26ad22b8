"""out = x @ w + b over rows: one product for every row of a batch, packed steps included
(a time-distributed affine layer is this layer on the packed rows)."""
from collections import namedtuple

AffineCache = namedtuple("AffineCache", ["x", "w"])


def affine_forward(x, w, b=None):
    """x (N, D), w (D, M), b (1, M) or None -> out (N, M)."""
    out = x @ w
    if b is not None:
        out += b
    return out, AffineCache(x, w)


def affine_backward(dout, cache, need_dx=True):
    """dout (N, M) -> (dx (N, D) or None, dw (D, M), db (1, M))."""
    dx = dout @ cache.w.T if need_dx else None
    return dx, cache.x.T @ dout, dout.sum(0, keepdims=True)
