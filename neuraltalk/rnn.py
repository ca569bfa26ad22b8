"""The multimodal RNN of Karpathy & Fei-Fei, exactly as NeuralTalk computes it.

b_v = x_img = f We + be (made by generators.py); inputs [Ws[START], Ws[w_1], ..., Ws[w_n]];
xs_t = x_t Wxh + bxh; h_t = ReLU(x_img + xs_t + h_{t-1} Whh + bhh), the image at every
step, or at the first only (rnn_feed_once); rnn_relu_encoders applies ReLU to xs_t and
x_img first. Encoder dropout on the word vectors and on x_img, separately. Outputs
h_t Wd + bd at all n+1 steps, scored against w_1, ..., w_n, END.

Layout ("packed", time-major, no padding): the sentences come in decreasing order of
length; step t (t = 0 is START) runs on the first counts[t] sentences and its rows follow
those of step t-1, so the N = sum(counts) rows of every array below hold no padding and
the rows of a step are contiguous.
"""
import numpy as np

REGULARIZED = ("We", "Ws", "Wxh", "Whh", "Wd")


def init(D, E, H, V, rng, dtype=np.float32):
    def uniform(*shape):  # NeuralTalk's initw: uniform in [-0.1, 0.1]
        return (rng.random(shape) * 0.2 - 0.1).astype(dtype)
    return {"We": uniform(D, H), "be": np.zeros((1, H), dtype), "Ws": uniform(V, E),
            "Wxh": uniform(E, H), "bxh": np.zeros((1, H), dtype),
            "Whh": uniform(H, H), "bhh": np.zeros((1, H), dtype),
            "Wd": uniform(H, V) * dtype(0.1), "bd": np.zeros((1, V), dtype)}


def steps(counts):
    """Rows per step and where each step starts."""
    rows = [int(k) for k in counts]
    return rows, np.concatenate([[0], np.cumsum(rows)]).astype(np.int64)


def forward(model, Xi, Xs, counts, params, enc_mask=None, dec_mask=None):
    """The hidden states of every step, Hdec (N, H), and the cache for backward.

    Xi (B, H): image encodings; Xs (N, E): word vectors, packed (see the module doc);
    counts: sentences running at each step (non-increasing, counts[0] = B).
    enc_mask: None or (word-vector mask (N, E), image mask (B, H)); dec_mask (N, H);
    inverted-dropout masks, already scaled.
    """
    relu_enc = params.get("rnn_relu_encoders", 0)
    feed_once = params.get("rnn_feed_once", 0)
    rows, offsets = steps(counts)
    if enc_mask is not None:
        Xs = Xs * enc_mask[0]
        Xi = Xi * enc_mask[1]
    Xsh = Xs @ model["Wxh"]
    Xsh += model["bxh"]
    if relu_enc:
        A = np.maximum(Xsh, 0)
        Xi_in = np.maximum(Xi, 0)
    else:
        A, Xsh = Xsh, None  # the pre-activations are built in place
        Xi_in = Xi
    A += model["bhh"]
    Whh = model["Whh"]
    buf = np.empty((rows[0], Whh.shape[1]), A.dtype)
    for t, k in enumerate(rows):  # the recurrence: the only loop, over time
        cur = slice(offsets[t], offsets[t] + k)
        a = A[cur]
        if t == 0 or not feed_once:
            a += Xi_in[:k]
        if t > 0:
            a += np.matmul(A[offsets[t - 1]:offsets[t - 1] + k], Whh, out=buf[:k])
        np.maximum(a, 0, out=a)  # A now holds h_t in these rows
    Hh = A
    Hdec = Hh if dec_mask is None else Hh * dec_mask
    cache = (model, Xs, Xi, Xsh, Hh, rows, offsets, relu_enc, feed_once, enc_mask, dec_mask)
    return Hdec, cache


def backward(dHdec, cache):
    """dHdec (N, H) -> (grads of Wxh, bxh, Whh, bhh; dXi (B, H); dXs (N, E))."""
    model, Xs, Xi, Xsh, Hh, rows, offsets, relu_enc, feed_once, enc_mask, dec_mask = cache
    dA = dHdec * dec_mask if dec_mask is not None else dHdec.copy()
    Whh_T = model["Whh"].T
    buf = np.empty((rows[0], Whh_T.shape[1]), dA.dtype)
    dXi = np.zeros((rows[0], dA.shape[1]), dA.dtype)
    for t in reversed(range(len(rows))):
        k = rows[t]
        da = dA[offsets[t]:offsets[t] + k]
        da *= Hh[offsets[t]:offsets[t] + k] > 0  # through the ReLU: dA becomes d(pre-activation)
        if t == 0 or not feed_once:
            dXi[:k] += da
        if t > 0:
            dA[offsets[t - 1]:offsets[t - 1] + k] += np.matmul(da, Whh_T, out=buf[:k])
    B = rows[0]
    prev = np.concatenate([np.arange(offsets[t - 1], offsets[t - 1] + rows[t])
                           for t in range(1, len(rows))] + [np.zeros(0, np.int64)])
    grads = {"Whh": Hh[prev].T @ dA[B:], "bhh": dA.sum(0, keepdims=True)}
    if relu_enc:
        dA *= Xsh > 0
        dXi *= Xi > 0
    grads["Wxh"] = Xs.T @ dA
    grads["bxh"] = dA.sum(0, keepdims=True)
    dXs = dA @ model["Wxh"].T
    if enc_mask is not None:
        dXs *= enc_mask[0]
        dXi *= enc_mask[1]
    return grads, dXi, dXs


def start(model, feats, params):
    """Prediction state before the first word: h = 0 and the image encoding to add."""
    Xi = feats @ model["We"] + model["be"]
    if params.get("rnn_relu_encoders", 0):
        Xi = np.maximum(Xi, 0)
    return {"h": np.zeros((len(Xi), model["Whh"].shape[0]), dtype=Xi.dtype), "image": Xi}


def step(model, state, prev_words, params):
    """Feed Ws[prev_words] (B,); returns the logits (B, V) of the next word and the new state."""
    xsh = model["Ws"][prev_words] @ model["Wxh"] + model["bxh"]
    if params.get("rnn_relu_encoders", 0):
        xsh = np.maximum(xsh, 0)
    h = np.maximum(xsh + state["image"] + state["h"] @ model["Whh"] + model["bhh"], 0)
    image = np.zeros_like(state["image"]) if params.get("rnn_feed_once", 0) else state["image"]
    return h @ model["Wd"] + model["bd"], {"h": h, "image": image}
