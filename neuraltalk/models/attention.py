"""Show, Attend and Tell's soft ("deterministic") attention (Xu et al., 2015, Section 4.2).

The generator looks, at every word, at a weighted mix of the image's annotation vectors
a_i (regions (B, R, D): the boxes of regions.h5 or the cells of a CNN grid; rows from
region_counts[b] on are padding and get zero weight):
  h_0 = tanh(abar Winit_h + binit_h), c_0 = tanh(abar Winit_c + binit_c)   abar = mean a_i
  e_ti = watt . tanh(a_i Wa + h_{t-1} Wha + ba)                          (eq. 4)
  alpha_t = softmax_i(e_t) over the image's own regions                  (eq. 5)
  z_t = beta_t sum_i alpha_ti a_i,  beta_t = sigmoid(h_{t-1} Wbeta + bbeta)  (eq. 13;
        beta_t = 1 without --att_gate)
  [1, E y_{t-1}, z_t, h_{t-1}] @ WLSTM -> i, f, o, g; c_t = i*g + f*c_{t-1}; h_t = o*tanh(c_t)
  p(y_t) = softmax((E y_{t-1} + h_t Lh + z_t Lz) Wd + bd)               (eq. 7, Wd = L_o)
  cost = NeuralTalk's cross-entropy + att_lambda * sum_i (1 - sum_t alpha_ti)^2 / B  (eq. 14)
The steps are START, w_1..w_n (scored against w_1..w_n, END), packed as the other
generators (layers/packed.py): all sentences at once, a Python loop only over time, as
z_t needs h_{t-1}. Encoder dropout on the word vectors, decoder dropout on the deep output.
"""
import numpy as np

from neuraltalk.errors import NeuralTalkError
from neuraltalk.layers.dropout import dropout_backward, dropout_forward, dropout_mask
from neuraltalk.layers.embedding import embedding_backward, embedding_forward, scatter_rows
from neuraltalk.layers.lstm import lstm_cell
from neuraltalk.layers.packed import layout, step_offsets
from neuraltalk.models import captioning

NAME = "attention"
PAPER = "Xu et al., Show, Attend and Tell: soft attention over image regions"
ARCHITECTURE = ("word_encoding_size", "hidden_size", "attention_size", "att_gate",
                "word_count_threshold")
DEFAULTS = {"solver": "adam"}
REGULARIZED = ("Ws", "WLSTM", "Wd", "Lh", "Lz", "Wa", "Wha", "Winit_h", "Winit_c")
NEEDS_REGIONS = True
# the README's demo: sizes for `shapes` (a whole image and 1-3 objects, 40 words) that
# train to 95% correct captions in about 4 minutes on 2 cores
PRESETS = {"shapes": {"hidden_size": 128, "word_encoding_size": 128, "attention_size": 64,
                      "max_epochs": 15}}


def add_arguments(group):
    group.add_argument("--attention_size", type=int, default=256,
                       help="attention: size of the hidden layer that scores the regions")
    group.add_argument("--att_gate", type=int, default=0,
                       help="attention: scale the context by beta_t = sigmoid(f(h_{t-1}))")
    # The paper's lambda = 1 is for 196 grid cells, where every sum_t alpha_ti is below 1.
    # Over a few regions (shapes: the whole image and 1-3 objects, ~10 words) the penalty
    # cannot go below (T - R)^2 / R, several times the cross-entropy, and its gradient
    # pulls every step's weights towards the regions looked at least so far: the weights
    # stay spread over two objects and a colour gets bound to the wrong shape. 0.1 keeps
    # the push to visit every object (shapes, 15 epochs: 95% correct captions, 94% of the
    # words attend to their object, against 87% and 92% with 1).
    group.add_argument("--att_lambda", type=float, default=0.1,
                       help="attention: weight of the doubly stochastic penalty "
                            "sum_i (1 - sum_t alpha_ti)^2 (the paper's 1 is for a 14 x 14 "
                            "grid; 0.1 suits a few regions)")


def check_params(params):
    if params.get("attention_size", 1) < 1:
        raise NeuralTalkError("--attention_size must be at least 1")
    if params.get("att_lambda", 0) < 0:
        raise NeuralTalkError("--att_lambda must be >= 0")


