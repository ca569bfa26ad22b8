"""The multimodal RNN of Karpathy & Fei-Fei, exactly as NeuralTalk computes it.

b_v = x_img = f We + be; inputs [Ws[START], Ws[w_1], ..., Ws[w_n]];
xs_t = Ws[.] Wxh + bxh; h_t = ReLU(x_img + xs_t + h_{t-1} Whh + bhh) with the image at
every step, or at the first only (rnn_feed_once); rnn_relu_encoders applies ReLU to
xs_t and x_img first. Outputs h_t Wd + bd at all n+1 steps, scored against w_1..w_n, END.

Shapes: feats (B, D); words (B, T); lengths (B,) in decreasing order; word inputs
(S, B, E), time-major, with S = T + 1; step t runs only on sentences still being scored.
"""
import numpy as np


def init(D, E, H, V, rng, dtype=np.float32):
    def uniform(*shape):  # NeuralTalk's initw: uniform in [-0.1, 0.1]
        return (rng.random(shape) * 0.2 - 0.1).astype(dtype)
    return {"We": uniform(D, H), "be": np.zeros((1, H), dtype), "Ws": uniform(V, E),
            "Wxh": uniform(E, H), "bxh": np.zeros((1, H), dtype),
            "Whh": uniform(H, H), "bhh": np.zeros((1, H), dtype),
            "Wd": uniform(H, V) * dtype(0.1), "bd": np.zeros((1, V), dtype)}


REGULARIZED = ("We", "Ws", "Wxh", "Whh", "Wd")


def encoder_mask_shapes(words, model):
    """Shapes of the two encoder dropout masks: word vectors and image encoding."""
    return (words.shape[1] + 1, len(words), model["Ws"].shape[1]), (len(words), model["We"].shape[1])


def forward(model, feats, words, lengths, params, enc_mask=None, dec_mask=None):
    """Hidden states to decode, Hdec (T+1, B, H) time-major, and the cache for backward.

    Sentences must come in decreasing order of length: step t runs on the sentences
    with at least t words only. enc_mask: None or a pair (word-vector mask (T+1, B, E),
    image mask (B, H)); dec_mask (T+1, B, H); inverted-dropout masks already scaled.
    """
    relu_enc = params.get("rnn_relu_encoders", 0)
    feed_once = params.get("rnn_feed_once", 0)
    Xi = feats @ model["We"] + model["be"]
    index = np.concatenate([np.zeros((1, len(words)), words.dtype), words.T])
    Xs = model["Ws"][index]
    if enc_mask is not None:
        Xs = Xs * enc_mask[0]
        Xi = Xi * enc_mask[1]
    S, B, E = Xs.shape
    Xsh = (Xs.reshape(S * B, E) @ model["Wxh"] + model["bxh"]).reshape(S, B, -1)
    if relu_enc:
        Xsh = np.maximum(Xsh, 0)
        Xi_in = np.maximum(Xi, 0)
    else:
        Xi_in = Xi
    active = [int((lengths >= t).sum()) for t in range(S)]
    Hh = np.zeros((S, B, model["Whh"].shape[0]), dtype=Xsh.dtype)
    Whh, bhh = model["Whh"], model["bhh"]
    for t in range(S):  # the recurrence: the only loop, over time
        k = active[t]
        a = Xsh[t, :k] + bhh
        if t == 0 or not feed_once:
            a += Xi_in[:k]
        if t > 0:
            a += Hh[t - 1, :k] @ Whh
        Hh[t, :k] = np.maximum(a, 0)
    Hdec = Hh if dec_mask is None else Hh * dec_mask
    cache = (model, feats, index, Xs, Xi, Xsh, Hh, active, params, enc_mask, dec_mask)
    return Hdec, cache


def backward(dHdec, cache):
    """dHdec (T+1, B, H) -> (grads of every parameter except Wd/bd, dXi (B, H))."""
    model, feats, index, Xs, Xi, Xsh, Hh, active, params, enc_mask, dec_mask = cache
    relu_enc = params.get("rnn_relu_encoders", 0)
    feed_once = params.get("rnn_feed_once", 0)
    dH = dHdec * dec_mask if dec_mask is not None else dHdec.copy()
    S, B, Hn = Hh.shape
    dA = np.zeros_like(Hh)  # gradient at the pre-activation of each step
    Whh_T = model["Whh"].T
    for t in reversed(range(S)):
        k = active[t]
        dA[t, :k] = dH[t, :k] * (Hh[t, :k] > 0)
        if t > 0:
            dH[t - 1, :k] += dA[t, :k] @ Whh_T
    dXi_in = dA[0] if feed_once else dA.sum(0)
    dXsh = dA
    if relu_enc:
        dXsh = dXsh * (Xsh > 0)
        dXi = dXi_in * (Xi > 0)
    else:
        dXi = dXi_in
    E = Xs.shape[2]
    grads = {
        "Whh": Hh[:-1].reshape(-1, Hn).T @ dA[1:].reshape(-1, Hn),
        "bhh": dA.sum((0, 1))[None, :],
        "Wxh": Xs.reshape(-1, E).T @ dXsh.reshape(-1, Hn),
        "bxh": dXsh.sum((0, 1))[None, :],
    }
    dXs = dXsh.reshape(-1, Hn) @ model["Wxh"].T
    if enc_mask is not None:
        dXs *= enc_mask[0].reshape(-1, E)
        dXi = dXi * enc_mask[1]
    dWs = np.zeros_like(model["Ws"])
    np.add.at(dWs, index.ravel(), dXs)
    grads["Ws"] = dWs
    grads["We"] = feats.T @ dXi
    grads["be"] = dXi.sum(0, keepdims=True)
    return grads, dXi


def start(model, feats, params):
    """Prediction state before the first word: h = 0 and the image encoding to add."""
    Xi = feats @ model["We"] + model["be"]
    if params.get("rnn_relu_encoders", 0):
        Xi = np.maximum(Xi, 0)
    return {"h": np.zeros((len(feats), model["Whh"].shape[0]), dtype=Xi.dtype), "image": Xi}


def step(model, state, prev_words, params):
    """Feed Ws[prev_words]; returns the logits (B, V) of the next word and the new state."""
    xs = model["Ws"][prev_words] @ model["Wxh"] + model["bxh"]
    if params.get("rnn_relu_encoders", 0):
        xs = np.maximum(xs, 0)
    h = np.maximum(xs + state["image"] + state["h"] @ model["Whh"] + model["bhh"], 0)
    image = state["image"] * 0 if params.get("rnn_feed_once", 0) else state["image"]
    return h @ model["Wd"] + model["bd"], {"h": h, "image": image}
