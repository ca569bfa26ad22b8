"""The m-RNN of Mao et al. ("Explain Images with Multimodal Recurrent Neural Networks").

Per word step, fed START, w_1, ..., w_n and scored against w_1, ..., w_n, END:
  e(t) = Ws[x_t]                                    word embedding I   (mrnn_embedding_size)
  w(t) = ReLU(e(t) W2 + b2)                         word embedding II  (word_encoding_size)
  r(t) = ReLU(r(t-1) Ur + w(t)),  r(-1) = 0         the recurrent layer (hidden_size)
  m(t) = g2(w(t) Vw + r(t) Vr + I We + bm)          the multimodal layer (mrnn_multimodal_size)
  y(t) = m(t) Wd + bd,  g2(x) = 1.7159 tanh(2x/3)
The image I (the CNN features) enters only the multimodal layer, at every step, so the
recurrent part does not depend on it: `likelihood_matrix` computes it once per sentence.
The seed gives no activation for the embeddings; ReLU on the second is our choice (a
linear one would only factor Ws). Encoder dropout on w(t) and on I We, decoder dropout on
m(t); the cost is NeuralTalk's (the seed's log-likelihood with L2).
"""
import numpy as np

from neuraltalk.errors import NeuralTalkError
from neuraltalk.layers.affine import affine_backward, affine_forward
from neuraltalk.layers.dropout import dropout_backward, dropout_forward
from neuraltalk.layers.embedding import embedding_backward, embedding_forward, scatter_rows
from neuraltalk.layers.packed import layout
from neuraltalk.layers.rnn import rnn_backward, rnn_forward, rnn_step
from neuraltalk.layers.softmax import softmax_cross_entropy_forward
from neuraltalk.models import captioning

NAME = "mrnn"
PAPER = "Mao et al., m-RNN: two word embeddings, a ReLU recurrent layer, a multimodal layer"
ARCHITECTURE = ("word_encoding_size", "hidden_size", "mrnn_embedding_size",
                "mrnn_multimodal_size", "word_count_threshold")
DEFAULTS = {"solver": "rmsprop"}
REGULARIZED = ("Ws", "W2", "Ur", "Vw", "Vr", "We", "Wd")
NEEDS_REGIONS = False
G2_SCALE, G2_SLOPE = 1.7159, 2.0 / 3.0  # g2(x) = 1.7159 tanh(2x/3), LeCun's scaled tanh


def add_arguments(group):
    group.add_argument("--mrnn_embedding_size", type=int, default=128,
                       help="m-RNN: the first word embedding (--word_encoding_size is the "
                            "second, --hidden_size the recurrent layer)")
    group.add_argument("--mrnn_multimodal_size", type=int, default=512,
                       help="m-RNN: the multimodal layer")


def check_params(params):
    if params["word_encoding_size"] != params["hidden_size"]:
        raise NeuralTalkError(
            "the m-RNN adds w(t) to the recurrent layer, r(t) = ReLU(U_r r(t-1) + w(t)): "
            "--word_encoding_size (%d) must equal --hidden_size (%d)"
            % (params["word_encoding_size"], params["hidden_size"]))
    for name in ("mrnn_embedding_size", "mrnn_multimodal_size"):
        if params.get(name, 1) <= 0:
            raise NeuralTalkError("--%s must be positive, not %s" % (name, params[name]))


def init(params, D, V, rng, dtype=np.float32):
    E1, E2 = params["mrnn_embedding_size"], params["word_encoding_size"]
    H, M = params["hidden_size"], params["mrnn_multimodal_size"]
    u = lambda *shape: captioning.uniform(rng, shape, dtype)  # noqa: E731
    return {"Ws": u(V, E1), "W2": u(E1, E2), "b2": np.zeros((1, E2), dtype),
            "Ur": u(H, H), "Vw": u(E2, M), "Vr": u(H, M),
            "We": u(D, M), "bm": np.zeros((1, M), dtype),
            "Wd": u(M, V), "bd": np.zeros((1, V), dtype)}


def dropout_masks(params, model, lay, rng):
    """(encoder: (w(t) (N, E2), I We (B, M)) or None; decoder (N, M) or None), scaled."""
    return captioning.word_and_image_dropout_masks(
        params, lay, rng, model["W2"].shape[1], model["We"].shape[1], model["Wd"].shape[0],
        model["Wd"].dtype)


def _g2(x):
    return G2_SCALE * np.tanh(G2_SLOPE * x)


