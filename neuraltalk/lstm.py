"""The LSTM generator of Show and Tell, exactly as NeuralTalk computes it.

Inputs per sentence: [x_img, Ws[START], Ws[w_1], ..., Ws[w_n]], with x_img = f We + be.
Gate pre-activations [1, x_t, h_{t-1}] @ WLSTM, columns ordered i, f, o, g;
c_t = i*g + f*c_{t-1} (c_{-1} = 0), h_t = o*c_t (o*tanh(c_t) with tanhC_version).
Outputs h_t Wd + bd for steps 1..n+1, scored against w_1..w_n, END.

Shapes: feats (B, D); words (B, T) padded; lengths (B,) in decreasing order; inputs X
(S, B, E), time-major, with S = T + 2 steps. Step t runs only on the sentences that
still have a word to score, so padding costs nothing in the recurrence.
"""
import numpy as np


def init(D, E, H, V, rng, dtype=np.float32):
    def uniform(*shape):  # NeuralTalk's initw: uniform in [-0.1, 0.1]
        return (rng.random(shape) * 0.2 - 0.1).astype(dtype)
    return {"We": uniform(D, E), "be": np.zeros((1, E), dtype), "Ws": uniform(V, E),
            "WLSTM": uniform(1 + E + H, 4 * H), "Wd": uniform(H, V),
            "bd": np.zeros((1, V), dtype)}


REGULARIZED = ("We", "Ws", "WLSTM", "Wd")


def sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # = 1 / (1 + exp(-x)), without overflow


def encoder_inputs(model, feats, words):
    """X (T+2, B, E), time-major: the image encoding, then START, then the words."""
    Xi = feats @ model["We"] + model["be"]
    Xw = model["Ws"][np.concatenate([np.zeros((1, len(words)), words.dtype), words.T])]
    return np.concatenate([Xi[None], Xw], axis=0)


def encoder_mask_shape(words, model):
    return (words.shape[1] + 2, len(words), model["Ws"].shape[1])


def active_rows(lengths, steps):
    """How many sentences step t still serves (lengths sorted in decreasing order):
    step t >= 1 produces the output scored against word t (END after the last word)."""
    return [len(lengths)] + [int((lengths >= t - 1).sum()) for t in range(1, steps)]


def forward(model, feats, words, lengths, params, enc_mask=None, dec_mask=None):
    """Hidden states to decode, Hdec (T+1, B, H) time-major, and the cache for backward.

    Sentences must come in decreasing order of length: step t then runs on the first
    active[t] rows only, so no work is spent on padding. enc_mask (T+2, B, E) and
    dec_mask (T+1, B, H) are inverted-dropout masks (already scaled) or None.
    """
    tanhC = params.get("tanhC_version", 0)
    WLSTM = model["WLSTM"]
    E = model["Ws"].shape[1]
    H = model["Wd"].shape[0]
    X = encoder_inputs(model, feats, words)
    if enc_mask is not None:
        X = X * enc_mask
    S, B, _ = X.shape
    active = active_rows(lengths, S)
    # the input part of every gate pre-activation at once: one big product
    IFOG = (X.reshape(S * B, E) @ WLSTM[1:1 + E] + WLSTM[0]).reshape(S, B, 4 * H)
    Wh = WLSTM[1 + E:]
    IFOGf = np.zeros_like(IFOG)
    C = np.zeros((S, B, H), dtype=X.dtype)
    Hout = np.zeros((S, B, H), dtype=X.dtype)
    for t in range(S):  # the recurrence: the only loop, over time
        k = active[t]
        if t > 0:
            IFOG[t, :k] += Hout[t - 1, :k] @ Wh
        IFOGf[t, :k, :3 * H] = sigmoid(IFOG[t, :k, :3 * H])
        IFOGf[t, :k, 3 * H:] = np.tanh(IFOG[t, :k, 3 * H:])
        C[t, :k] = IFOGf[t, :k, :H] * IFOGf[t, :k, 3 * H:]
        if t > 0:
            C[t, :k] += IFOGf[t, :k, H:2 * H] * C[t - 1, :k]
        Hout[t, :k] = IFOGf[t, :k, 2 * H:3 * H] * (np.tanh(C[t, :k]) if tanhC else C[t, :k])
    Hdec = Hout[1:]
    if dec_mask is not None:
        Hdec = Hdec * dec_mask
    cache = (model, feats, words, X, IFOGf, C, Hout, tanhC, active, enc_mask, dec_mask)
    return Hdec, cache


