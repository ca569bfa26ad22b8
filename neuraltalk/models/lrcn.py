"""LRCN (Donahue et al., "Long-term Recurrent Convolutional Networks"), the captioning
variants of its Figure 4, chosen by --lrcn_variant:

  1u  one LSTM reading [Ws[x_t], x_img] at every step
  2u  two stacked LSTMs, the bottom reading [Ws[x_t], x_img], the top the bottom's h
  2f  factored (the default): the bottom reads Ws[x_t] only (a language model), the top
      reads [the bottom's h, x_img]
with x_img = f We + be and the softmax from the top LSTM: y_t = h_t Wd + bd. Fed START,
w_1, ..., w_n and scored against w_1, ..., w_n, END; no image step (the image is an input
at every step). LRCN's LSTM: h = o * tanh(c). A stacked LSTM is two calls of the layer
library's packed LSTM, the second fed the first's outputs as its input projection.

Layer l's weights WLSTM (bottom) / WLSTM2 (top) stack, as NeuralTalk's WLSTM does, the
bias row, then the rows of each of its inputs in the order above, then the recurrent rows
(H, 4H). The image's share of a projection is computed once per sentence, not per step.
Encoder dropout on the word vectors and on x_img, decoder dropout on the top's h.
"""
import numpy as np

from neuraltalk.errors import NeuralTalkError
from neuraltalk.layers.affine import affine_backward, affine_forward
from neuraltalk.layers.dropout import dropout_backward, dropout_forward
from neuraltalk.layers.embedding import embedding_backward, embedding_forward, scatter_rows
from neuraltalk.layers.lstm import lstm_backward, lstm_forward, lstm_step
from neuraltalk.models import captioning

NAME = "lrcn"
PAPER = ("Donahue et al., LRCN: one LSTM (1u), two stacked (2u) or factored (2f) LSTMs, "
         "the image at every step")
ARCHITECTURE = ("image_encoding_size", "word_encoding_size", "hidden_size", "lrcn_variant",
                "word_count_threshold")
DEFAULTS = {"solver": "rmsprop"}
REGULARIZED = ("We", "Ws", "WLSTM", "WLSTM2", "Wd")
NEEDS_REGIONS = False
VARIANTS = {  # the inputs of each LSTM, bottom first ("below": the LSTM under it)
    "1u": (("word", "image"),),
    "2u": (("word", "image"), ("below",)),
    "2f": (("word",), ("below", "image")),
}
WEIGHTS = ("WLSTM", "WLSTM2")


def add_arguments(group):
    group.add_argument("--lrcn_variant", default="2f", choices=sorted(VARIANTS),
                       help="LRCN: 1u one LSTM, 2u two stacked with the image at the "
                            "bottom, 2f factored with the image at the top (Figure 4)")


def check_params(params):
    if params.get("lrcn_variant", "2f") not in VARIANTS:
        raise NeuralTalkError("unknown --lrcn_variant %r: use one of %s"
                              % (params.get("lrcn_variant"), ", ".join(sorted(VARIANTS))))


def _layers(params):
    return VARIANTS[params.get("lrcn_variant", "2f")]


def _input_widths(params):
    return {"word": params["word_encoding_size"], "image": params["image_encoding_size"],
            "below": params["hidden_size"]}


def init(params, D, V, rng, dtype=np.float32):
    Ei, E, H = params["image_encoding_size"], params["word_encoding_size"], params["hidden_size"]
    u = lambda *shape: captioning.uniform(rng, shape, dtype)  # noqa: E731
    model = {"We": u(D, Ei), "be": np.zeros((1, Ei), dtype), "Ws": u(V, E),
             "Wd": u(H, V), "bd": np.zeros((1, V), dtype)}
    widths = _input_widths(params)
    for name, inputs in zip(WEIGHTS, _layers(params)):
        model[name] = u(1 + sum(widths[k] for k in inputs) + H, 4 * H)
        model[name][0] = 0  # the gate biases start at 0, as every other bias
    return model


def _blocks(model, name, inputs):
    """The row blocks of a layer's weights, as views: {'bias': (1, 4H), each input:
    (its width, 4H), 'rec': (H, 4H)}."""
    W = model[name]
    H = W.shape[1] // 4
    widths = {"word": model["Ws"].shape[1], "image": model["We"].shape[1], "below": H}
    blocks, row = {"bias": W[:1]}, 1
    for k in inputs:
        blocks[k] = W[row:row + widths[k]]
        row += widths[k]
    blocks["rec"] = W[row:]
    return blocks


def dropout_masks(params, model, lay, rng):
    """(encoder: (word vectors (N, E), x_img (B, Ei)) or None; decoder (N, H) or None)."""
    return captioning.word_and_image_dropout_masks(
        params, lay, rng, model["Ws"].shape[1], model["We"].shape[1], model["Wd"].shape[0],
        model["Wd"].dtype)