def language_part(model, inputs, counts, word_mask=None):
    """The image-free part of the multimodal pre-activation for packed rows of word
    inputs (N,) with `counts` rows per step: w(t) Vw + r(t) Vr + bm (N, M), and the
    caches of its backward pass."""
    E, embed_cache = embedding_forward(model["Ws"], inputs)
    Z, w2_cache = affine_forward(E, model["W2"], model["b2"])
    W = dropout_forward(np.maximum(Z, 0), word_mask)  # w(t)
    R, rnn_cache = rnn_forward(W.copy(), model["Ur"], counts)  # r(t) = ReLU(r(t-1) Ur + w(t))
    A = W @ model["Vw"] + R @ model["Vr"] + model["bm"]
    return A, (embed_cache, w2_cache, Z, W, R, rnn_cache)


def loss(model, batch, params, rng=None, masks=None, compute_grads=True, return_dfeats=False,
         row_weights=None):
    """NeuralTalk's cost of a batch and the gradient of every parameter (see lstm.loss)."""
    lay, feats, word_mask, image_mask, dec_mask = captioning.word_and_image_inputs(
        model, batch, params, rng, masks, dropout_masks)
    B = len(feats)

    A, caches = language_part(model, lay.inputs, lay.counts, word_mask)
    embed_cache, w2_cache, Z, W, R, rnn_cache = caches
    Xi = dropout_forward(feats @ model["We"], image_mask)  # V_I I, once per sentence
    A += Xi[lay.sentence]
    Mt = _g2(A)  # m(t)
    Mdec = dropout_forward(Mt, dec_mask)
    cost, dMdec, grads = captioning.decoder_loss(model, Mdec, lay.targets, B, params,
                                                 REGULARIZED, compute_grads, row_weights)
    if not compute_grads:
        return (cost, None, None) if return_dfeats else (cost, None)

    # g2'(x) = slope * (scale - g2(x)^2 / scale)
    dA = dropout_backward(dMdec, dec_mask) * (G2_SLOPE * (G2_SCALE - Mt * Mt / G2_SCALE))
    grads["bm"] = dA.sum(0, keepdims=True)
    dXi = dropout_backward(scatter_rows(B, lay.sentence, dA), image_mask)
    grads["We"] = feats.T @ dXi
    grads["Vw"] = W.T @ dA
    grads["Vr"] = R.T @ dA
    dW = dA @ model["Vw"].T
    dR = dA @ model["Vr"].T
    dWin, grads["Ur"], _ = rnn_backward(dR, rnn_cache)
    dW += dWin
    dZ = dropout_backward(dW, word_mask) * (Z > 0)
    dE, grads["W2"], grads["b2"] = affine_backward(dZ, w2_cache)
    grads["Ws"] = embedding_backward(dE, embed_cache)
    captioning.add_regularization(model, grads, REGULARIZED, params, B)
    if return_dfeats:
        dfeats = np.empty_like(feats)
        dfeats[lay.order] = dXi @ model["We"].T
        return cost, grads, dfeats
    return cost, grads


def start(model, feats, params):
    """Prediction state before the first word: r = 0 and the image term I We (B, M)."""
    image = feats @ model["We"]
    return {"r": np.zeros((len(image), model["Ur"].shape[0]), dtype=image.dtype), "image": image}


def step(model, state, prev_words, params):
    """Feed prev_words (B,); returns the logits (B, V) of the next word and the new state."""
    w = np.maximum(model["Ws"][prev_words] @ model["W2"] + model["b2"], 0)
    r = rnn_step(w, state["r"], model["Ur"])
    m = _g2(w @ model["Vw"] + r @ model["Vr"] + model["bm"] + state["image"])
    return captioning.decoder_logits(model, m), {"r": r, "image": state["image"]}


def likelihood_matrix(model, params, feats, words, lengths, image_chunk=16):
    """S (I, S): the log-probability of each sentence (words (S, T), lengths (S,)) given
    each image (feats (I, D)), END included, divided by its n + 1 predicted words. The
    language part runs once per sentence; per (image, sentence) pair only the multimodal
    layer and the softmax, for `image_chunk` images at a time."""
    dtype = model["Wd"].dtype
    lay = layout(np.asarray(words), lengths)
    A, _ = language_part(model, lay.inputs, lay.counts)
    image = np.asarray(feats, dtype) @ model["We"]
    n_sent, N = len(lay.order), len(lay.targets)
    S = np.empty((len(image), n_sent))
    for lo in range(0, len(image), image_chunk):  # bounded memory: (chunk * N, V) logits
        chunk = image[lo:lo + image_chunk]
        Y = _g2(A[None] + chunk[:, None]).reshape(-1, A.shape[1]) @ model["Wd"] + model["bd"]
        losses, _ = softmax_cross_entropy_forward(Y, np.tile(lay.targets, len(chunk)))
        logp = -losses.reshape(len(chunk), N)
        S[lo:lo + len(chunk), lay.order] = scatter_rows(n_sent, lay.sentence, logp.T).T
    return S / (np.asarray(lengths) + 1)[None, :]
