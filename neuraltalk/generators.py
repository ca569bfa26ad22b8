"""Caption generators (`--generator lstm|rnn`): the cost of a batch, and prediction steps.

Like NeuralTalk's GenericBatchGenerator, this module owns what both generators share: the
image encoder x_img = f We + be, the word vectors Ws[.] (row 0 is START), and the decoder
Y = h Wd + bd with NeuralTalk's cost:
loss = sum over sentences of -sum_t log(1e-20 + softmax(Y_t)[target_t]), divided by the
batch size; reg = regc/2 * sum W^2 over the weight matrices, divided by the batch size;
ppl2 = 2^(sum of -log2 p / number of targets).

A batch is laid out "packed" (see `layout`): sentences sorted by decreasing length, step
by step, without padding, so the decoder runs as one (N_tokens, H) x (H, V) product.
"""
from collections import namedtuple

import numpy as np

from neuraltalk import lstm, rnn
from neuraltalk.errors import NeuralTalkError

GENERATORS = {"lstm": lstm, "rnn": rnn}


def module(params):
    name = params.get("generator", "lstm")
    if name not in GENERATORS:
        raise NeuralTalkError("unknown --generator %r: use lstm or rnn" % name)
    return GENERATORS[name]


def init_model(params, feature_width, vocab_size, bias_init_vector, rng, dtype=np.float32):
    """NeuralTalk's initialisation: weights uniform in [-0.1, 0.1], biases 0, bd = the
    log-frequency vector `bias_init_vector` (V,)."""
    gen = module(params)
    E, H = params["word_encoding_size"], params["hidden_size"]
    if gen is lstm and params["image_encoding_size"] != E:
        raise NeuralTalkError(
            "the LSTM feeds the image as its first word: --image_encoding_size (%d) must "
            "equal --word_encoding_size (%d)" % (params["image_encoding_size"], E))
    if gen is rnn and params["image_encoding_size"] != H:
        raise NeuralTalkError(
            "the RNN adds the image encoding to its hidden state: --image_encoding_size (%d) "
            "must equal --hidden_size (%d)" % (params["image_encoding_size"], H))
    model = gen.init(feature_width, E, H, vocab_size, rng, dtype)
    model["bd"][...] = np.asarray(bias_init_vector, dtype=dtype).reshape(1, -1)
    return model


Layout = namedtuple("Layout", [
    "order",     # (B,) the batch's sentences in decreasing order of length (stable)
    "counts",    # (S,) sentences still running at word step t (t = 0 feeds START): #(n >= t)
    "sentence",  # (N,) the sorted sentence of each packed row
    "step",      # (N,) the word step of each packed row
    "inputs",    # (N,) the word fed at that row: START (0) at step 0, else w_t
    "targets",   # (N,) the word to predict there: w_{t+1}, or END (0) after the last word
])


