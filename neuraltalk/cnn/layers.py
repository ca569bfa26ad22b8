"""Inference layers in NumPy, float32, batched, channels last: x (N, H, W, C).

Convolution weights are (kh, kw, C_in / groups, C_out). A convolution is one matrix
product over im2col patches; a 1 x 1 convolution is a plain product; a depthwise one
(groups == channels) sums kh*kw shifted, weighted copies of the input, never building
the patch matrix. Batch normalisation is folded into the convolution before inference.
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


def conv2d(x, w, b=None, stride=1, padding=0, groups=1):
    """x (N, H, W, C_in), w (kh, kw, C_in/groups, C_out) -> (N, H', W', C_out)."""
    kh, kw, cin_g, cout = w.shape
    N, _, _, cin = x.shape
    if cin != cin_g * groups:
        raise ValueError("conv2d: %d input channels, weights for %d x %d" % (cin, groups, cin_g))
    x = pad(x, kh, kw, stride, padding)
    Ho, Wo = output_size(x.shape[1], kh, stride), output_size(x.shape[2], kw, stride)
    if groups == cin and cin_g == 1 and cout == cin:
        out = depthwise(x, w[:, :, 0, :], stride, Ho, Wo)
    elif kh == kw == 1:
        xs = x[:, :stride * (Ho - 1) + 1:stride, :stride * (Wo - 1) + 1:stride]
        out = grouped_matmul(xs.reshape(-1, cin), w.reshape(cin_g, cout), groups)
        out = out.reshape(N, Ho, Wo, cout)
    else:
        patches = im2col(x, kh, kw, stride, Ho, Wo)  # (N*Ho*Wo, kh*kw, C_in)
        cols = []
        cout_g = cout // groups
        for g in range(groups):  # one product per group; usually groups == 1
            p = patches[:, :, g * cin_g:(g + 1) * cin_g].reshape(len(patches), -1)
            cols.append(p @ w[:, :, :, g * cout_g:(g + 1) * cout_g].reshape(-1, cout_g))
        out = (cols[0] if groups == 1 else np.concatenate(cols, axis=1)).reshape(N, Ho, Wo, cout)
    if b is not None:
        out += b
    return out


def grouped_matmul(x, w, groups):
    if groups == 1:
        return x @ w
    cin_g, cout = w.shape
    cout_g = cout // groups
    return np.concatenate([x[:, g * cin_g:(g + 1) * cin_g] @ w[:, g * cout_g:(g + 1) * cout_g]
                           for g in range(groups)], axis=1)


def im2col(x, kh, kw, stride, Ho, Wo):
    """Patches (N*Ho*Wo, kh*kw, C) of a padded input, one strided slice per offset."""
    N, _, _, C = x.shape
    patches = np.empty((N, Ho, Wo, kh * kw, C), dtype=x.dtype)
    for i in range(kh):  # kh*kw slices, each over the whole batch
        for j in range(kw):
            patches[:, :, :, i * kw + j] = x[:, i:i + stride * (Ho - 1) + 1:stride,
                                             j:j + stride * (Wo - 1) + 1:stride]
    return patches.reshape(N * Ho * Wo, kh * kw, C)


def depthwise(x, w, stride, Ho, Wo):
    """Depthwise convolution of a padded input: w (kh, kw, C)."""
    kh, kw, C = w.shape
    out = np.zeros((x.shape[0], Ho, Wo, C), dtype=np.result_type(x, w))
    for i in range(kh):  # kh*kw multiply-adds over the whole batch
        for j in range(kw):
            out += x[:, i:i + stride * (Ho - 1) + 1:stride, j:j + stride * (Wo - 1) + 1:stride] * w[i, j]
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
            out = window.copy() if out is None else combine(out, window)
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
