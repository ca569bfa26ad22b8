"""Every layer's backward pass against centred finite differences in float64 (every input
and weight), and each recurrence against a plain loop over one sequence at a time."""
import numpy as np
import pytest

from neuraltalk.train.gradcheck import check_gradients
from neuraltalk.layers.affine import affine_backward, affine_forward
from neuraltalk.layers.dropout import dropout_backward, dropout_forward, dropout_mask
from neuraltalk.layers.embedding import embedding_backward, embedding_forward, scatter_rows
from neuraltalk.layers.lstm import lstm_backward, lstm_forward, lstm_step
from neuraltalk.layers.packed import layout, next_rows, pack, previous_rows
from neuraltalk.layers.rnn import rnn_backward, rnn_forward, rnn_step
from neuraltalk.layers.softmax import (log_softmax, softmax_cross_entropy_backward,
                                       softmax_cross_entropy_forward)

LENGTHS = (3, 5, 1, 5, 2)  # different lengths in one batch, two of them equal


def _assert_gradients(cost, arrays, analytic, eps=1e-4, limit=1e-7):
    # entries below 1e-8 both ways are round-off (the forget gate of a first step, say)
    errors = check_gradients(cost, arrays, analytic, eps=eps, min_magnitude=1e-8)
    worst = max(errors.values())
    print("worst relative error %.2e (%s)" % (worst, ", ".join(
        "%s %.1e" % kv for kv in sorted(errors.items()))))
    assert worst < limit, errors


def _packed_rows(rng, lengths, width):
    p = pack(lengths)
    return p, rng.normal(size=(int(p.offsets[-1]), width))


def test_pack_sorts_by_length_and_groups_rows_by_step():
    p = pack([2, 0, 3, 1])
    assert list(p.order) == [2, 0, 3, 1]
    assert list(p.counts) == [3, 2, 1]
    assert list(p.offsets) == [0, 3, 5, 6]
    assert list(p.sequence) == [0, 1, 2, 0, 1, 0]
    assert list(p.step) == [0, 0, 0, 1, 1, 2]
    assert list(previous_rows(p.counts)) == [0, 1, 3]
    rows, following = next_rows(p.counts)
    assert list(rows) == [0, 1, 3] and list(following) == [3, 4, 5]


def test_layout_packs_steps_of_sentences_sorted_by_length():
    words = np.array([[5, 6, 0], [0, 0, 0], [7, 8, 9], [4, 0, 0]])
    lay = layout(words, [2, 0, 3, 1])
    assert list(lay.order) == [2, 0, 3, 1]
    assert list(lay.counts) == [4, 3, 2, 1]  # sentences with n >= t, t = 0..3
    assert list(lay.sentence) == [0, 1, 2, 3, 0, 1, 2, 0, 1, 0]
    assert list(lay.step) == [0, 0, 0, 0, 1, 1, 1, 2, 2, 3]
    assert list(lay.inputs) == [0, 0, 0, 0, 7, 5, 4, 8, 6, 9]  # START, then w_t
    assert list(lay.targets) == [7, 5, 4, 0, 8, 6, 0, 9, 0, 0]  # w_{t+1}, then END


def test_layout_ignores_anything_past_a_sentence_length():
    lay = layout(np.array([[3, 4, 5]]), [1])
    assert list(lay.inputs) == [0, 3] and list(lay.targets) == [3, 0]


def test_embedding_gradient_is_the_scatter_add_of_its_rows():
    rng = np.random.default_rng(0)
    W = rng.normal(size=(8, 3))
    idx = rng.integers(0, 6, size=40)
    out, cache = embedding_forward(W, idx)
    np.testing.assert_array_equal(out, W[idx])
    dout = rng.normal(size=out.shape)
    expected = np.zeros_like(W)
    np.add.at(expected, idx, dout)
    np.testing.assert_allclose(embedding_backward(dout, cache), expected, rtol=1e-12)
    np.testing.assert_allclose(scatter_rows(8, idx, dout), expected, rtol=1e-12)
    _assert_gradients(lambda: float(np.sum(embedding_forward(W, idx)[0] * dout)), {"W": W},
                      {"W": expected})


def test_affine_gradients():
    rng = np.random.default_rng(1)
    x, w, b = rng.normal(size=(6, 4)), rng.normal(size=(4, 3)), rng.normal(size=(1, 3))
    dout = rng.normal(size=(6, 3))
    _, cache = affine_forward(x, w, b)
    dx, dw, db = affine_backward(dout, cache)
    _assert_gradients(lambda: float(np.sum(affine_forward(x, w, b)[0] * dout)),
                      {"x": x, "w": w, "b": b}, {"x": dx, "w": dw, "b": db})


