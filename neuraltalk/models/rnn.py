"""The multimodal RNN of Karpathy & Fei-Fei, exactly as NeuralTalk computes it.

b_v = x_img = f We + be; inputs [Ws[START], Ws[w_1], ..., Ws[w_n]];
xs_t = x_t Wxh + bxh; h_t = ReLU(x_img + xs_t + h_{t-1} Whh + bhh), the image at every
step, or at the first only (rnn_feed_once); rnn_relu_encoders applies ReLU to xs_t and
x_img first. Encoder dropout on the word vectors and on x_img, separately. Outputs
h_t Wd + bd at all n+1 steps, scored against w_1, ..., w_n, END.
"""
import numpy as np

from neuraltalk.errors import NeuralTalkError
from neuraltalk.layers.affine import affine_backward, affine_forward
from neuraltalk.layers.dropout import dropout_backward, dropout_forward
from neuraltalk.layers.embedding import embedding_backward, embedding_forward, scatter_rows
from neuraltalk.layers.rnn import rnn_backward, rnn_forward, rnn_step
from neuraltalk.models import captioning

NAME = "rnn"
PAPER = "Karpathy & Fei-Fei's multimodal RNN, as NeuralTalk's RNN generator computes it"
ARCHITECTURE = ("image_encoding_size", "word_encoding_size", "hidden_size",
                "rnn_relu_encoders", "rnn_feed_once", "word_count_threshold")
DEFAULTS = {"solver": "rmsprop"}
REGULARIZED = ("We", "Ws", "Wxh", "Whh", "Wd")
NEEDS_REGIONS = False


def add_arguments(group):
    group.add_argument("--rnn_relu_encoders", type=int, default=0,
                       help="RNN: ReLU on the word and image encodings")
    group.add_argument("--rnn_feed_once", type=int, default=0,
                       help="RNN: feed the image at the first step only")


def check_params(params):
    if params["image_encoding_size"] != params["hidden_size"]:
        raise NeuralTalkError(
            "the RNN adds the image encoding to its hidden state: --image_encoding_size (%d) "
            "must equal --hidden_size (%d)" % (params["image_encoding_size"], params["hidden_size"]))


def init(params, D, V, rng, dtype=np.float32):
    E, H = params["word_encoding_size"], params["hidden_size"]
    u = lambda *shape: captioning.uniform(rng, shape, dtype)  # noqa: E731
    return {"We": u(D, H), "be": np.zeros((1, H), dtype), "Ws": u(V, E),
            "Wxh": u(E, H), "bxh": np.zeros((1, H), dtype),
            "Whh": u(H, H), "bhh": np.zeros((1, H), dtype),
            "Wd": u(H, V) * dtype(0.1), "bd": np.zeros((1, V), dtype)}


def dropout_masks(params, model, lay, rng):
    """(encoder: (word vectors (N, E), image encodings (B, H)) or None; decoder (N, H))."""
    return captioning.word_and_image_dropout_masks(
        params, lay, rng, model["Ws"].shape[1], model["We"].shape[1], model["Wd"].shape[0],
        model["Wd"].dtype)


def loss(model, batch, params, rng=None, masks=None, compute_grads=True, return_dfeats=False,
         row_weights=None):
    """NeuralTalk's cost of a batch and the gradient of every parameter (see lstm.loss)."""
    lay, feats, word_mask, image_mask, dec_mask = captioning.word_and_image_inputs(
        model, batch, params, rng, masks, dropout_masks)
    relu_enc = params.get("rnn_relu_encoders", 0)
    feed_once = params.get("rnn_feed_once", 0)
    B = len(feats)

    Xi, image_cache = affine_forward(feats, model["We"], model["be"])  # b_v = x_img
    Xi = dropout_forward(Xi, image_mask)
    Xs, word_cache = embedding_forward(model["Ws"], lay.inputs)
    Xs = dropout_forward(Xs, word_mask)
    Xsh, input_cache = affine_forward(Xs, model["Wxh"], model["bxh"])
    A = np.maximum(Xsh, 0) if relu_enc else Xsh
    Xi_in = np.maximum(Xi, 0) if relu_enc else Xi
    A += model["bhh"]
    if feed_once:
        A[:B] += Xi_in
    else:
        A += Xi_in[lay.sentence]
    Hh, rnn_cache = rnn_forward(A, model["Whh"], lay.counts)
    Hdec = dropout_forward(Hh, dec_mask)
    cost, dHdec, grads = captioning.decoder_loss(model, Hdec, lay.targets, B, params,
                                                 REGULARIZED, compute_grads, row_weights)
    if not compute_grads:
        return (cost, None, None) if return_dfeats else (cost, None)

    dA, grads["Whh"], _ = rnn_backward(dropout_backward(dHdec, dec_mask), rnn_cache)
    grads["bhh"] = dA.sum(0, keepdims=True)
    dXi = dA[:B].copy() if feed_once else scatter_rows(B, lay.sentence, dA)
    if relu_enc:
        dA *= Xsh > 0
        dXi *= Xi > 0
    dXs, grads["Wxh"], grads["bxh"] = affine_backward(dA, input_cache)
    grads["Ws"] = embedding_backward(dropout_backward(dXs, word_mask), word_cache)
    dXi = dropout_backward(dXi, image_mask)
    dfeats, grads["We"], grads["be"] = affine_backward(dXi, image_cache, need_dx=return_dfeats)
    captioning.add_regularization(model, grads, REGULARIZED, params, B)
    if return_dfeats:
        out = np.empty_like(dfeats)
        out[lay.order] = dfeats
        return cost, grads, out
    return cost, grads


def start(model, feats, params):
    """Prediction state before the first word: h = 0 and the image encoding to add."""
    Xi = feats @ model["We"] + model["be"]
    if params.get("rnn_relu_encoders", 0):
        Xi = np.maximum(Xi, 0)
    return {"h": np.zeros((len(Xi), model["Whh"].shape[0]), dtype=Xi.dtype), "image": Xi}


def step(model, state, prev_words, params):
    """Feed Ws[prev_words] (B,); returns the logits (B, V) of the next word and the new state.
    With decoding_model's table the words' input parts are its rows."""
    if "Pw" in model:
        xsh = model["Pw"][prev_words]
    else:
        xsh = model["Ws"][prev_words] @ model["Wxh"] + model["bxh"]
    if params.get("rnn_relu_encoders", 0):
        xsh = np.maximum(xsh, 0)
    # summed in the training forward's order: xs_t + bhh + x_img, then h_{t-1} Whh
    h = rnn_step(xsh + model["bhh"] + state["image"], state["h"], model["Whh"])
    image = np.zeros_like(state["image"]) if params.get("rnn_feed_once", 0) else state["image"]
    return captioning.decoder_logits(model, h), {"h": h, "image": image}


def decoding_model(model, params):
    """The model with Pw = Ws Wxh + bxh (V, H), the input part of every word, for decoding
    many steps (see lstm.decoding_model)."""
    if "Pw" in model:
        return model
    return dict(model, Pw=model["Ws"] @ model["Wxh"] + model["bxh"])
