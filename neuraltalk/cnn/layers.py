"""Inference layers in NumPy, float32, batched, channels last: x (N, H, W, C).

Convolution weights are (kh, kw, C_in / groups, C_out). A convolution is one matrix
product over im2col patches, built and multiplied in cache-sized chunks; a 1 x 1
convolution is a plain product; a depthwise one (groups == channels) sums kh*kw shifted,
weighted copies of the input in place, never building the patch matrix; a 3 x 3,
stride-1 one of 256 channels or more uses Winograd's F(2x2, 3x3). Bias and activation
are applied to each chunk of output as it is made. Batch normalisation is folded into
the convolution before inference.
"""
import numpy as np


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
    if top or bottom or left or right:
        x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=value)
    return x


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
DEPTHWISE_BYTES = 256 << 10  # the output of one chunk of a depthwise convolution


def conv2d(x, w, b=None, stride=1, padding=0, groups=1, activation=None):
    """x (N, H, W, C_in), w (kh, kw, C_in/groups, C_out) -> (N, H', W', C_out), then
    activation (None, "relu" or "relu6") applied in place, chunk by chunk."""
    kh, kw, cin_g, cout = w.shape
    N, _, _, cin = x.shape
    if cin != cin_g * groups:
        raise ValueError("conv2d: %d input channels, weights for %d x %d" % (cin, groups, cin_g))
    if groups == cin and cin_g == 1 and cout == cin:
        phases = padded_phases(x, kh, kw, stride, padding)
        Ho = output_size(phases[0].shape[1], kh, stride)
        Wo = output_size(sum(p.shape[2] for p in phases), kw, stride)
        return depthwise(phases, w[:, :, 0, :], stride, Ho, Wo, b, activation)
    x = pad(x, kh, kw, stride, padding)
    Ho, Wo = output_size(x.shape[1], kh, stride), output_size(x.shape[2], kw, stride)
    out = np.empty((N, Ho, Wo, cout), dtype=np.result_type(x, w))
    rows = out.reshape(-1, cout)
    if kh == kw == 1:
        xs = x[:, :stride * (Ho - 1) + 1:stride, :stride * (Wo - 1) + 1:stride].reshape(-1, cin)
        w2 = w.reshape(cin_g, cout)
        step = max(MIN_ROWS, EPILOGUE_BYTES // (cout * out.itemsize))
        for r0 in range(0, len(rows), step):
            grouped_matmul(xs[r0:r0 + step], w2, groups, rows[r0:r0 + step])
            epilogue(rows[r0:r0 + step], b, activation)
        return out
    if (kh == kw == 3 and stride == 1 and groups == 1 and cin >= WINOGRAD_MIN_CHANNELS
            and Ho % 2 == 0 and Wo % 2 == 0 and N * Ho * Wo // 4 >= WINOGRAD_MIN_TILES):
        return winograd_3x3(x, w, b, activation, out)
    taps = kh * kw
    wm = w.reshape(taps, cin_g, cout)
    # a chunk is several whole images or a band of output rows of one image; its
    # rows of `out` are contiguous
    per_image = Ho * Wo
    budget = max(MIN_ROWS, PATCH_BYTES // (taps * cin * out.itemsize))
    images = max(1, budget // per_image)
    band = min(Ho, max(1, budget // Wo))
    buf = np.empty((min(images, N) * per_image if band == Ho else band * Wo) * taps * cin,
                   dtype=np.result_type(x))
    for n0 in range(0, N, images if band == Ho else 1):
        n1 = min(N, n0 + images) if band == Ho else n0 + 1
        for y0 in range(0, Ho, band):
            y1 = min(Ho, y0 + band)
            m = (n1 - n0) * (y1 - y0) * Wo
            patches = buf[:m * taps * cin].reshape(n1 - n0, y1 - y0, Wo, taps, cin)
            for i in range(kh):  # one strided copy per kernel offset
                for j in range(kw):
                    patches[:, :, :, i * kw + j] = x[
                        n0:n1, y0 * stride + i:(y1 - 1) * stride + i + 1:stride,
                        j:j + stride * (Wo - 1) + 1:stride]
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
    return out


# Winograd's F(2x2, 3x3) (Lavin & Gray, Fast Algorithms for Convolutional Neural
# Networks): a 2 x 2 block of outputs from a 4 x 4 tile of input in 16 products per
# channel pair instead of 36, so 2.25 times fewer multiply-adds in the matrix products;
# the transforms only add and subtract, and cost what they read and write, which is small
# beside the products once there are 256 channels or more (VGG-16's blocks 3 to 5). The
# transforms run on one core: with 64 or 128 channels they made the whole network 1.7
# times faster on one BLAS thread but 0.6 times as fast on two on a loaded machine; from
# 256 channels on, 1.5 times on one thread and as fast as im2col on two. Below a few
# hundred tiles (VGG-16's last block at batch 1: 49) the 16 small products run slowly
# enough that im2col's one larger product wins.
WINOGRAD_MIN_CHANNELS = 256
WINOGRAD_MIN_TILES = 128
WINOGRAD_BYTES = 8 << 20  # the transformed inputs and products of one chunk
G_MATRIX = np.array([[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]])


def winograd_3x3(x, w, b, activation, out):
    """A 3x3, stride-1 convolution of a padded input x (N, Ho + 2, Wo + 2, C), Ho and Wo
    even, into out (N, Ho, Wo, C_out), by F(2x2, 3x3), chunk by chunk of output tiles."""
    N, _, _, C = x.shape
    _, Ho, Wo, cout = out.shape
    dtype = out.dtype
    # U = G g G^T per channel pair: (4, 4, C, C_out) -> 16 matrices (C, C_out)
    g = G_MATRIX.astype(dtype)
    U = np.tensordot(g, w.astype(dtype, copy=False), axes=(1, 0))  # (4, 3, C, C_out)
    U = np.ascontiguousarray(np.tensordot(g, U, axes=(1, 1)).transpose(1, 0, 2, 3))
    U = U.reshape(16, C, cout)
    th, tw = Ho // 2, Wo // 2
    tiles = max(MIN_ROWS // 4, WINOGRAD_BYTES // (16 * (C + cout) * out.itemsize))
    images = max(1, tiles // (th * tw))
    band = th if images > 1 else min(th, max(1, tiles // tw))
    V = np.empty(16 * min(images, N) * band * tw * C, dtype)
    M = np.empty(16 * min(images, N) * band * tw * cout, dtype)
    for n0 in range(0, N, images):
        n1 = min(N, n0 + images)
        for t0 in range(0, th, band):
            t1 = min(th, t0 + band)
            n, t = n1 - n0, t1 - t0
            v = V[:16 * n * t * tw * C].reshape(4, 4, n, t, tw, C)
            m = M[:16 * n * t * tw * cout].reshape(16, n * t * tw, cout)
            rows = x[n0:n1, 2 * t0:2 * t1 + 2]
            r = [rows[:, k:k + 2 * t:2] for k in range(4)]  # row k of every tile of the band
            # B^T d: down the tile's rows, then d B across its columns
            for a, col in enumerate((r[0] - r[2], r[1] + r[2], r[2] - r[1], r[1] - r[3])):
                c = [col[:, :, k:k + 2 * tw:2] for k in range(4)]
                np.subtract(c[0], c[2], out=v[a, 0])
                np.add(c[1], c[2], out=v[a, 1])
                np.subtract(c[2], c[1], out=v[a, 2])
                np.subtract(c[1], c[3], out=v[a, 3])
            np.matmul(v.reshape(16, -1, C), U, out=m)
            m = m.reshape(4, 4, n, t, tw, cout)
            # A^T m A: 2 x 2 outputs per tile
            s0 = m[0] + m[1] + m[2]
            s1 = m[1] - m[2] - m[3]
            o = out[n0:n1, 2 * t0:2 * t1]
            for i, s_ in enumerate((s0, s1)):
                np.add(s_[0] + s_[1], s_[2], out=o[:, i::2, 0::2])
                np.subtract(s_[1] - s_[2], s_[3], out=o[:, i::2, 1::2])
            epilogue(o, b, activation)
    return out


def epilogue(o, b, activation):
    """Bias and activation of a chunk of output, in place."""
    if b is not None:
        o += b
    if activation == "relu":
        np.maximum(o, 0, out=o)
    elif activation == "relu6":
        np.maximum(o, 0, out=o)
        np.minimum(o, 6, out=o)
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


def padded_phases(x, kh, kw, stride, padding):
    """The padded input split by column phase: [padded[:, :, p::stride] for p < stride],
    each contiguous, made in one copy."""
    top, bottom = pad_amounts(x.shape[1], kh, stride, padding)
    left, right = pad_amounts(x.shape[2], kw, stride, padding)
    N, H, W, C = x.shape
    Wp = W + left + right
    phases = []
    for p in range(stride):
        width = len(range(p, Wp, stride))
        phase = np.zeros((N, H + top + bottom, width, C), dtype=x.dtype)
        # padded columns p, p + stride, ... that hold input columns (c - left)
        first = p if p >= left else p + -(-(left - p) // stride) * stride
        cols = range(first, min(Wp, left + W), stride)
        if len(cols):
            phase[:, top:top + H, (first - p) // stride:(first - p) // stride + len(cols)] = \
                x[:, :, first - left:cols[-1] - left + 1:stride]
        phases.append(phase)
    return phases


def depthwise(phases, w, stride, Ho, Wo, b=None, activation=None, out=None):
    """Depthwise convolution, w (kh, kw, C), of a padded input split by column phase
    (padded_phases; a stride-1 input is its own single phase). Chunks of output small
    enough for the cache, each the sum of kh*kw shifted, weighted slices of the input
    accumulated in place (a whole-batch product per offset went to memory twice each).
    With the phases and the weights tiled along a row, every tap is a product of
    contiguous runs of Wo*C numbers: the C-long runs of a broadcast (a weight per channel)
    cost as much per run as per number."""
    kh, kw, C = w.shape
    N = phases[0].shape[0]
    if out is None:
        out = np.empty((N, Ho, Wo, C), dtype=np.result_type(phases[0], w))
    wt = np.tile(w.astype(out.dtype, copy=False), (1, 1, Wo))  # (kh, kw, Wo*C)
    bt = None if b is None else np.tile(np.asarray(b, dtype=out.dtype), Wo)
    row = Wo * C * out.itemsize
    images = max(1, DEPTHWISE_BYTES // (Ho * row))
    band = Ho if images > 1 else min(Ho, max(1, DEPTHWISE_BYTES // row))
    tmp = np.empty((min(images, N), band, Wo * C), dtype=out.dtype)
    for n0 in range(0, N, images):
        n1 = min(N, n0 + images)
        for y0 in range(0, Ho, band):
            y1 = min(Ho, y0 + band)
            acc = out[n0:n1, y0:y1].reshape(n1 - n0, y1 - y0, Wo * C)
            t = tmp[:n1 - n0, :y1 - y0]
            for i in range(kh):
                for j in range(kw):
                    c0 = j // stride
                    src = phases[j % stride][
                        n0:n1, y0 * stride + i:(y1 - 1) * stride + i + 1:stride, c0:c0 + Wo]
                    src = src.reshape(n1 - n0, y1 - y0, Wo * C)
                    if i == j == 0:
                        np.multiply(src, wt[0, 0], out=acc)
                    else:
                        np.multiply(src, wt[i, j], out=t)
                        acc += t
            epilogue(acc, bt, activation)
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
    Ho, Wo = output_size(x.shape[1], size, stride), output_size(x.shape[2], size, stride)
    out = None
    for i in range(size):
        for j in range(size):
            window = x[:, i:i + stride * (Ho - 1) + 1:stride, j:j + stride * (Wo - 1) + 1:stride]
            out = window.copy() if out is None else combine(out, window, out=out)
    return out


def relu(x):
    return np.maximum(x, 0, out=x)


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