def init(params, D, V, rng, dtype=np.float32):
    E, H, A = params["word_encoding_size"], params["hidden_size"], params["attention_size"]
    u = lambda *shape: captioning.uniform(rng, shape, dtype)  # noqa: E731
    z = lambda *shape: np.zeros(shape, dtype)  # noqa: E731
    model = {"Ws": u(V, E), "WLSTM": u(1 + E + D + H, 4 * H),
             "Winit_h": u(D, H), "binit_h": z(1, H), "Winit_c": u(D, H), "binit_c": z(1, H),
             "Wa": u(D, A), "Wha": u(H, A), "ba": z(1, A), "watt": u(A, 1),
             "Lh": u(H, E), "Lz": u(D, E), "Wd": u(E, V), "bd": z(1, V)}
    if params.get("att_gate", 0):
        model.update(Wbeta=u(H, 1), bbeta=z(1, 1))
    return model


def region_mask(counts, R):
    """(B, R) bool: True on the regions an image has."""
    return np.arange(R)[None, :] < np.asarray(counts)[:, None]


def sorted_regions(batch, order, dtype):
    """The batch's regions (B, R, D) in the layout's sentence order, padding set to 0,
    and their mask (B, R)."""
    if batch.regions is None:
        raise NeuralTalkError("the attention generator needs region features: give the "
                              "dataset a regions.h5 (python -m neuraltalk.features DIR --grid, "
                              "or --regions FILE)")
    mask = region_mask(batch.region_counts, np.shape(batch.regions)[1])[order]
    a = np.asarray(batch.regions)[order].astype(dtype) * mask[:, :, None]
    return a, mask


def dropout_masks(params, model, lay, rng):
    """(encoder (N, E) on the word vectors, decoder (N, E) on the deep output), scaled;
    None where the probability is 0 or rng is None."""
    dtype = model["Wd"].dtype
    shape = (len(lay.inputs), model["Ws"].shape[1])
    return (dropout_mask(shape, params.get("drop_prob_encoder", 0), rng, dtype),
            dropout_mask(shape, params.get("drop_prob_decoder", 0), rng, dtype))


def _split_lstm(model, E, D):
    W = model["WLSTM"]
    return W[:1], W[1:1 + E], W[1 + E:1 + E + D], W[1 + E + D:]  # b, Wx, Wz, Wh


def init_state(model, a, mask):
    """h_0, c_0 from the mean annotation; abar (B, D)."""
    abar = a.sum(1) / mask.sum(1, keepdims=True).astype(a.dtype)
    h0 = np.tanh(abar @ model["Winit_h"] + model["binit_h"])
    c0 = np.tanh(abar @ model["Winit_c"] + model["binit_c"])
    return abar, h0, c0


def attend(model, Ua, a, mask, h_prev, gate):
    """Eqs. 4, 5, 13 for k images: Ua (k, R, A) = a Wa + ba, a (k, R, D), mask (k, R),
    h_prev (k, H) -> (z (k, D), zc = sum alpha a, alpha (k, R), S = tanh(...) (k, R, A),
    beta (k, 1) or None)."""
    S = np.tanh(Ua + (h_prev @ model["Wha"])[:, None, :])
    e = (S @ model["watt"])[:, :, 0]
    e = np.where(mask, e, -np.inf)  # padding gets exp(-inf) = 0; region 0 always exists
    e -= e.max(1, keepdims=True)
    alpha = np.exp(e)
    alpha /= alpha.sum(1, keepdims=True)
    zc = (alpha[:, None, :] @ a)[:, 0]
    if not gate:
        return zc, zc, alpha, S, None
    beta = 0.5 * (1 + np.tanh(0.5 * (h_prev @ model["Wbeta"] + model["bbeta"])))
    return beta * zc, zc, alpha, S, beta