def test_softmax_cross_entropy_is_neuraltalks_and_weights_rows():
    rng = np.random.default_rng(2)
    Y = rng.normal(size=(7, 5)) * 3
    targets = rng.integers(0, 5, size=7)
    weights = rng.normal(size=7)
    losses, cache = softmax_cross_entropy_forward(Y.copy(), targets)
    p = np.exp(Y) / np.exp(Y).sum(1, keepdims=True)
    np.testing.assert_allclose(losses, -np.log(1e-20 + p[np.arange(7), targets]), rtol=1e-12)
    dY = softmax_cross_entropy_backward(weights, cache)

    def cost():
        return float(np.dot(weights, softmax_cross_entropy_forward(Y.copy(), targets)[0]))
    _assert_gradients(cost, {"Y": Y}, {"Y": dY}, eps=1e-3)
    np.testing.assert_allclose(log_softmax(Y), np.log(1e-20 + p), rtol=1e-12)


def test_softmax_cross_entropy_with_zero_weights_has_zero_gradient():
    Y = np.random.default_rng(3).normal(size=(4, 6))
    _, cache = softmax_cross_entropy_forward(Y, np.array([0, 1, 2, 3]))
    assert not softmax_cross_entropy_backward(np.zeros(4), cache).any()


def _lstm_loop(P, Wh, lengths, order, h0, c0, tanhC):
    """A plain LSTM over each sequence alone, with the textbook sigmoid."""
    H = Wh.shape[0]
    p = pack(lengths)
    out = np.zeros((len(P), H))
    for j in range(len(order)):
        h = h0[j] if h0 is not None else np.zeros(H)
        c = c0[j] if c0 is not None else np.zeros(H)
        for t in range(int(np.asarray(lengths)[order[j]])):
            r = p.offsets[t] + j
            a = P[r] + h @ Wh
            i, f, o = (1 / (1 + np.exp(-a[k * H:(k + 1) * H])) for k in range(3))
            g = np.tanh(a[3 * H:])
            c = i * g + f * c
            h = o * (np.tanh(c) if tanhC else c)
            out[r] = h
    return out


