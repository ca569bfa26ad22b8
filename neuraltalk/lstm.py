"""The LSTM generator of Show and Tell, exactly as NeuralTalk computes it.

Inputs per sentence: [x_img, Ws[START], Ws[w_1], ..., Ws[w_n]] (x_img = f We + be, made by
generators.py). Gate pre-activations [1, x_t, h_{t-1}] @ WLSTM, columns ordered i, f, o, g;
c_t = i*g + f*c_{t-1} with c_{-1} = 0, h_t = o*c_t (o*tanh(c_t) with tanhC_version).
The output at the image step is not scored: the states to decode are those of the word
steps (START, w_1, ..., w_n), scored against w_1, ..., w_n, END.

Layout ("packed", time-major, no padding): the sentences come in decreasing order of
length; word step t (t = 0 is START) runs on the first counts[t] sentences, and its rows
follow those of step t-1. The image step runs on all B sentences, before the word steps.
So every array below has B image rows followed by N = sum(counts) word rows, and the
rows of a step are contiguous.
"""
import numpy as np

REGULARIZED = ("We", "Ws", "WLSTM", "Wd")


def init(D, E, H, V, rng, dtype=np.float32):
    def uniform(*shape):  # NeuralTalk's initw: uniform in [-0.1, 0.1]
        return (rng.random(shape) * 0.2 - 0.1).astype(dtype)
    return {"We": uniform(D, E), "be": np.zeros((1, E), dtype), "Ws": uniform(V, E),
            "WLSTM": uniform(1 + E + H, 4 * H), "Wd": uniform(H, V),
            "bd": np.zeros((1, V), dtype)}


def steps(B, counts):
    """Rows per step (the image step, then the word steps) and where each step starts."""
    rows = [B] + [int(k) for k in counts]
    return rows, np.concatenate([[0], np.cumsum(rows)]).astype(np.int64)


def previous_rows(rows, offsets):
    """For each word row, the row of the same sentence at the step before."""
    return np.concatenate([np.arange(offsets[s - 1], offsets[s - 1] + rows[s])
                           for s in range(1, len(rows))])


def forward(model, Xi, Xs, counts, params, enc_mask=None, dec_mask=None):
    """The hidden states of the word steps, Hdec (N, H), and the cache for backward.

    Xi (B, E): image encodings; Xs (N, E): word vectors, packed (see the module doc);
    counts: sentences running at each word step (non-increasing, counts[0] = B).
    enc_mask (B + N, E): inverted-dropout mask of the whole input sequence (image rows
    first); dec_mask (N, H): of the states before the decoder. Both already scaled, or None.
    """
    WLSTM = model["WLSTM"]
    H = WLSTM.shape[1] // 4
    E = WLSTM.shape[0] - 1 - H
    B = len(Xi)
    rows, offsets = steps(B, counts)
    X = np.concatenate([Xi, Xs])
    if enc_mask is not None:
        X *= enc_mask
    # sigmoid(z) = (1 + tanh(z/2)) / 2: one tanh over all four gates of a step, much
    # faster than exp; halving the i, f, o columns of WLSTM first is exact
    W = WLSTM.copy()
    W[:, :3 * H] *= 0.5
    # the input part of every gate pre-activation at once: one big product
    IFOG = X @ W[1:1 + E]
    IFOG += W[0]
    Wh = W[1 + E:]
    C = np.empty((len(X), H), X.dtype)
    Hout = np.empty((len(X), H), X.dtype)
    buf = np.empty((B, 4 * H), X.dtype)
    for s, k in enumerate(rows):  # the recurrence: the only loop, over time
        cur = slice(offsets[s], offsets[s] + k)
        a = IFOG[cur]  # pre-activations, replaced in place by the gates i, f, o, g
        if s > 0:
            prev = slice(offsets[s - 1], offsets[s - 1] + k)
            a += np.matmul(Hout[prev], Wh, out=buf[:k])
        np.tanh(a, out=a)
        a[:, :3 * H] += 1
        a[:, :3 * H] *= 0.5  # i, f, o = sigmoid; g = tanh
        c = np.multiply(a[:, :H], a[:, 3 * H:], out=C[cur])
        if s > 0:
            c += np.multiply(a[:, H:2 * H], C[prev], out=buf[:k, :H])
        if params.get("tanhC_version", 0):
            np.multiply(a[:, 2 * H:3 * H], np.tanh(c, out=buf[:k, :H]), out=Hout[cur])
        else:
            np.multiply(a[:, 2 * H:3 * H], c, out=Hout[cur])
    Hdec = Hout[B:]
    if dec_mask is not None:
        Hdec = Hdec * dec_mask
    cache = (WLSTM, X, IFOG, C, Hout, rows, offsets, params.get("tanhC_version", 0),
             enc_mask, dec_mask)
    return Hdec, cache