def layout(words, lengths):
    """The packed layout of a batch: rows grouped by step, then by sorted sentence.

    words (B, T) int, lengths (B,) int. Sentence b has n_b + 1 scored steps; step t's rows
    are the first counts[t] sorted sentences, so each step is a contiguous block.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")
    n = lengths[order]
    B = len(n)
    counts = B - np.concatenate([[0], np.cumsum(np.bincount(n))[:-1]])
    sentence = np.concatenate([np.arange(k) for k in counts])
    step = np.repeat(np.arange(len(counts)), counts)
    W = np.zeros((B, len(counts) + 1), dtype=np.int64)
    W[:, 1:1 + min(words.shape[1], len(counts))] = np.asarray(words)[order, :len(counts)]
    W[np.arange(len(counts) + 1)[None, :] > n[:, None]] = 0  # ignore anything past n_b
    inputs = W[sentence, step]  # W[:, 0] = START
    targets = W[sentence, step + 1]  # 0 = END after the last word
    return Layout(order, counts, sentence, step, inputs, targets)


def dropout_masks(params, model, lay, rng):
    """Inverted-dropout masks (encoder, decoder) in the packed layout `lay`, already
    scaled by 1/(1-p); None where the probability is 0 or rng is None.

    LSTM encoder mask (B + N, E): the image rows then the word rows (NeuralTalk drops
    from the whole input sequence); RNN encoder mask: (word rows (N, E), images (B, H)).
    Decoder mask (N, H): the states before Wd.
    """
    if rng is None:
        return None, None
    p_enc, p_dec = params.get("drop_prob_encoder", 0), params.get("drop_prob_decoder", 0)
    dtype = model["Wd"].dtype
    B, N = len(lay.order), len(lay.inputs)
    E, H = model["Ws"].shape[1], model["Wd"].shape[0]

    def mask(shape, p):
        keep = rng.random(shape, dtype=np.float32) < 1 - p
        return np.multiply(keep, 1.0 / (1 - p), dtype=dtype)
    enc = None
    if p_enc > 0:
        if module(params) is lstm:
            enc = mask((B + N, E), p_enc)
        else:
            enc = (mask((N, E), p_enc), mask((B, model["We"].shape[1]), p_enc))
    dec = mask((N, H), p_dec) if p_dec > 0 else None
    return enc, dec


def scatter_rows(n_rows, index, values):
    """dW (n_rows, E) with dW[i] = sum of values[r] over the rows r where index[r] == i
    (the gradient of a row lookup), by sorting rather than np.add.at."""
    order = np.argsort(index, kind="stable")
    sorted_index = index[order]
    starts = np.flatnonzero(np.concatenate([[True], sorted_index[1:] != sorted_index[:-1]]))
    out = np.zeros((n_rows, values.shape[1]), values.dtype)
    if len(index):
        out[sorted_index[starts]] = np.add.reduceat(values[order], starts, axis=0)
    return out


def batch_cost(model, batch, params, rng=None, masks=None, return_dfeats=False,
               compute_grads=True):
    """NeuralTalk's cost of a batch and the gradient of every parameter.

    batch: feats (B, D), words (B, T), lengths (B,) (see batches.Batch).
    rng: dropout randomness (None: no dropout, as in evaluation); masks: explicit
    (encoder, decoder) dropout masks in the layout of `layout(words, lengths)` instead
    (gradient checks fix them this way). Returns (cost dict, grads dict), plus the
    gradient of the image features (B, D) with return_dfeats; grads None without
    compute_grads.
    """
    gen = module(params)
    dtype = model["Wd"].dtype
    lay = layout(batch.words, batch.lengths)
    feats = np.asarray(batch.feats)
    if np.any(lay.order != np.arange(len(lay.order))):
        feats = feats[lay.order]
    feats = feats.astype(dtype, copy=False)
    if masks is None:
        masks = dropout_masks(params, model, lay, rng)
    B, N = len(feats), len(lay.inputs)
    Wd = model["Wd"]

    Xi = feats @ model["We"]  # x_img = f We + be
    Xi += model["be"]
    Xs = np.take(model["Ws"], lay.inputs, axis=0)
    Hdec, cache = gen.forward(model, Xi, Xs, lay.counts, params, *masks)

    Y = Hdec @ Wd  # the decoder on every scored step at once
    Y += model["bd"]
    Y -= Y.max(1, keepdims=True)
    P = np.exp(Y, out=Y)
    row_sums = P.sum(1)
    rows = np.arange(N)
    p_target = P[rows, lay.targets] / row_sums
    loss_cost = -np.sum(np.log(1e-20 + p_target.astype(np.float64))) / B
    logppl = -np.sum(np.log2(1e-20 + p_target.astype(np.float64)))
    reg_cost = 0.0
    regc = params.get("regc", 0)
    if regc > 0:
        for name in gen.REGULARIZED:
            W = model[name].ravel()
            reg_cost += 0.5 * regc * float(np.dot(W, W)) / B
    cost = {"loss_cost": loss_cost, "reg_cost": reg_cost, "total_cost": loss_cost + reg_cost,
            "ppl2": 2.0 ** (logppl / N), "logppl": logppl, "ntokens": N}
    if not compute_grads:
        return (cost, None, None) if return_dfeats else (cost, None)

    dY = P  # softmax gradient P - onehot(target), and the 1/B of the batch average
    dY *= (1.0 / (B * row_sums)).astype(dtype)[:, None]
    dY[rows, lay.targets] -= 1.0 / B
    grads = {"Wd": Hdec.T @ dY, "bd": dY.sum(0, keepdims=True)}
    gen_grads, dXi, dXs = gen.backward(dY @ Wd.T, cache)
    grads.update(gen_grads)
    grads["We"] = feats.T @ dXi
    grads["be"] = dXi.sum(0, keepdims=True)
    grads["Ws"] = scatter_rows(model["Ws"].shape[0], lay.inputs, dXs)
    if regc > 0:
        for name in gen.REGULARIZED:
            grads[name] += (regc / B) * model[name]
    if return_dfeats:  # the gradient of the image features, in the batch's own order
        dfeats = np.empty_like(feats)
        dfeats[lay.order] = dXi @ model["We"].T
        return cost, grads, dfeats
    return cost, grads


def start(model, feats, params):
    """Prediction: the state of a batch of images (B, D) before the first word; a dict of
    arrays whose axis 0 is the batch."""
    return module(params).start(model, np.asarray(feats, dtype=model["Wd"].dtype), params)


def step(model, state, prev_words, params):
    """Feed the previous words (B,) (START = 0 first); returns log(1e-20 + softmax(y))
    (B, V), as NeuralTalk scores words, and the new state."""
    Y, state = module(params).step(model, state, np.asarray(prev_words), params)
    e = np.exp(Y - Y.max(1, keepdims=True))
    return np.log(1e-20 + e / e.sum(1, keepdims=True)), state


def perplexity(model, table, params, batch_size=100, max_images=-1):
    """ppl2 over every sentence of the first max_images images (-1: all) of a SentenceTable,
    without dropout, as NeuralTalk's eval_split."""
    logppl = 0.0
    ntokens = 0
    for batch in table.iter_batches(batch_size, max_images):
        cost, _ = batch_cost(model, batch, dict(params, regc=0), compute_grads=False)
        logppl += cost["logppl"]
        ntokens += cost["ntokens"]
    return 2.0 ** (logppl / max(1, ntokens))