def loss(model, batch, params, rng=None, masks=None, compute_grads=True, return_dregions=False):
    """The cost of a batch (regions (B, R, D), region_counts (B,), words, lengths) and the
    gradient of every parameter (and of the regions, (B, R, D), with return_dregions)."""
    lay = layout(batch.words, batch.lengths)
    dtype = model["Wd"].dtype
    a, mask = sorted_regions(batch, lay.order, dtype)
    enc_mask, dec_mask = masks if masks is not None else dropout_masks(params, model, lay, rng)
    B, R, D = a.shape
    E = model["Ws"].shape[1]
    H = model["WLSTM"].shape[1] // 4
    A = model["Wa"].shape[1]
    gate = bool(params.get("att_gate", 0))
    lam = float(params.get("att_lambda", 0))
    b, Wx, Wz, Wh = _split_lstm(model, E, D)
    counts = lay.counts
    offsets = step_offsets(counts)
    N = int(offsets[-1])

    abar, h0, c0 = init_state(model, a, mask)
    Ua = (a.reshape(B * R, D) @ model["Wa"] + model["ba"]).reshape(B, R, A)
    Xs, word_cache = embedding_forward(model["Ws"], lay.inputs)
    X = dropout_forward(Xs, enc_mask)
    gates = X @ Wx + b  # the word part of every step's pre-activations at once
    Hall, C = np.empty((N, H), dtype), np.empty((N, H), dtype)
    Hprev, Z, Zc = np.empty((N, H), dtype), np.empty((N, D), dtype), np.empty((N, D), dtype)
    alpha, S = np.empty((N, R), dtype), np.empty((N, R, A), dtype)
    beta = np.empty((N, 1), dtype) if gate else None
    buf = np.empty((B, 4 * H), dtype)
    for t, k in enumerate(counts):  # z_t needs h_{t-1}: the only loop, over time
        k = int(k)
        cur = slice(offsets[t], offsets[t] + k)
        if t == 0:
            h_prev, c_prev = h0, c0
        else:
            prev = slice(offsets[t - 1], offsets[t - 1] + k)
            h_prev, c_prev = Hall[prev], C[prev]
        Hprev[cur] = h_prev
        Z[cur], Zc[cur], alpha[cur], S[cur], bt = attend(model, Ua[:k], a[:k], mask[:k],
                                                         h_prev, gate)
        if gate:
            beta[cur] = bt
        g = gates[cur]
        g += Z[cur] @ Wz
        g += h_prev @ Wh
        g[:, :3 * H] *= 0.5  # lstm_cell takes the i, f, o pre-activations halved
        lstm_cell(g, c_prev, C[cur], Hall[cur], True, buf)
    O = X + Hall @ model["Lh"] + Z @ model["Lz"]  # eq. 7's deep output, before L_o
    cost, dO, grads = captioning.decoder_loss(model, dropout_forward(O, dec_mask), lay.targets,
                                              B, params, REGULARIZED, compute_grads)
    # eq. 14: each region's attention summed over its sentence's steps
    alpha_sum = scatter_rows(B, lay.sentence, alpha)
    slack = (1 - alpha_sum) * mask
    att_cost = lam * float(np.sum(slack.astype(np.float64) ** 2)) / B
    cost["att_cost"] = att_cost
    cost["total_cost"] += att_cost
    if not compute_grads:
        return (cost, None, None) if return_dregions else (cost, None)

    dO = dropout_backward(dO, dec_mask)
    dX = dO.copy()
    grads["Lh"] = Hall.T @ dO
    grads["Lz"] = Z.T @ dO
    dHout = dO @ model["Lh"].T
    dZ = dO @ model["Lz"].T
    dalpha_pen = ((-2 * lam / B) * slack)[lay.sentence].astype(dtype)
    dP = np.empty_like(gates)
    dE = np.empty((N, R), dtype)
    dHa = np.empty((N, A), dtype)
    dBeta = np.empty((N, 1), dtype) if gate else None
    dUa = np.zeros((B, R, A), dtype)
    da = np.zeros((B, R, D), dtype)
    dh_next = np.zeros((B, H), dtype)  # on h_{t-1} from step t, per row of the step before
    dc_next = np.zeros((B, H), dtype)
    WzT, WhT, WhaT, wvec = Wz.T, Wh.T, model["Wha"].T, model["watt"][:, 0]
    for t in reversed(range(len(counts))):  # backward through time: the only loop
        k = int(counts[t])
        cur = slice(offsets[t], offsets[t] + k)
        c_prev = c0 if t == 0 else C[offsets[t - 1]:offsets[t - 1] + k]
        gt = gates[cur]
        i, f, o, g = gt[:, :H], gt[:, H:2 * H], gt[:, 2 * H:3 * H], gt[:, 3 * H:]
        dh = dHout[cur] + dh_next[:k]
        tc = np.tanh(C[cur])
        dc = dc_next[:k] + o * dh * (1 - tc * tc)
        d = dP[cur]
        d[:, :H] = g * dc * i * (1 - i)
        d[:, H:2 * H] = c_prev * dc * f * (1 - f)
        d[:, 2 * H:3 * H] = tc * dh * o * (1 - o)
        d[:, 3 * H:] = i * dc * (1 - g * g)
        dh_prev = d @ WhT
        dz = d @ WzT + dZ[cur]
        if gate:
            bt = beta[cur]
            dgate = np.sum(dz * Zc[cur], 1, keepdims=True) * bt * (1 - bt)
            dBeta[cur] = dgate
            dh_prev += dgate @ model["Wbeta"].T
            dz = dz * bt
        al = alpha[cur]
        dal = (a[:k] @ dz[:, :, None])[:, :, 0] + dalpha_pen[cur]
        da[:k] += al[:, :, None] * dz[:, None, :]
        de = al * (dal - np.sum(al * dal, 1, keepdims=True))
        dE[cur] = de
        dpre = (de[:, :, None] * wvec) * (1 - S[cur] ** 2)
        dUa[:k] += dpre
        dHa[cur] = dpre.sum(1)
        dh_prev += dHa[cur] @ WhaT
        dh_next[:k] = dh_prev
        dc_next[:k] = dc * f
    # the parameters, one packed product each
    grads["WLSTM"] = np.concatenate([dP.sum(0, keepdims=True), X.T @ dP, Z.T @ dP,
                                     Hprev.T @ dP])
    grads["Wha"] = Hprev.T @ dHa
    grads["watt"] = (S.reshape(N * R, A).T @ dE.reshape(N * R))[:, None]
    if gate:
        grads["Wbeta"] = Hprev.T @ dBeta
        grads["bbeta"] = dBeta.sum(0, keepdims=True)
    dUa2 = dUa.reshape(B * R, A)
    grads["Wa"] = a.reshape(B * R, D).T @ dUa2
    grads["ba"] = dUa2.sum(0, keepdims=True)
    da += (dUa2 @ model["Wa"].T).reshape(B, R, D)
    dpre_h = dh_next * (1 - h0 * h0)
    dpre_c = dc_next * (1 - c0 * c0)
    grads["Winit_h"], grads["binit_h"] = abar.T @ dpre_h, dpre_h.sum(0, keepdims=True)
    grads["Winit_c"], grads["binit_c"] = abar.T @ dpre_c, dpre_c.sum(0, keepdims=True)
    dabar = dpre_h @ model["Winit_h"].T + dpre_c @ model["Winit_c"].T
    da += dabar[:, None, :] / mask.sum(1).astype(dtype)[:, None, None]
    da *= mask[:, :, None]  # padding is zeroed before use: it has no gradient
    dX += dP @ Wx.T
    grads["Ws"] = embedding_backward(dropout_backward(dX, enc_mask), word_cache)
    captioning.add_regularization(model, grads, REGULARIZED, params, B)
    if return_dregions:  # in the batch's own order
        dregions = np.empty_like(da)
        dregions[lay.order] = da
        return cost, grads, dregions
    return cost, grads