def backward(dHdec, cache):
    """dHdec (T+1, B, H) -> (grads of every parameter except Wd/bd, dXi (B, E))."""
    model, feats, words, X, IFOGf, C, Hout, tanhC, active, enc_mask, dec_mask = cache
    WLSTM = model["WLSTM"]
    E = model["Ws"].shape[1]
    H = model["Wd"].shape[0]
    S, B, _ = X.shape
    if dec_mask is not None:
        dHdec = dHdec * dec_mask
    dHout = np.zeros_like(Hout)
    dHout[1:] = dHdec
    dIFOG = np.zeros_like(IFOGf)
    dC = np.zeros((B, H), dtype=X.dtype)
    Wh_T = WLSTM[1 + E:].T
    for t in reversed(range(S)):
        k = active[t]
        i = IFOGf[t, :k, :H]
        f = IFOGf[t, :k, H:2 * H]
        o = IFOGf[t, :k, 2 * H:3 * H]
        g = IFOGf[t, :k, 3 * H:]
        dh = dHout[t, :k]
        dc = dC[:k]
        if tanhC:
            tc = np.tanh(C[t, :k])
            d_o = tc * dh
            dc += (1 - tc * tc) * (o * dh)
        else:
            d_o = C[t, :k] * dh
            dc += o * dh
        # through the gate nonlinearities: sigmoid' = y(1-y), tanh' = 1-y^2
        if t > 0:
            dIFOG[t, :k, H:2 * H] = C[t - 1, :k] * dc * f * (1 - f)
        dIFOG[t, :k, :H] = g * dc * i * (1 - i)
        dIFOG[t, :k, 2 * H:3 * H] = d_o * o * (1 - o)
        dIFOG[t, :k, 3 * H:] = i * dc * (1 - g * g)
        if t > 0:
            dHout[t - 1, :k] += dIFOG[t, :k] @ Wh_T
            dc *= f
    # parameter gradients from whole-sequence products
    dIFOG2 = dIFOG.reshape(S * B, 4 * H)
    dWLSTM = np.empty_like(WLSTM)
    dWLSTM[0] = dIFOG2.sum(0)
    dWLSTM[1:1 + E] = X.reshape(S * B, E).T @ dIFOG2
    dWLSTM[1 + E:] = Hout[:-1].reshape((S - 1) * B, H).T @ dIFOG[1:].reshape(-1, 4 * H)
    dX = (dIFOG2 @ WLSTM[1:1 + E].T).reshape(S, B, E)
    if enc_mask is not None:
        dX *= enc_mask
    dXi = dX[0]
    grads = {"WLSTM": dWLSTM, "We": feats.T @ dXi, "be": dXi.sum(0, keepdims=True),
             "Ws": scatter_rows(model["Ws"].shape, words, dX[1:])}
    return grads, dXi


def scatter_rows(shape, words, dXw):
    """Gradient of Ws from the gradients dXw (T+1, B, E) of its rows [START, w_1, ...]."""
    index = np.concatenate([np.zeros((1, len(words)), np.int64), words.T]).ravel()
    dWs = np.zeros(shape, dtype=dXw.dtype)
    np.add.at(dWs, index, dXw.reshape(len(index), -1))
    return dWs


def start(model, feats, params):
    """The image step of prediction: state after feeding x_img with h = c = 0."""
    Xi = feats @ model["We"] + model["be"]
    H = model["Wd"].shape[0]
    zeros = np.zeros((len(feats), H), dtype=Xi.dtype)
    h, c = tick(model, Xi, zeros, zeros, params)
    return {"h": h, "c": c}


def step(model, state, prev_words, params):
    """Feed Ws[prev_words]; returns the logits (B, V) of the next word and the new state."""
    h, c = tick(model, model["Ws"][prev_words], state["h"], state["c"], params)
    return h @ model["Wd"] + model["bd"], {"h": h, "c": c}


def tick(model, x, h_prev, c_prev, params):
    WLSTM = model["WLSTM"]
    E = x.shape[1]
    H = h_prev.shape[1]
    IFOG = WLSTM[0] + x @ WLSTM[1:1 + E] + h_prev @ WLSTM[1 + E:]
    ifo = sigmoid(IFOG[:, :3 * H])
    g = np.tanh(IFOG[:, 3 * H:])
    c = ifo[:, :H] * g + ifo[:, H:2 * H] * c_prev
    h = ifo[:, 2 * H:] * (np.tanh(c) if params.get("tanhC_version", 0) else c)
    return h, c