@pytest.mark.parametrize("tanhC", [0, 1])
@pytest.mark.parametrize("initial_state", [False, True])
def test_lstm_equals_a_plain_loop_per_sequence(tanhC, initial_state):
    rng = np.random.default_rng(4)
    H = 3
    p, P = _packed_rows(rng, LENGTHS, 4 * H)
    Wh = rng.normal(size=(H, 4 * H)) * 0.5
    h0 = rng.normal(size=(5, H)) if initial_state else None
    c0 = rng.normal(size=(5, H)) if initial_state else None
    out, _ = lstm_forward(P.copy(), Wh, p.counts, h0, c0, tanhC)
    np.testing.assert_allclose(out, _lstm_loop(P, Wh, LENGTHS, p.order, h0, c0, tanhC),
                               rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("tanhC", [0, 1])
@pytest.mark.parametrize("initial_state", [False, True])
def test_lstm_gradients_of_inputs_weights_and_initial_state(tanhC, initial_state):
    rng = np.random.default_rng(5)
    H = 3
    p, P = _packed_rows(rng, LENGTHS, 4 * H)
    Wh = rng.normal(size=(H, 4 * H)) * 0.5
    arrays = {"P": P, "Wh": Wh}
    if initial_state:
        arrays.update(h0=rng.normal(size=(5, H)), c0=rng.normal(size=(5, H)))
    dout = rng.normal(size=(len(P), H))

    def forward():
        return lstm_forward(P.copy(), Wh, p.counts, arrays.get("h0"), arrays.get("c0"), tanhC)
    _, cache = forward()
    dP, dWh, dh0, dc0 = lstm_backward(dout, cache)
    analytic = {"P": dP, "Wh": dWh, "h0": dh0, "c0": dc0}
    _assert_gradients(lambda: float(np.sum(forward()[0] * dout)), arrays,
                      {k: analytic[k] for k in arrays})


@pytest.mark.parametrize("tanhC", [0, 1])
def test_lstm_step_is_the_sequence_cell(tanhC):
    rng = np.random.default_rng(6)
    H = 4
    P = rng.normal(size=(6, 4 * H)).astype(np.float32)  # 3 rows, 2 steps
    Wh = rng.normal(size=(H, 4 * H)).astype(np.float32)
    h0, c0 = rng.normal(size=(2, 3, H)).astype(np.float32)
    out, cache = lstm_forward(P.copy(), Wh, [3, 3], h0, c0, tanhC)
    h, c = lstm_step(P[:3].copy(), h0, c0, Wh, tanhC)
    h, c = lstm_step(P[3:].copy(), h, c, Wh, tanhC)
    np.testing.assert_array_equal(h, out[3:])  # bit for bit: one cell, written once
    np.testing.assert_array_equal(c, cache.C[3:])


def _rnn_loop(A, Wh, lengths, order, h0, reverse, nonlinearity):
    f = (lambda z: np.maximum(z, 0)) if nonlinearity == "relu" else np.tanh
    p = pack(lengths)
    out = np.zeros_like(A)
    for j in range(len(order)):
        n = int(np.asarray(lengths)[order[j]])
        h = h0[j] if h0 is not None else np.zeros(A.shape[1])
        for t in (reversed(range(n)) if reverse else range(n)):
            r = p.offsets[t] + j
            h = f(A[r] + h @ Wh)
            out[r] = h
    return out


RNN_OPTIONS = [(False, "relu", False), (False, "tanh", False), (True, "relu", False),
               (True, "tanh", False), (False, "relu", True), (False, "tanh", True)]


@pytest.mark.parametrize("reverse,nonlinearity,initial_state", RNN_OPTIONS)
def test_rnn_equals_a_plain_loop_per_sequence(reverse, nonlinearity, initial_state):
    rng = np.random.default_rng(7)
    p, A = _packed_rows(rng, LENGTHS, 4)
    Wh = rng.normal(size=(4, 4)) * 0.5
    h0 = rng.normal(size=(5, 4)) if initial_state else None
    out, _ = rnn_forward(A.copy(), Wh, p.counts, h0, reverse, nonlinearity)
    np.testing.assert_allclose(out, _rnn_loop(A, Wh, LENGTHS, p.order, h0, reverse, nonlinearity),
                               rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("reverse,nonlinearity,initial_state", RNN_OPTIONS)
def test_rnn_gradients_of_inputs_weights_and_initial_state(reverse, nonlinearity, initial_state):
    rng = np.random.default_rng(8)
    p, A = _packed_rows(rng, LENGTHS, 4)
    A += np.sign(A) * 0.05  # no pre-activation within a finite-difference step of the kink
    Wh = rng.normal(size=(4, 4)) * 0.3
    arrays = {"A": A, "Wh": Wh}
    if initial_state:
        arrays["h0"] = rng.normal(size=(5, 4))
    dout = rng.normal(size=A.shape)

    def forward():
        return rnn_forward(A.copy(), Wh, p.counts, arrays.get("h0"), reverse, nonlinearity)
    _, cache = forward()
    dA, dWh, dh0 = rnn_backward(dout, cache)
    analytic = {"A": dA, "Wh": dWh, "h0": dh0}
    _assert_gradients(lambda: float(np.sum(forward()[0] * dout)), arrays,
                      {k: analytic[k] for k in arrays}, eps=1e-6)


@pytest.mark.parametrize("nonlinearity", ["relu", "tanh"])
def test_rnn_step_is_the_sequence_recurrence(nonlinearity):
    rng = np.random.default_rng(9)
    A = rng.normal(size=(6, 4))
    Wh = rng.normal(size=(4, 4))
    h0 = rng.normal(size=(3, 4))
    out, _ = rnn_forward(A.copy(), Wh, [3, 3], h0, nonlinearity=nonlinearity)
    h = rnn_step(A[3:], rnn_step(A[:3], h0, Wh, nonlinearity), Wh, nonlinearity)
    np.testing.assert_array_equal(h, out[3:])


def test_dropout_mask_keeps_one_minus_p_and_scales_by_its_inverse():
    mask = dropout_mask((400, 500), 0.3, np.random.default_rng(10))
    kept = mask > 0
    assert abs(kept.mean() - 0.7) < 0.005  # 200,000 draws: 4 standard deviations
    np.testing.assert_allclose(mask[kept], 1 / 0.7, rtol=1e-6)
    assert abs(mask.mean() - 1) < 0.01  # inverted: the expectation is unchanged
    assert dropout_mask((3, 3), 0.0, np.random.default_rng(0)) is None
    assert dropout_mask((3, 3), 0.5, None) is None


def test_dropout_gradient_is_the_mask():
    rng = np.random.default_rng(11)
    x = rng.normal(size=(5, 6))
    mask = dropout_mask(x.shape, 0.5, rng, dtype=np.float64)
    dout = rng.normal(size=x.shape)
    _assert_gradients(lambda: float(np.sum(dropout_forward(x, mask) * dout)), {"x": x},
                      {"x": dropout_backward(dout, mask)})


def test_lstm_split_into_sequence_groups_on_threads_gives_the_one_group_results(monkeypatch):
    from neuraltalk.layers import blas
    from neuraltalk.layers.lstm import lstm_backward, lstm_forward
    rng = np.random.default_rng(5)
    H = 8
    counts = np.array([48, 48, 40, 33, 20, 7, 1])
    N = counts.sum()
    P = rng.normal(size=(N, 4 * H)).astype(np.float32)
    Wh = rng.normal(scale=0.3, size=(H, 4 * H)).astype(np.float32)
    h0, c0 = rng.normal(size=(2, 48, H)).astype(np.float32)
    dH = rng.normal(size=(N, H)).astype(np.float32)
    results = []
    for parts in (1, 2, 3):
        monkeypatch.setattr(blas, "threads", lambda parts=parts: parts)
        out, cache = lstm_forward(P.copy(), Wh, counts, h0, c0)
        results.append((out, *lstm_backward(dH, cache)))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("reverse", [False, True])
def test_rnn_split_into_sequence_groups_on_threads_gives_the_one_group_results(monkeypatch,
                                                                               reverse):
    from neuraltalk.layers import blas
    from neuraltalk.layers.rnn import rnn_backward, rnn_forward
    rng = np.random.default_rng(6)
    H = 8
    counts = np.array([48, 48, 40, 33, 20, 7, 1])
    N = counts.sum()
    A = rng.normal(size=(N, H))
    Wh = rng.normal(scale=0.3, size=(H, H))
    h0 = None if reverse else rng.normal(size=(48, H))
    dH = rng.normal(size=(N, H))
    results = []
    for parts in (1, 2, 3):
        monkeypatch.setattr(blas, "threads", lambda parts=parts: parts)
        out, cache = rnn_forward(A.copy(), Wh, counts, h0, reverse=reverse)
        results.append((out.copy(), *[g for g in rnn_backward(dH, cache) if g is not None]))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_in_threads_runs_every_item_once_and_nested_calls_inline(monkeypatch):
    import threading

    from neuraltalk.layers import blas
    monkeypatch.setattr(blas, "threads", lambda: 2)
    done, lock = [], threading.Lock()

    def outer(i):
        inner_threads = []
        blas.in_threads(lambda j: inner_threads.append(threading.current_thread()), range(3))
        assert inner_threads == [threading.current_thread()] * 3  # no deadlock, no new threads
        with lock:
            done.append(i)
    blas.in_threads(outer, range(7))
    assert sorted(done) == list(range(7))
    ran = []
    blas.in_threads(ran.append, range(3), min_items=4)  # too few: here, in order
    assert ran == [0, 1, 2]


def test_in_threads_raises_what_an_item_raised(monkeypatch):
    from neuraltalk.layers import blas
    monkeypatch.setattr(blas, "threads", lambda: 2)

    def fail(i):
        if i == 3:
            raise ValueError("item 3")
    with pytest.raises(ValueError, match="item 3"):
        blas.in_threads(fail, range(6))


def test_in_threads_from_several_python_threads_at_once_runs_every_item_once(monkeypatch):
    # one caller has the crew, the others find it busy and run their items themselves
    import threading

    from neuraltalk.layers import blas
    monkeypatch.setattr(blas, "threads", lambda: 2)
    results = {}

    def caller(c):
        seen, lock = [], threading.Lock()

        def item(i):
            with lock:
                seen.append(i)
        for _ in range(50):
            blas.in_threads(item, range(5))
        results[c] = sorted(seen)
    callers = [threading.Thread(target=caller, args=(c,)) for c in range(4)]
    for t in callers:
        t.start()
    for t in callers:
        t.join()
    assert results == {c: sorted(list(range(5)) * 50) for c in range(4)}


def test_the_crew_is_kept_and_still_works_after_an_error(monkeypatch):
    import threading

    from neuraltalk.layers import blas
    monkeypatch.setattr(blas, "threads", lambda: 2)
    blas.in_threads(lambda i: None, range(4))
    before = threading.active_count()

    def fail(i):
        raise KeyError(i)
    for _ in range(3):
        with pytest.raises(KeyError):
            blas.in_threads(fail, range(4))
    ran = []
    blas.in_threads(ran.append, range(6))
    assert sorted(ran) == list(range(6))
    assert threading.active_count() == before  # no thread made per call


def test_a_ctrl_c_while_waiting_for_a_helper_is_raised_after_the_helper_is_done(monkeypatch):
    import signal
    import threading
    import time

    from neuraltalk.layers import blas
    monkeypatch.setattr(blas, "threads", lambda: 2)
    main, finished = threading.current_thread(), []

    def item(i):  # this thread's item is short, but long enough for the helper to take one
        if threading.current_thread() is main:
            time.sleep(0.05)
        else:
            time.sleep(0.3)
            finished.append(i)

    def interrupt(*_):
        raise KeyboardInterrupt
    old = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.1)  # while this thread waits for the helper
        with pytest.raises(KeyboardInterrupt):
            blas.in_threads(item, range(2))
        assert len(finished) == 1  # the helper's item was done before the interrupt rose
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    ran = []
    blas.in_threads(ran.append, range(4))  # and the crew works on
    assert sorted(ran) == list(range(4))