def backward(dHdec, cache):
    """dHdec (N, H) -> ({"WLSTM": dWLSTM}, dXi (B, E), dXs (N, E))."""
    WLSTM, X, IFOGf, C, Hout, rows, offsets, tanhC, enc_mask, dec_mask = cache
    H = WLSTM.shape[1] // 4
    E = WLSTM.shape[0] - 1 - H
    B = rows[0]
    dHout = np.empty_like(Hout)
    dHout[:B] = 0
    if dec_mask is not None:
        np.multiply(dHdec, dec_mask, out=dHout[B:])
    else:
        dHout[B:] = dHdec
    dIFOG = np.empty_like(IFOGf)
    dC = np.zeros((B, H), X.dtype)  # gradient on c_t from step t+1, per sentence
    buf = np.empty((B, 4 * H), X.dtype)
    hbuf = np.empty((B, H), X.dtype)
    Wh_T = WLSTM[1 + E:].T
    for s in reversed(range(len(rows))):
        k = rows[s]
        cur = slice(offsets[s], offsets[s] + k)
        a, d, dh, dc = IFOGf[cur], dIFOG[cur], dHout[cur], dC[:k]
        i, f, o, g = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        tmp = buf[:k, :H]
        if tanhC:
            tc = np.tanh(C[cur], out=buf[:k, H:2 * H])
            np.multiply(tc, dh, out=d[:, 2 * H:3 * H])
            np.multiply(tc, tc, out=tmp)
            np.subtract(1, tmp, out=tmp)
            tmp *= o
            tmp *= dh
            dc += tmp
        else:
            np.multiply(C[cur], dh, out=d[:, 2 * H:3 * H])
            dc += np.multiply(o, dh, out=tmp)
        if s > 0:
            prev = slice(offsets[s - 1], offsets[s - 1] + k)
            np.multiply(C[prev], dc, out=d[:, H:2 * H])
        else:
            d[:, H:2 * H] = 0  # c_{-1} = 0: the forget gate of the image step has no effect
        np.multiply(g, dc, out=d[:, :H])
        # sigmoid' = y(1-y) on i, f, o; tanh' = 1-y^2 on g
        y = buf[:k, :3 * H]
        np.subtract(1, a[:, :3 * H], out=y)
        y *= a[:, :3 * H]
        d[:, :3 * H] *= y
        np.multiply(g, g, out=tmp)
        np.subtract(1, tmp, out=tmp)
        tmp *= i
        np.multiply(tmp, dc, out=d[:, 3 * H:])
        if s > 0:
            dHout[prev] += np.matmul(d, Wh_T, out=hbuf[:k])
            dc *= f
    dWLSTM = np.empty_like(WLSTM)
    dWLSTM[0] = dIFOG.sum(0)
    np.matmul(X.T, dIFOG, out=dWLSTM[1:1 + E])
    np.matmul(Hout[previous_rows(rows, offsets)].T, dIFOG[B:], out=dWLSTM[1 + E:])
    dX = dIFOG @ WLSTM[1:1 + E].T
    if enc_mask is not None:
        dX *= enc_mask
    return {"WLSTM": dWLSTM}, dX[:B], dX[B:]


def start(model, feats, params):
    """The image step of prediction: the state after feeding x_img = f We + be (f: (B, D))
    with h = c = 0."""
    Xi = feats @ model["We"] + model["be"]
    zeros = np.zeros((len(Xi), model["WLSTM"].shape[1] // 4), dtype=Xi.dtype)
    h, c = tick(model, Xi, zeros, zeros, params)
    return {"h": h, "c": c}


def step(model, state, prev_words, params):
    """Feed Ws[prev_words] (B,); returns the logits (B, V) of the next word and the new state."""
    h, c = tick(model, model["Ws"][prev_words], state["h"], state["c"], params)
    return h @ model["Wd"] + model["bd"], {"h": h, "c": c}


def tick(model, x, h_prev, c_prev, params):
    WLSTM = model["WLSTM"]
    H = h_prev.shape[1]
    E = WLSTM.shape[0] - 1 - H
    IFOG = WLSTM[0] + x @ WLSTM[1:1 + E] + h_prev @ WLSTM[1 + E:]
    ifo = 0.5 * (1 + np.tanh(0.5 * IFOG[:, :3 * H]))  # sigmoid, without overflow
    g = np.tanh(IFOG[:, 3 * H:])
    c = ifo[:, :H] * g + ifo[:, H:2 * H] * c_prev
    h = ifo[:, 2 * H:] * (np.tanh(c) if params.get("tanhC_version", 0) else c)
    return h, c