def make_task(params, dataset, rng, vocab=None):
    """The training Task of a caption generator on `dataset` (see neuraltalk/tasks.py).

    vocab: (wordtoix, ixtoword) of a checkpoint being resumed; None builds it from the
    training sentences with --word_count_threshold."""
    from neuraltalk.batches import SentenceTable
    from neuraltalk.tasks import Task
    from neuraltalk.vocab import build_vocab

    if vocab is None:
        token_lists = [s["tokens"] for img in dataset.split("train") for s in img["sentences"]]
        wordtoix, ixtoword, bias = build_vocab(token_lists, params["word_count_threshold"])
    else:
        wordtoix, ixtoword = vocab
        bias = np.zeros(len(ixtoword))  # the checkpoint's model replaces this one
    model = init_model(params, dataset.feature_width, len(ixtoword), bias, rng)
    train = SentenceTable(dataset, wordtoix, "train")
    val = SentenceTable(dataset, wordtoix, "val")

    def validate(model):
        ppl = perplexity(model, val, params, params.get("eval_batch_size", 100),
                         params.get("eval_max_images", -1))
        return {"score": ppl, "perplexity": ppl, "summary": "validation perplexity = %f" % ppl}

    return Task(model=model, wordtoix=wordtoix, ixtoword=ixtoword,
                sample_batch=train.sample,
                cost=lambda model, batch, rng: batch_cost(model, batch, params, rng),
                validate=validate, update_keys=sorted(model), epoch_size=len(train))