def loss(model, batch, params, rng=None, masks=None, compute_grads=True, return_dfeats=False,
         row_weights=None):
    """NeuralTalk's cost of a batch and the gradient of every parameter (see lstm.loss)."""
    lay, feats, word_mask, image_mask, dec_mask = captioning.word_and_image_inputs(
        model, batch, params, rng, masks, dropout_masks)
    B = len(feats)

    Xi, image_cache = affine_forward(feats, model["We"], model["be"])  # x_img
    Xi = dropout_forward(Xi, image_mask)
    Xs, word_cache = embedding_forward(model["Ws"], lay.inputs)
    Xs = dropout_forward(Xs, word_mask)
    sources = {"word": Xs, "below": None}
    caches = []
    for name, inputs in zip(WEIGHTS, _layers(params)):
        blocks = _blocks(model, name, inputs)
        P = np.broadcast_to(blocks["bias"], (len(Xs), blocks["bias"].shape[1])).copy()
        for k in inputs:
            if k == "image":  # once per sentence, then to every row of it
                P += (Xi @ blocks["image"])[lay.sentence]
            else:
                P += sources[k] @ blocks[k]
        Hl, lstm_cache = lstm_forward(P, blocks["rec"], lay.counts, tanhC=True)
        caches.append((name, inputs, Xs if "word" in inputs else sources["below"], lstm_cache))
        sources["below"] = Hl
    Hdec = dropout_forward(sources["below"], dec_mask)
    regularized = [k for k in REGULARIZED if k in model]  # 1u has no WLSTM2
    cost, dHdec, grads = captioning.decoder_loss(model, Hdec, lay.targets, B, params,
                                                 regularized, compute_grads, row_weights)
    if not compute_grads:
        return (cost, None, None) if return_dfeats else (cost, None)

    dH = dropout_backward(dHdec, dec_mask)
    dXs = np.zeros_like(Xs)
    dXi = np.zeros_like(Xi)
    for name, inputs, rows_in, lstm_cache in reversed(caches):
        dP, dWh, _, _ = lstm_backward(dH, lstm_cache)
        blocks = _blocks(model, name, inputs)
        g = {"bias": dP.sum(0, keepdims=True), "rec": dWh}
        for k in inputs:
            if k == "image":
                dP_img = scatter_rows(B, lay.sentence, dP)  # summed over each sentence's rows
                g[k] = Xi.T @ dP_img
                dXi += dP_img @ blocks[k].T
            else:
                g[k] = rows_in.T @ dP
                d_in = dP @ blocks[k].T
                if k == "word":
                    dXs += d_in
                else:
                    dH = d_in  # to the LSTM below
        grads[name] = np.concatenate([g["bias"]] + [g[k] for k in inputs] + [g["rec"]])
    grads["Ws"] = embedding_backward(dropout_backward(dXs, word_mask), word_cache)
    dXi = dropout_backward(dXi, image_mask)
    dfeats, grads["We"], grads["be"] = affine_backward(dXi, image_cache, need_dx=return_dfeats)
    captioning.add_regularization(model, grads, regularized, params, B)
    if return_dfeats:
        out = np.empty_like(dfeats)
        out[lay.order] = dfeats
        return cost, grads, out
    return cost, grads


def start(model, feats, params):
    """Prediction state before the first word: h = c = 0 in every LSTM, and each LSTM's
    projection of x_img plus its bias (B, 4H), fixed for the whole sentence."""
    Xi = feats @ model["We"] + model["be"]
    state = {}
    for l, (name, inputs) in enumerate(zip(WEIGHTS, _layers(params))):
        blocks = _blocks(model, name, inputs)
        H = blocks["rec"].shape[0]
        fixed = np.broadcast_to(blocks["bias"], (len(Xi), 4 * H)).copy()
        if "image" in inputs:
            fixed += Xi @ blocks["image"]
        zeros = np.zeros((len(Xi), H), dtype=Xi.dtype)
        state.update({"fixed%d" % l: fixed, "h%d" % l: zeros, "c%d" % l: zeros})
    return state


def step(model, state, prev_words, params):
    """Feed Ws[prev_words] (B,); returns the logits (B, V) of the next word and the new state."""
    new = dict(state)
    below = None
    for l, (name, inputs) in enumerate(zip(WEIGHTS, _layers(params))):
        blocks = _blocks(model, name, inputs)
        p = state["fixed%d" % l].copy()
        if "word" in inputs:
            p += model["Ws"][prev_words] @ blocks["word"]
        if "below" in inputs:
            p += below @ blocks["below"]
        below, new["c%d" % l] = lstm_step(p, state["h%d" % l], state["c%d" % l], blocks["rec"],
                                          tanhC=True)
        new["h%d" % l] = below
    return captioning.decoder_logits(model, below), new
