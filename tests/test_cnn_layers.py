"""CNN layers against plain loops in float64."""
import numpy as np
import pytest

from neuraltalk.cnn import layers


def _loop_conv(x, w, b, stride, padding, groups):
    kh, kw, cin_g, cout = w.shape
    top, bottom = layers.pad_amounts(x.shape[1], kh, stride, padding)
    left, right = layers.pad_amounts(x.shape[2], kw, stride, padding)
    x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    N, H, W, C = x.shape
    Ho, Wo = (H - kh) // stride + 1, (W - kw) // stride + 1
    out = np.zeros((N, Ho, Wo, cout))
    cout_g = cout // groups
    for n in range(N):
        for i in range(Ho):
            for j in range(Wo):
                for o in range(cout):
                    g = o // cout_g
                    patch = x[n, i * stride:i * stride + kh, j * stride:j * stride + kw,
                              g * cin_g:(g + 1) * cin_g]
                    out[n, i, j, o] = (patch * w[:, :, :, o]).sum() + b[o]
    return out


CASES = [  # (kernel, stride, padding, in channels, out channels, groups)
    (3, 1, 1, 3, 4, 1), (3, 2, 1, 3, 4, 1), (3, 2, "same", 4, 4, 4), (5, 1, 2, 6, 6, 6),
    (5, 2, "same", 6, 6, 6), (1, 1, 0, 5, 7, 1), (1, 2, 0, 4, 6, 2), (3, 1, 0, 4, 6, 2),
    (2, 2, 0, 3, 5, 1), (3, 3, "same", 2, 3, 1), (7, 2, 3, 3, 8, 1),
]


@pytest.mark.parametrize("k, stride, padding, cin, cout, groups", CASES)
def test_convolution_equals_a_loop(k, stride, padding, cin, cout, groups):
    rng = np.random.default_rng(k * 100 + stride * 10 + cin)
    x = rng.normal(size=(2, 9, 8, cin))
    w = rng.normal(size=(k, k, cin // groups, cout))
    b = rng.normal(size=cout)
    got = layers.conv2d(x, w, b, stride=stride, padding=padding, groups=groups)
    np.testing.assert_allclose(got, _loop_conv(x, w, b, stride, padding, groups), rtol=1e-10,
                               atol=1e-10)


def test_same_padding_puts_the_extra_pixel_after():
    assert layers.pad_amounts(224, 3, 2, "same") == (0, 1)
    assert layers.pad_amounts(112, 5, 2, "same") == (1, 2)
    assert layers.pad_amounts(7, 3, 1, "same") == (1, 1)


@pytest.mark.parametrize("size, stride, padding", [(2, 2, 0), (3, 2, 1), (3, 1, 1)])
def test_pooling_equals_a_loop(size, stride, padding):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 7, 6, 3))
    mx = layers.max_pool(x, size, stride, padding)
    av = layers.avg_pool(x, size, stride, padding)
    H, W = x.shape[1:3]
    for i in range(mx.shape[1]):
        for j in range(mx.shape[2]):
            r0, c0 = i * stride - padding, j * stride - padding
            win = x[:, max(r0, 0):min(r0 + size, H), max(c0, 0):min(c0 + size, W)]
            np.testing.assert_allclose(mx[:, i, j], win.max((1, 2)))
            np.testing.assert_allclose(av[:, i, j], win.mean((1, 2)))


def test_folded_batch_norm_equals_conv_then_batch_norm():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 5, 5, 3))
    w, b = rng.normal(size=(3, 3, 3, 4)), rng.normal(size=4)
    gamma, beta = rng.normal(size=4), rng.normal(size=4)
    mean, var = rng.normal(size=4), rng.random(4) + 0.5
    expected = (layers.conv2d(x, w, b, padding=1) - mean) / np.sqrt(var + 1e-3) * gamma + beta
    wf, bf = layers.fold_batch_norm(w, b, gamma, beta, mean, var, 1e-3)
    np.testing.assert_allclose(layers.conv2d(x, wf, bf, padding=1), expected, rtol=1e-4, atol=1e-4)


def test_relu6_and_relu():
    np.testing.assert_array_equal(layers.relu6(np.array([-1.0, 3.0, 9.0])), [0, 3, 6])
    np.testing.assert_array_equal(layers.relu(np.array([-1.0, 3.0])), [0, 3])


@pytest.mark.parametrize("k, stride, padding, cin, cout, groups", CASES)
def test_convolution_in_small_chunks_equals_a_loop(monkeypatch, k, stride, padding, cin, cout,
                                                   groups):
    # budgets of a few rows force bands of rows, groups of images and partial last chunks
    for name, value in (("PATCH_BYTES", 1), ("MIN_ROWS", 5), ("EPILOGUE_BYTES", 1),
                        ("DEPTHWISE_BYTES", 8 * 4 * cout)):
        monkeypatch.setattr(layers, name, value)
    rng = np.random.default_rng(k * 100 + stride * 10 + cin + 1)
    x = rng.normal(size=(3, 9, 8, cin))
    w = rng.normal(size=(k, k, cin // groups, cout))
    b = rng.normal(size=cout)
    expected = _loop_conv(x, w, b, stride, padding, groups)
    got = layers.conv2d(x, w, b, stride=stride, padding=padding, groups=groups, activation="relu6")
    np.testing.assert_allclose(got, np.clip(expected, 0, 6), rtol=1e-10, atol=1e-10)
    monkeypatch.setattr(layers, "MIN_ROWS", 40)  # whole images per chunk, the last one partial
    monkeypatch.setattr(layers, "DEPTHWISE_BYTES", 9 * 8 * 8 * cout)
    got = layers.conv2d(x, w, b, stride=stride, padding=padding, groups=groups, activation="relu")
    np.testing.assert_allclose(got, np.maximum(expected, 0), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("budget", [1 << 30, 1])
def test_winograd_convolution_equals_a_loop(monkeypatch, budget):
    # 3 x 3, stride 1, even output: F(2x2, 3x3); the small budget makes chunks of one
    # band of tile rows, the large one a chunk of both images
    monkeypatch.setattr(layers, "WINOGRAD_BYTES", budget)
    monkeypatch.setattr(layers, "WINOGRAD_MIN_CHANNELS", 64)
    monkeypatch.setattr(layers, "MIN_ROWS", 4)
    monkeypatch.setattr(layers, "WINOGRAD_MIN_TILES", 1)
    rng = np.random.default_rng(7)
    x = rng.normal(size=(2, 6, 8, 64))
    w = rng.normal(size=(3, 3, 64, 3))
    b = rng.normal(size=3)
    got = layers.conv2d(x, w, b, padding=1, activation="relu")
    np.testing.assert_allclose(got, np.maximum(_loop_conv(x, w, b, 1, 1, 1), 0), rtol=1e-10,
                               atol=1e-10)
    monkeypatch.setattr(layers, "WINOGRAD_MIN_CHANNELS", 10 ** 9)  # the im2col path agrees
    np.testing.assert_allclose(layers.conv2d(x, w, b, padding=1, activation="relu"), got,
                               rtol=1e-10, atol=1e-10)
