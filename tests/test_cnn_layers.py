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


@pytest.fixture(params=[1, 2], ids=["one thread", "two threads"])
def threads(request, monkeypatch):
    """Chunks run on this many Python threads (whatever the machine's BLAS has)."""
    from neuraltalk.layers import blas
    monkeypatch.setattr(blas, "threads", lambda: request.param)
    return request.param


CASES = [  # (kernel, stride, padding, in channels, out channels, groups)
    (3, 1, 1, 3, 4, 1), (3, 2, 1, 3, 4, 1), (3, 2, "same", 4, 4, 4), (5, 1, 2, 6, 6, 6),
    (5, 2, "same", 6, 6, 6), (1, 1, 0, 5, 7, 1), (1, 2, 0, 4, 6, 2), (3, 1, 0, 4, 6, 2),
    (2, 2, 0, 3, 5, 1), (3, 3, "same", 2, 3, 1), (7, 2, 3, 3, 8, 1), (3, 3, "same", 5, 5, 5),
    (4, 1, "same", 3, 3, 3),
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


@pytest.mark.parametrize("budget", [1 << 20, 1], ids=["whole", "bands of rows"])
@pytest.mark.parametrize("size, stride, padding", [(2, 2, 0), (3, 2, 1), (3, 1, 1)])
def test_pooling_equals_a_loop(monkeypatch, threads, budget, size, stride, padding):
    monkeypatch.setattr(layers, "DEPTHWISE_BYTES", budget)
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
    # and depthwise runs of one column (Wb = 1); small layers on threads too
    for name, value in (("PATCH_BYTES", 1), ("MIN_ROWS", 5), ("EPILOGUE_BYTES", 1),
                        ("DEPTHWISE_BYTES", 8 * 4 * cout), ("DEPTHWISE_RUN", 1),
                        ("THREADS_MIN_MACS", 0), ("THREADS_MIN_OUTPUTS", 0)):
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
    monkeypatch.setattr(layers, "DEPTHWISE_RUN", 2 * cout)  # runs of two columns where Wo is even
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


@pytest.mark.parametrize("k, stride, padding, cin, cout, groups", CASES)
def test_convolution_on_threads_in_small_chunks_equals_a_loop(monkeypatch, threads, k, stride,
                                                               padding, cin, cout, groups):
    for name, value in (("PATCH_BYTES", 1), ("MIN_ROWS", 5), ("EPILOGUE_BYTES", 1),
                        ("DEPTHWISE_BYTES", 8 * 4 * cout), ("COPY_BYTES", 1),
                        ("THREADS_MIN_MACS", 0), ("THREADS_MIN_OUTPUTS", 0)):
        monkeypatch.setattr(layers, name, value)
    rng = np.random.default_rng(k * 100 + stride * 10 + cin + 2)
    for n in (1, 3):  # a batch of one is split in bands of rows
        x = rng.normal(size=(n, 9, 8, cin))
        w = rng.normal(size=(k, k, cin // groups, cout))
        b = rng.normal(size=cout)
        got = layers.conv2d(x, w, b, stride=stride, padding=padding, groups=groups,
                            activation="relu")
        np.testing.assert_allclose(got, np.maximum(_loop_conv(x, w, b, stride, padding, groups), 0),
                                   rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("n", [1, 3])
def test_winograd_on_threads_equals_a_loop(monkeypatch, threads, n):
    monkeypatch.setattr(layers, "WINOGRAD_BYTES", 1)
    monkeypatch.setattr(layers, "MIN_ROWS", 4)
    monkeypatch.setattr(layers, "WINOGRAD_MIN_TILES", 1)
    rng = np.random.default_rng(8 + n)
    x = rng.normal(size=(n, 6, 8, 64))
    w = rng.normal(size=(3, 3, 64, 5))
    b = rng.normal(size=5)
    np.testing.assert_allclose(layers.conv2d(x, w, b, padding=1),
                               _loop_conv(x, w, b, 1, 1, 1), rtol=1e-10, atol=1e-10)


def test_small_layers_run_on_the_calling_thread_and_large_ones_on_threads(monkeypatch):
    from neuraltalk.layers import blas
    monkeypatch.setattr(blas, "threads", lambda: 2)
    calls = []
    real = blas.in_threads
    monkeypatch.setattr(blas, "in_threads", lambda fn, items, **kw: (calls.append(len(items)),
                                                                        real(fn, items, **kw)))
    rng = np.random.default_rng(4)
    x = rng.normal(size=(1, 9, 8, 6)).astype(np.float32)
    dw, pw = rng.normal(size=(3, 3, 1, 6)), rng.normal(size=(1, 1, 6, 6))
    small = [layers.conv2d(x, dw, groups=6, padding=1), layers.conv2d(x, pw)]
    assert calls == []
    monkeypatch.setattr(layers, "THREADS_MIN_MACS", 0)
    monkeypatch.setattr(layers, "THREADS_MIN_OUTPUTS", 0)
    monkeypatch.setattr(layers, "MIN_ROWS", 4)
    large = [layers.conv2d(x, dw, groups=6, padding=1), layers.conv2d(x, pw)]
    assert len(calls) == 2
    for a, b in zip(small, large):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_winograd_weights_are_made_again_for_another_array(monkeypatch):
    monkeypatch.setattr(layers, "WINOGRAD_MIN_TILES", 1)
    rng = np.random.default_rng(9)
    x = rng.normal(size=(1, 4, 4, 64))
    for _ in range(3):  # a dead array's id may be reused by the next one
        w = rng.normal(size=(3, 3, 64, 2))
        np.testing.assert_allclose(layers.conv2d(x, w, padding=1),
                                   _loop_conv(x, w, np.zeros(2), 1, 1, 1), rtol=1e-10, atol=1e-10)
        assert layers.winograd_weights(w, w.dtype) is layers.winograd_weights(w, w.dtype)
        del w


@pytest.mark.parametrize("N, H, budget, parts", [(1, 7, 100, 2), (1, 7, 3, 2), (3, 5, 2, 2),
                                                 (3, 5, 11, 2), (16, 14, 200, 2), (2, 1, 1, 4),
                                                 (5, 4, 8, 1)])
def test_image_chunks_cover_every_row_once(N, H, budget, parts):
    chunks = layers.image_chunks(N, H, budget, parts)
    seen = np.zeros((N, H), int)
    for n0, n1, y0, y1 in chunks:
        assert n1 == n0 + 1 or (y0, y1) == (0, H)  # whole images or a band of one
        assert (n1 - n0) * (y1 - y0) <= max(budget, 1) or n1 - n0 == 1
        seen[n0:n1, y0:y1] += 1
    assert (seen == 1).all()
    assert len(chunks) >= min(parts, N * H)


@pytest.mark.parametrize("n, budget, parts", [(10, 3, 2), (10, 100, 2), (5000, 1000, 2),
                                              (7, 1, 3), (0, 5, 2)])
def test_row_chunks_cover_the_rows_in_equal_parts(n, budget, parts):
    chunks = layers.row_chunks(n, budget, parts)
    assert [r for a, b in chunks for r in range(a, b)] == list(range(n))
    assert all(b - a <= budget for a, b in chunks)
    if len(chunks) > 1:
        assert len(chunks) % parts == 0 or len(chunks) == n  # one row each
        assert max(b - a for a, b in chunks) - min(b - a for a, b in chunks) <= 1
