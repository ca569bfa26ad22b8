"""The LSTM generator of Show and Tell (Vinyals et al., NIC), exactly as NeuralTalk computes it.

Inputs per sentence: [x_img, Ws[START], Ws[w_1], ..., Ws[w_n]] with x_img = f We + be.
Gate pre-activations [1, x_t, h_{t-1}] @ WLSTM, columns ordered i, f, o, g;
c_t = i*g + f*c_{t-1} with c_{-1} = 0, h_t = o*c_t (o*tanh(c_t) with tanhC_version).
The output at the image step is not scored: the states decoded are those of the word
steps (START, w_1, ..., w_n), scored against w_1, ..., w_n, END. Encoder dropout on the
whole input sequence (image row included), decoder dropout on the scored states.

Packed: the image step runs on all B sentences, then the word steps of the caption
layout, so the recurrence is one packed LSTM over counts [B, counts_0, counts_1, ...].
"""
import numpy as np

from neuraltalk.errors import NeuralTalkError
from neuraltalk.layers.affine import affine_backward, affine_forward
from neuraltalk.layers.dropout import dropout_backward, dropout_forward, dropout_mask
from neuraltalk.layers.embedding import embedding_backward, embedding_forward
from neuraltalk.layers.lstm import lstm_backward, lstm_forward, lstm_step
from neuraltalk.layers.packed import layout
from neuraltalk.models import captioning

NAME = "lstm"
PAPER = "Vinyals et al., Show and Tell (NIC), as NeuralTalk's LSTM generator computes it"
ARCHITECTURE = ("image_encoding_size", "word_encoding_size", "hidden_size", "tanhC_version",
                "word_count_threshold")
DEFAULTS = {"solver": "rmsprop"}
REGULARIZED = ("We", "Ws", "WLSTM", "Wd")
NEEDS_REGIONS = False


def add_arguments(group):
    group.add_argument("--tanhC_version", type=int, default=0, help="LSTM: h = o * tanh(c)")


def check_params(params):
    if params["image_encoding_size"] != params["word_encoding_size"]:
        raise NeuralTalkError(
            "the LSTM feeds the image as its first word: --image_encoding_size (%d) must "
            "equal --word_encoding_size (%d)" % (params["image_encoding_size"],
                                                 params["word_encoding_size"]))


def init(params, D, V, rng, dtype=np.float32):
    E, H = params["word_encoding_size"], params["hidden_size"]
    u = lambda *shape: captioning.uniform(rng, shape, dtype)  # noqa: E731
    return {"We": u(D, E), "be": np.zeros((1, E), dtype), "Ws": u(V, E),
            "WLSTM": u(1 + E + H, 4 * H), "Wd": u(H, V), "bd": np.zeros((1, V), dtype)}


def dropout_masks(params, model, lay, rng):
    """(encoder (B + N, E): the image rows, then the word rows; decoder (N, H)), scaled;
    None where the probability is 0 or rng is None."""
    dtype = model["Wd"].dtype
    B, N = len(lay.order), len(lay.inputs)
    enc = dropout_mask((B + N, model["Ws"].shape[1]), params.get("drop_prob_encoder", 0),
                       rng, dtype)
    dec = dropout_mask((N, model["Wd"].shape[0]), params.get("drop_prob_decoder", 0), rng, dtype)
    return enc, dec