def start(model, feats, params, regions=None, region_counts=None):
    """The state before the first word: h_0, c_0 from the mean region, and the regions
    themselves (a, a Wa + ba, mask) so that beam search carries them with each beam."""
    if regions is None:
        raise NeuralTalkError("the attention generator decodes from region features "
                              "(regions.h5), not only whole-image features")
    dtype = model["Wd"].dtype
    R = np.shape(regions)[1]
    counts = np.full(len(regions), R) if region_counts is None else region_counts
    mask = region_mask(counts, R)
    a = np.asarray(regions, dtype) * mask[:, :, None]
    B, _, D = a.shape
    _, h0, c0 = init_state(model, a, mask)
    Ua = (a.reshape(B * R, D) @ model["Wa"] + model["ba"]).reshape(B, R, -1)
    return {"h": h0, "c": c0, "a": a, "Ua": Ua, "mask": mask,
            "alpha": np.zeros((B, R), dtype)}


def step(model, state, prev_words, params):
    """Feed y_{t-1} = prev_words (B,): the logits (B, V) of the next word and the new state,
    whose 'alpha' (B, R) holds the attention weights this word was chosen with."""
    a, Ua, mask, h_prev = state["a"], state["Ua"], state["mask"], state["h"]
    E = model["Ws"].shape[1]
    H = h_prev.shape[1]
    b, Wx, Wz, Wh = _split_lstm(model, E, a.shape[2])
    x = model["Ws"][prev_words]
    z, _, alpha, _, _ = attend(model, Ua, a, mask, h_prev, bool(params.get("att_gate", 0)))
    g = x @ Wx + b + z @ Wz + h_prev @ Wh
    g[:, :3 * H] *= 0.5
    h, c = np.empty_like(h_prev), np.empty_like(h_prev)
    lstm_cell(g, state["c"], c, h, True, np.empty((len(g), H), g.dtype))
    logits = (x + h @ model["Lh"] + z @ model["Lz"]) @ model["Wd"] + model["bd"]
    return logits, {"h": h, "c": c, "a": a, "Ua": Ua, "mask": mask, "alpha": alpha}
