"""The LSTM generator of Show and Tell, exactly as NeuralTalk computes it.

Inputs per sentence: [x_img, Ws[START], Ws[w_1], ..., Ws[w_n]], with x_img = f We + be.
Gate pre-activations [1, x_t, h_{t-1}] @ WLSTM, columns ordered i, f, o, g;
c_t = i*g + f*c_{t-1} (c_{-1} = 0), h_t = o*c_t (o*tanh(c_t) with tanhC_version).
Outputs h_t Wd + bd for steps 1..n+1, scored against w_1..w_n, END.

Shapes: feats (B, D); words (B, T) padded; lengths (B,); inputs X (B, S, E) with
S = T + 2 steps. Sentences shorter than T run on over padding: the recurrence is
causal, so those steps change nothing that is scored, and their gradients are zero.
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
    """X (B, T+2, E): the image encoding, then START, then the words."""
    Xi = feats @ model["We"] + model["be"]
    Xw = model["Ws"][np.concatenate([np.zeros((len(words), 1), words.dtype), words], axis=1)]
    return np.concatenate([Xi[:, None, :], Xw], axis=1)


def encoder_mask_shape(feats, words, model):
    return (len(words), words.shape[1] + 2, model["Ws"].shape[1])


def forward(model, feats, words, params, enc_mask=None, dec_mask=None):
    """Returns the hidden states to decode, Hdec (B, T+1, H), and the cache for backward.

    enc_mask (B, T+2, E), dec_mask (B, T+1, H): inverted-dropout masks (already scaled),
    or None for no dropout.
    """
    tanhC = params.get("tanhC_version", 0)
    WLSTM = model["WLSTM"]
    E = model["Ws"].shape[1]
    H = model["Wd"].shape[0]
    X = encoder_inputs(model, feats, words)
    if enc_mask is not None:
        X = X * enc_mask
    B, S, _ = X.shape
    # the input part of every gate pre-activation at once: one big product
    IFOG = X @ WLSTM[1:1 + E] + WLSTM[0]
    Wh = WLSTM[1 + E:]
    IFOGf = np.empty_like(IFOG)
    C = np.empty((B, S, H), dtype=X.dtype)
    Hout = np.empty((B, S, H), dtype=X.dtype)
    tanhCs = np.empty((B, S, H), dtype=X.dtype) if tanhC else None
    for t in range(S):  # the recurrence: the only loop, over time
        if t > 0:
            IFOG[:, t] += Hout[:, t - 1] @ Wh
        IFOGf[:, t, :3 * H] = sigmoid(IFOG[:, t, :3 * H])
        IFOGf[:, t, 3 * H:] = np.tanh(IFOG[:, t, 3 * H:])
        C[:, t] = IFOGf[:, t, :H] * IFOGf[:, t, 3 * H:]
        if t > 0:
            C[:, t] += IFOGf[:, t, H:2 * H] * C[:, t - 1]
        if tanhC:
            tanhCs[:, t] = np.tanh(C[:, t])
            Hout[:, t] = IFOGf[:, t, 2 * H:3 * H] * tanhCs[:, t]
        else:
            Hout[:, t] = IFOGf[:, t, 2 * H:3 * H] * C[:, t]
    Hdec = Hout[:, 1:]
    if dec_mask is not None:
        Hdec = Hdec * dec_mask
    cache = (model, feats, words, X, IFOGf, C, Hout, tanhCs, enc_mask, dec_mask)
    return Hdec, cache


def backward(dHdec, cache):
    """dHdec (B, T+1, H) -> (grads of every parameter except Wd/bd, dfeats (B, D))."""
    model, feats, words, X, IFOGf, C, Hout, tanhCs, enc_mask, dec_mask = cache
    WLSTM = model["WLSTM"]
    E = model["Ws"].shape[1]
    H = model["Wd"].shape[0]
    B, S, _ = X.shape
    if dec_mask is not None:
        dHdec = dHdec * dec_mask
    dHout = np.zeros_like(Hout)
    dHout[:, 1:] = dHdec
    dIFOGf = np.empty_like(IFOGf)
    dIFOG = np.empty_like(IFOGf)
    dC = np.zeros((B, H), dtype=X.dtype)
    Wh_T = WLSTM[1 + E:].T
    for t in reversed(range(S)):
        i = IFOGf[:, t, :H]
        f = IFOGf[:, t, H:2 * H]
        o = IFOGf[:, t, 2 * H:3 * H]
        g = IFOGf[:, t, 3 * H:]
        if tanhCs is not None:
            dIFOGf[:, t, 2 * H:3 * H] = tanhCs[:, t] * dHout[:, t]
            dC += (1 - tanhCs[:, t] ** 2) * (o * dHout[:, t])
        else:
            dIFOGf[:, t, 2 * H:3 * H] = C[:, t] * dHout[:, t]
            dC += o * dHout[:, t]
        if t > 0:
            dIFOGf[:, t, H:2 * H] = C[:, t - 1] * dC
        else:
            dIFOGf[:, t, H:2 * H] = 0
        dIFOGf[:, t, :H] = g * dC
        dIFOGf[:, t, 3 * H:] = i * dC
        # through the nonlinearities
        dIFOG[:, t, 3 * H:] = (1 - g ** 2) * dIFOGf[:, t, 3 * H:]
        y = IFOGf[:, t, :3 * H]
        dIFOG[:, t, :3 * H] = (y * (1 - y)) * dIFOGf[:, t, :3 * H]
        if t > 0:
            dHout[:, t - 1] += dIFOG[:, t] @ Wh_T
            dC = f * dC
    # parameter gradients from whole-sequence products
    dIFOG2 = dIFOG.reshape(B * S, 4 * H)
    dWLSTM = np.empty_like(WLSTM)
    dWLSTM[0] = dIFOG2.sum(0)
    dWLSTM[1:1 + E] = X.reshape(B * S, E).T @ dIFOG2
    dWLSTM[1 + E:] = Hout[:, :-1].reshape(B * (S - 1), H).T @ dIFOG[:, 1:].reshape(-1, 4 * H)
    dX = dIFOG @ WLSTM[1:1 + E].T
    if enc_mask is not None:
        dX *= enc_mask
    dXi = dX[:, 0]
    grads = {"WLSTM": dWLSTM, "We": feats.T @ dXi, "be": dXi.sum(0, keepdims=True),
             "Ws": scatter_rows(model["Ws"].shape, words, dX[:, 1:])}
    return grads, dXi @ model["We"].T


def scatter_rows(shape, words, dXw):
    """Gradient of Ws from the gradients of its looked-up rows [START, w_1, ...]."""
    B = len(words)
    index = np.concatenate([np.zeros((B, 1), np.int64), words], axis=1).ravel()
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