def loss(model, batch, params, rng=None, masks=None, compute_grads=True, return_dfeats=False,
         row_weights=None):
    """NeuralTalk's cost of a batch (feats (B, D), words (B, T), lengths (B,)) and the
    gradient of every parameter (and of the features, (B, D), with return_dfeats)."""
    lay = layout(batch.words, batch.lengths)
    dtype = model["Wd"].dtype
    feats = captioning.sorted_feats(batch, lay.order, dtype)
    enc_mask, dec_mask = masks if masks is not None else dropout_masks(params, model, lay, rng)
    B = len(feats)
    WLSTM = model["WLSTM"]
    E = WLSTM.shape[0] - 1 - WLSTM.shape[1] // 4

    Xi, image_cache = affine_forward(feats, model["We"], model["be"])  # x_img = f We + be
    Xs, word_cache = embedding_forward(model["Ws"], lay.inputs)
    X = dropout_forward(np.concatenate([Xi, Xs]), enc_mask)  # the image step, then the words
    # the [1, x_t] part of [1, x_t, h_{t-1}] @ WLSTM for every row at once
    P, input_cache = affine_forward(X, WLSTM[1:1 + E], WLSTM[:1])
    Hall, lstm_cache = lstm_forward(P, WLSTM[1 + E:], np.concatenate([[B], lay.counts]),
                                    tanhC=params.get("tanhC_version", 0))
    Hdec = dropout_forward(Hall[B:], dec_mask)
    cost, dHdec, grads = captioning.decoder_loss(model, Hdec, lay.targets, B, params,
                                                 REGULARIZED, compute_grads, row_weights)
    if not compute_grads:
        return (cost, None, None) if return_dfeats else (cost, None)

    dHall = np.zeros_like(Hall)
    dHall[B:] = dropout_backward(dHdec, dec_mask)
    dP, dWh, _, _ = lstm_backward(dHall, lstm_cache)
    dX, dWx, db = affine_backward(dP, input_cache)
    grads["WLSTM"] = np.concatenate([db, dWx, dWh])
    dX = dropout_backward(dX, enc_mask)
    dXi, grads["We"], grads["be"] = affine_backward(dX[:B], image_cache, need_dx=return_dfeats)
    grads["Ws"] = embedding_backward(dX[B:], word_cache)
    captioning.add_regularization(model, grads, REGULARIZED, params, B)
    if return_dfeats:  # the gradient of the image features, in the batch's own order
        dfeats = np.empty_like(dXi)
        dfeats[lay.order] = dXi
        return cost, grads, dfeats
    return cost, grads


def start(model, feats, params):
    """The image step of prediction: the state after feeding x_img = f We + be (f: (B, D))
    with h = c = 0."""
    Xi = feats @ model["We"] + model["be"]
    zeros = np.zeros((len(Xi), model["WLSTM"].shape[1] // 4), dtype=Xi.dtype)
    h, c = _tick(model, Xi, zeros, zeros, params)
    return {"h": h, "c": c}


def step(model, state, prev_words, params):
    """Feed Ws[prev_words] (B,); returns the logits (B, V) of the next word and the new state.
    With decoding_model's table the words' input projections are its rows."""
    if "Pw" in model:
        WLSTM = model["WLSTM"]
        h, c = lstm_step(model["Pw"][prev_words], state["h"], state["c"],
                         WLSTM[WLSTM.shape[0] - WLSTM.shape[1] // 4:],
                         params.get("tanhC_version", 0))
    else:
        h, c = _tick(model, model["Ws"][prev_words], state["h"], state["c"], params)
    return captioning.decoder_logits(model, h), {"h": h, "c": c}


def decoding_model(model, params):
    """The model with Pw = Ws WLSTM[1:1+E] + WLSTM[0] (V, 4H), the input projection of
    every word, for decoding many steps: one (V, E) x (E, 4H) product instead of a
    (rows, E) x (E, 4H) product a step (worth it once rows x steps exceeds V)."""
    if "Pw" in model:
        return model
    WLSTM = model["WLSTM"]
    E = model["Ws"].shape[1]
    return dict(model, Pw=model["Ws"] @ WLSTM[1:1 + E] + WLSTM[0])


def _tick(model, x, h_prev, c_prev, params):
    WLSTM = model["WLSTM"]
    E = x.shape[1]
    p = x @ WLSTM[1:1 + E] + WLSTM[0]
    return lstm_step(p, h_prev, c_prev, WLSTM[1 + E:], params.get("tanhC_version", 0))
