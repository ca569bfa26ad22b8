"""Inference layers in NumPy, float32, batched, channels last: x (N, H, W, C).

Convolution weights are (kh, kw, C_in / groups, C_out). A convolution is one matrix
product over im2col patches, built and multiplied in cache-sized chunks; a 1 x 1
convolution is a plain product; a depthwise one (groups == channels) sums its kh*kw
taps with one np.einsum over a strided view of the padded input, never building the
patch matrix; a 3 x 3, stride-1 one of 64 channels or more uses Winograd's F(2x2, 3x3).
Bias and activation are applied to each chunk of output as it is made. The chunks of a
large layer run on as many Python threads as BLAS threads, each with one BLAS thread
(blas.in_threads), so that the copies, transforms, sums and epilogues use every core,
not only the products; a small layer runs on the calling thread (see THREADS_MIN_MACS).
Batch normalisation is folded into the convolution before inference.
"""
import threading
import weakref

import numpy as np
from numpy.lib.stride_tricks import as_strided

from neuraltalk.layers import blas


def pad_amounts(size, kernel, stride, padding):
    """(before, after) padding of one axis: an int pads both sides, 'same' pads as
    TensorFlow does (the extra pixel, if any, after)."""
    if padding == "same":
        out = -(-size // stride)
        total = max((out - 1) * stride + kernel - size, 0)
        return total // 2, total - total // 2
    return padding, padding


def pad(x, kh, kw, stride, padding, value=0.0):
    top, bottom = pad_amounts(x.shape[1], kh, stride, padding)
    left, right = pad_amounts(x.shape[2], kw, stride, padding)
    if not (top or bottom or left or right):
        return x
    N, H, W, C = x.shape
    out = np.empty((N, H + top + bottom, W + left + right, C), dtype=x.dtype)
    out[:, :top] = value
    out[:, top + H:] = value
    out[:, top:top + H, :left] = value
    out[:, top:top + H, left + W:] = value
    copy_in_threads(out[:, top:top + H, left:left + W], x)
    return out


def padded_rows(x, n0, n1, r0, r1, top, left, right):
    """Rows r0:r1 of images n0:n1 of x (N, H, W, C) padded with zeros (top rows above,
    left and right columns, zero rows below), in a buffer of this thread's. A chunk
    pads its own rows while they are in cache: the whole padded batch (np.pad before,
    205 MB for VGG-16's conv1_2 at batch 16) was one more copy to memory and back."""
    _, H, W, C = x.shape
    band = scratch("band", (n1 - n0) * (r1 - r0) * (W + left + right) * C, x.dtype)
    band = band.reshape(n1 - n0, r1 - r0, W + left + right, C)
    lo, hi = min(max(r0, top), r1), max(min(r1, top + H), r0)  # the rows x has
    band[:, :lo - r0] = 0
    band[:, hi - r0:] = 0
    inside = band[:, lo - r0:hi - r0]
    inside[:, :, :left] = 0
    inside[:, :, left + W:] = 0
    inside[:, :, left:left + W] = x[n0:n1, lo - top:hi - top]
    return band


def copy_in_threads(dst, src):
    """dst[...] = src, (N, H, ...) arrays, by images or bands of rows on both cores (np.pad
    and a whole-batch copy ran on one: 40 ms of VGG-16's 280 per image at batch 16)."""
    N, H = dst.shape[:2]
    row = dst.itemsize * int(np.prod(dst.shape[2:]))

    def copy(c):
        n0, n1, y0, y1 = c
        dst[n0:n1, y0:y1] = src[n0:n1, y0:y1]
    blas.in_threads(copy, image_chunks(N, H, max(1, COPY_BYTES // max(row, 1)), parts=1))


def image_chunks(N, H, budget, parts=None):
    """(n0, n1, y0, y1) covering N images of H rows: chunks of `budget` rows at most, each
    several whole images or a band of rows of one image, and at least `parts` of them
    (default: the BLAS threads) when there are as many rows, so that no core is idle."""
    parts = blas.threads() if parts is None else parts
    budget = max(1, budget)
    if budget >= H and N > 1:
        images = max(1, min(budget // H, -(-N // parts)))
        return [(n0, min(N, n0 + images), 0, H) for n0 in range(0, N, images)]
    band = max(1, min(budget, -(-H * N // parts)))
    bands = -(-H // band)
    band = -(-H // bands)  # bands of equal height
    return [(n, n + 1, y0, min(H, y0 + band)) for n in range(N) for y0 in range(0, H, band)]


def row_chunks(n, budget, parts=None):
    """Ranges (r0, r1) covering range(n), of `budget` rows at most and as equal as can be,
    as many as a multiple of `parts` (default: the BLAS threads) when rows allow."""
    parts = blas.threads() if parts is None else parts
    count = max(1, -(-n // max(1, budget)))
    if count > 1 or n >= 2 * MIN_ROWS:
        count = -(-count // parts) * parts
    bounds = [n * i // count for i in range(count + 1)]
    return [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


_scratch = threading.local()


def scratch(name, size, dtype):
    """A buffer of `size` numbers of this thread's, kept from call to call: a fresh 8 MB
    np.empty per convolution is fresh pages, each faulted in on first touch."""
    bufs = _scratch.__dict__.setdefault("bufs", {})
    buf = bufs.get((name, np.dtype(dtype)))
    if buf is None or buf.size < size:
        buf = bufs[(name, np.dtype(dtype))] = np.empty(size, dtype)
    return buf[:size]


def output_size(size, kernel, stride):
    return (size - kernel) // stride + 1


# Convolutions work in chunks so that what a chunk touches stays in the caches: the whole
# layer's im2col matrix of VGG-16's first block at batch 16 is 1.8 GB, and every pass over
# it (build, read by the product, then bias, then ReLU) went to memory. A chunk's patches
# are built into one reused buffer, multiplied straight into the output, and the bias and
# activation are applied to the product while it is still in cache.
PATCH_BYTES = 8 << 20  # the im2col buffer of one chunk
MIN_ROWS = 1024  # rows of one chunk's matrix product at least: small products run slowly
EPILOGUE_BYTES = 2 << 20  # the output rows of one chunk of a 1 x 1 convolution
# the output of one chunk of a depthwise convolution: EfficientNet-Lite0's depthwise
# layers (3 x 3 stand-ins, with the kernel of two calls per tap that the einsum replaced)
# took 11.2 ms an image at batch 1 with 1 MB, 13.2 with 256 KB; at batch 16 on two
# threads 7.5 and 9.8 (the GIL changes hands once per call)
DEPTHWISE_BYTES = 1 << 20
# numbers in the inner loop of a depthwise einsum (see depthwise): one thread, batch 1,
# 56 x 56 x 144, runs of 1008 / 2016 / 4032 / 8064 numbers: 0.84 / 0.56 / 0.63 / 0.74 ms;
# 112 x 112 x 32, 896 / 1792 / 3584: 0.55 / 0.53 / 0.59 (what a run reads and writes
# stays in the 32 KB L1 cache)
DEPTHWISE_RUN = 2048
# Smaller layers run on one core (a 1 x 1 convolution as one product on BLAS's threads):
# two threads' short NumPy calls wait for each other's GIL (two threads multiplying
# 131k numbers a call ran 1.4 times as long as one thread doing half the work), so at
# batch 1 EfficientNet-Lite0's small layers ran faster on one core. Measured per layer
# (two threads / one, ms): depthwise of 4.7M multiply-adds 0.62 / 0.80, 3.3M 0.54 /
# 0.58, 1.4M 0.34 / 0.27, 0.8M 0.26 / 0.20; 1 x 1 with 1.2M outputs 0.63 / 0.91, 452k
# 0.38 / 0.42, 75k 0.27 / 0.20.
THREADS_MIN_MACS = 3 << 20  # depthwise: outputs times taps
THREADS_MIN_OUTPUTS = 384 << 10  # 1 x 1: output numbers
COPY_BYTES = 4 << 20  # one chunk of a padding copy


def conv2d(x, w, b=None, stride=1, padding=0, groups=1, activation=None):
    """x (N, H, W, C_in), w (kh, kw, C_in/groups, C_out) -> (N, H', W', C_out), then
    activation (None, "relu" or "relu6") applied in place, chunk by chunk."""
    kh, kw, cin_g, cout = w.shape
    N, _, _, cin = x.shape
    if cin != cin_g * groups:
        raise ValueError("conv2d: %d input channels, weights for %d x %d" % (cin, groups, cin_g))
    if groups == cin and cin_g == 1 and cout == cin:
        return depthwise(x, w, stride, padding, b, activation)
    top, bottom = pad_amounts(x.shape[1], kh, stride, padding)
    left, right = pad_amounts(x.shape[2], kw, stride, padding)
    Ho = output_size(x.shape[1] + top + bottom, kh, stride)
    Wo = output_size(x.shape[2] + left + right, kw, stride)
    out = np.empty((N, Ho, Wo, cout), dtype=np.result_type(x, w))
    rows = out.reshape(-1, cout)
    if kh == kw == 1:
        x = pad(x, kh, kw, stride, padding)
        xs = x[:, :stride * (Ho - 1) + 1:stride, :stride * (Wo - 1) + 1:stride].reshape(-1, cin)
        w2 = w.reshape(cin_g, cout)

        def product(r):
            grouped_matmul(xs[r[0]:r[1]], w2, groups, rows[r[0]:r[1]])
            epilogue(rows[r[0]:r[1]], b, activation)
        if rows.size < THREADS_MIN_OUTPUTS:  # one product on BLAS's threads
            product((0, len(rows)))
        else:
            step = max(MIN_ROWS, EPILOGUE_BYTES // (cout * out.itemsize))
            blas.in_threads(product, row_chunks(len(rows), step))
        return out
    if (kh == kw == 3 and stride == 1 and groups == 1 and cin >= WINOGRAD_MIN_CHANNELS
            and Ho % 2 == 0 and Wo % 2 == 0 and N * Ho * Wo // 4 >= WINOGRAD_MIN_TILES):
        return winograd_3x3(x, w, b, activation, out, (top, left, right))
    taps = kh * kw
    wm = w.reshape(taps, cin_g, cout)
    # a chunk is several whole images or a band of output rows of one image; its
    # rows of `out` are contiguous
    budget = max(MIN_ROWS, PATCH_BYTES // (taps * cin * out.itemsize))

    def chunk(c):
        n0, n1, y0, y1 = c
        m = (n1 - n0) * (y1 - y0) * Wo
        patches = scratch("patches", m * taps * cin, x.dtype).reshape(n1 - n0, y1 - y0, Wo,
                                                                      taps, cin)
        band = padded_rows(x, n0, n1, y0 * stride, (y1 - 1) * stride + kh, top, left, right)
        for i in range(kh):  # one strided copy per kernel offset
            for j in range(kw):
                patches[:, :, :, i * kw + j] = band[
                    :, i:(y1 - y0 - 1) * stride + i + 1:stride, j:j + stride * (Wo - 1) + 1:stride]
        r0 = (n0 * Ho + y0) * Wo
        o = rows[r0:r0 + m]
        patches = patches.reshape(m, taps, cin)
        if groups == 1:
            np.matmul(patches.reshape(m, -1), wm.reshape(-1, cout), out=o)
        else:  # one product per group
            cout_g = cout // groups
            for g in range(groups):
                o[:, g * cout_g:(g + 1) * cout_g] = (
                    patches[:, :, g * cin_g:(g + 1) * cin_g].reshape(m, -1)
                    @ wm[:, :, g * cout_g:(g + 1) * cout_g].reshape(-1, cout_g))
        epilogue(o, b, activation)
    blas.in_threads(chunk, image_chunks(N, Ho, budget // Wo))
    return out


# Winograd's F(2x2, 3x3) (Lavin & Gray, Fast Algorithms for Convolutional Neural
# Networks): a 2 x 2 block of outputs from a 4 x 4 tile of input in 16 products per
# channel pair instead of 36, so 2.25 times fewer multiply-adds in the matrix products;
# the transforms only add and subtract, and cost what they read and write. With chunks of
# tiles on both cores (transforms included, one BLAS thread each) it beats im2col from 64
# channels on; measured ms per image at batch 4 (Winograd / im2col): 224 x 224, 64 -> 64:
# 24.9 / 33.4; 112, 128 -> 128: 15.3 / 22.9; 28, 512 -> 512: 10.3 / 20.0; and at batch 1
# on VGG-16's last block (49 tiles): 4.1 / 5.6. (When the transforms ran on one core,
# 64 or 128 channels made VGG-16 0.6 times as fast on two BLAS threads.)
WINOGRAD_MIN_CHANNELS = 64
WINOGRAD_MIN_TILES = 32
WINOGRAD_BYTES = 8 << 20  # the transformed inputs and products of one chunk
G_MATRIX = np.array([[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]])


def winograd_3x3(x, w, b, activation, out, pads):
    """A 3x3, stride-1 convolution of x (N, H, W, C) padded by pads (top, left, right;
    as much at the bottom as makes Ho + 2 rows) into out (N, Ho, Wo, C_out), Ho and Wo
    even, by F(2x2, 3x3), chunk by chunk of output tiles."""
    N, _, _, C = x.shape
    _, Ho, Wo, cout = out.shape
    dtype = out.dtype
    U = winograd_weights(w, dtype)
    th, tw = Ho // 2, Wo // 2
    tiles = max(MIN_ROWS // 4, WINOGRAD_BYTES // (16 * (C + cout) * out.itemsize))

    def chunk(c):
        n0, n1, t0, t1 = c
        n, t = n1 - n0, t1 - t0
        v = scratch("V", 16 * n * t * tw * C, dtype).reshape(4, 4, n, t, tw, C)
        m = scratch("M", 16 * n * t * tw * cout, dtype).reshape(16, n * t * tw, cout)
        rows = padded_rows(x, n0, n1, 2 * t0, 2 * t1 + 2, *pads)
        r = [rows[:, k:k + 2 * t:2] for k in range(4)]  # row k of every tile of the band
        # B^T d: down the tile's rows, then d B across its columns
        col = scratch("col", r[0].size, dtype).reshape(r[0].shape)
        for a, (op, p, q) in enumerate(((np.subtract, 0, 2), (np.add, 1, 2),
                                        (np.subtract, 2, 1), (np.subtract, 1, 3))):
            op(r[p], r[q], out=col)
            c = [col[:, :, k:k + 2 * tw:2] for k in range(4)]
            np.subtract(c[0], c[2], out=v[a, 0])
            np.add(c[1], c[2], out=v[a, 1])
            np.subtract(c[2], c[1], out=v[a, 2])
            np.subtract(c[1], c[3], out=v[a, 3])
        np.matmul(v.reshape(16, -1, C), U, out=m)
        m = m.reshape(4, 4, n, t, tw, cout)
        # A^T m A: 2 x 2 outputs per tile
        # (into this thread's buffers: fresh temporaries of a few MB each were a
        # tenth of the layer)
        s_ = scratch("s", 2 * m[0].size, dtype).reshape((2,) + m[0].shape)
        np.add(m[0], m[1], out=s_[0])
        s_[0] += m[2]
        np.subtract(m[1], m[2], out=s_[1])
        s_[1] -= m[3]
        tmp = scratch("tmp", m[0, 0].size, dtype).reshape(m[0, 0].shape)
        o = out[n0:n1, 2 * t0:2 * t1]
        for i in range(2):
            np.add(s_[i, 0], s_[i, 1], out=tmp)
            np.add(tmp, s_[i, 2], out=o[:, i::2, 0::2])
            np.subtract(s_[i, 1], s_[i, 2], out=tmp)
            np.subtract(tmp, s_[i, 3], out=o[:, i::2, 1::2])
        epilogue(o, b, activation)
    blas.in_threads(chunk, image_chunks(N, th, tiles // tw))
    return out


_derived = {}


def derived(arr, name, make):
    """make(), an array made from `arr` (its Winograd transform, its tiling along a row),
    made once per (arr, name) and kept while arr lives: a network's weights are not
    changed in place, and remaking them was a large part of a layer at batch 1 (11 ms
    of Winograd transform for 512 x 512 channels, half of the convolution)."""
    key = (id(arr), name)
    hit = _derived.get(key)
    if hit is not None and hit[0]() is arr and hit[1] == arr.shape:
        return hit[2]
    value = make()
    try:
        ref = weakref.ref(arr, lambda _, key=key: _derived.pop(key, None))
    except TypeError:  # not an ndarray
        return value
    _derived[key] = (ref, arr.shape, value)
    return value


def winograd_weights(w, dtype):
    """U = G g G^T per channel pair of w (3, 3, C, C_out): 16 matrices (C, C_out)."""
    def make():
        g = G_MATRIX.astype(dtype)
        U = np.tensordot(g, w.astype(dtype, copy=False), axes=(1, 0))  # (4, 3, C, C_out)
        U = np.ascontiguousarray(np.tensordot(g, U, axes=(1, 1)).transpose(1, 0, 2, 3))
        return U.reshape(16, w.shape[2], w.shape[3])
    return derived(w, ("winograd", np.dtype(dtype)), make)


def epilogue(o, b, activation):
    """Bias and activation of a chunk of output, in place."""
    if b is not None:
        o += b
    # np.clip, not np.maximum / np.minimum with a scalar: NumPy 2.4's scalar maximum
    # ran 3-4 times slower than clip (262k numbers: 98 against 24-30 us), and
    # EfficientNet's ReLU6 epilogues were a quarter of its 1 x 1 convolutions
    if activation == "relu":
        np.clip(o, 0, np.inf, out=o)
    elif activation == "relu6":
        np.clip(o, 0, 6, out=o)
    elif activation is not None:
        raise ValueError("conv2d: unknown activation %r" % (activation,))
    return o


def grouped_matmul(x, w, groups, out=None):
    if groups == 1:
        return np.matmul(x, w, out=out)
    cin_g, cout = w.shape
    cout_g = cout // groups
    if out is None:
        out = np.empty((len(x), cout), dtype=np.result_type(x, w))
    for g in range(groups):
        out[:, g * cout_g:(g + 1) * cout_g] = (x[:, g * cin_g:(g + 1) * cin_g]
                                               @ w[:, g * cout_g:(g + 1) * cout_g])
    return out


def depthwise(x, w, stride, padding, b=None, activation=None):
    """Depthwise convolution of x (N, H, W, C), w (kh, kw, 1, C) or (kh, kw, C), in
    chunks of output small enough for the cache. A chunk's padded input rows are split by
    column phase (columns p, p + stride, ... each contiguous; a stride-1 band is its own
    single phase) and the weights tiled along Wb output columns, so that each tap is a
    product of contiguous runs of Wb*C numbers; one np.einsum per phase then sums all of
    its taps, over a strided view of the rows (nothing copied), in one call.

    One call per phase, not two per tap (multiply, then add): a tap's call at batch 1 is
    a few tens of microseconds, and with two threads each call waited about as long
    again for the GIL (this VM wakes a waiting thread slowly), so two threads ran no
    faster than one. Measured at batch 1, one thread, ms (taps / einsum): 14 x 14 x 672,
    5 x 5: 1.08 / 0.54; 56 x 56 x 144, 3 x 3: 1.14 / 0.74; 112 x 112 x 32: 1.06 / 0.68;
    and two threads' einsums run side by side (0.31 ms alone, 0.33 each together)."""
    kh, kw, C = w.shape[0], w.shape[1], w.shape[-1]
    N, H, W, _ = x.shape
    top, bottom = pad_amounts(H, kh, stride, padding)
    left, right = pad_amounts(W, kw, stride, padding)
    Ho, Wo = output_size(H + top + bottom, kh, stride), output_size(W + left + right, kw, stride)
    dtype = np.result_type(x, w)
    out = np.empty((N, Ho, Wo, C), dtype=dtype)
    # the weights and bias tiled along Wb output columns (Wb a divisor of Wo, Wb*C at
    # most DEPTHWISE_RUN numbers), made once per weight array: each einsum's inner loop
    # is a run of Wb*C numbers
    Wb = max(d for d in range(1, Wo + 1) if Wo % d == 0 and (d * C <= DEPTHWISE_RUN or d == 1))
    wt = derived(w, ("depthwise", Wb, dtype), lambda: np.tile(
        w.reshape(kh, kw, C).astype(dtype, copy=False), (1, 1, Wb)))  # (kh, kw, Wb*C)
    bt = None if b is None else derived(b, ("row", Wb, dtype), lambda: np.tile(
        np.asarray(b, dtype=dtype), Wb))
    row = Wo * C * out.itemsize

    def chunk(c):
        n0, n1, y0, y1 = c
        n, rows = n1 - n0, y1 - y0
        band = padded_rows(x, n0, n1, y0 * stride, (y1 - 1) * stride + kh, top, left, right)
        phases = [band]
        if stride > 1:
            phases = [scratch("phase%d" % p, band[:, :, p::stride].size, x.dtype).reshape(
                band[:, :, p::stride].shape) for p in range(stride)]
            for p, phase in enumerate(phases):
                phase[...] = band[:, :, p::stride]
        acc = out[n0:n1, y0:y1].reshape(n, rows, Wo // Wb, Wb * C)
        for p, phase in enumerate(phases):
            # taps j = p, p + stride, ...: tap (i, j) of output row r, columns
            # b*Wb ... (b+1)*Wb - 1 reads phase row r * stride + i from column
            # b*Wb + j // stride on, Wb*C numbers
            s0, s1, s2, s3 = phase.strides
            taps = wt[:, p::stride]
            view = as_strided(phase, (n, rows, Wo // Wb, kh, taps.shape[1], Wb * C),
                              (s0, stride * s1, Wb * s2, s1, s2, s3), writeable=False)
            if p == 0:
                np.einsum("nrbijx,ijx->nrbx", view, taps, out=acc)
            else:
                t = scratch("depthwise", acc.size, dtype).reshape(acc.shape)
                np.einsum("nrbijx,ijx->nrbx", view, taps, out=t)
                acc += t
        epilogue(acc, bt, activation)
    chunks = image_chunks(N, Ho, DEPTHWISE_BYTES // row)
    if out.size * kh * kw < THREADS_MIN_MACS:
        for c in chunks:
            chunk(c)
    else:
        blas.in_threads(chunk, chunks)
    return out


def max_pool(x, size, stride=None, padding=0):
    return _pool(x, size, stride or size, padding, np.maximum, -np.inf)


def avg_pool(x, size, stride=None, padding=0):
    """Average over the window, padding excluded from the count."""
    stride = stride or size
    total = _pool(x, size, stride, padding, np.add, 0.0)
    ones = np.ones((1,) + x.shape[1:3] + (1,), dtype=x.dtype)
    return total / _pool(ones, size, stride, padding, np.add, 0.0)


def _pool(x, size, stride, padding, combine, fill):
    x = pad(x, size, size, stride, padding, value=fill)
    N, _, _, C = x.shape
    Ho, Wo = output_size(x.shape[1], size, stride), output_size(x.shape[2], size, stride)
    out = np.empty((N, Ho, Wo, C), dtype=x.dtype)

    def chunk(c):  # bands of output rows, on both cores when there are chunks enough
        n0, n1, y0, y1 = c
        o = out[n0:n1, y0:y1]
        for i in range(size):
            for j in range(size):
                window = x[n0:n1, y0 * stride + i:(y1 - 1) * stride + i + 1:stride,
                           j:j + stride * (Wo - 1) + 1:stride]
                if i == j == 0:
                    o[...] = window
                else:
                    combine(o, window, out=o)
    blas.in_threads(chunk, image_chunks(N, Ho, DEPTHWISE_BYTES // max(1, Wo * C * x.itemsize)),
                    min_items=2 * blas.threads())
    return out


def relu(x):
    return np.clip(x, 0, np.inf, out=x)


def relu6(x):
    return np.clip(x, 0, 6, out=x)


def dense(x, w, b=None):
    out = x @ w
    return out + b if b is not None else out


def fold_batch_norm(w, b, gamma, beta, mean, var, eps):
    """Weights and bias of conv followed by batch norm, as one conv: w (..., C_out)."""
    scale = gamma / np.sqrt(var + eps)
    b = np.zeros_like(mean) if b is None else b
    return (w * scale).astype(np.float32), ((b - mean) * scale + beta).astype(np.float32)
