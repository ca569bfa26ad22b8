"""Caption generators (`--generator lstm|rnn`): the cost of a batch, and prediction steps.

Both generators produce hidden states for the steps to decode; this module decodes
them (`Y = H Wd + bd`) on the scored steps only, gathered into one (N_tokens, H)
product, and computes NeuralTalk's cost:
loss = sum over sentences of -sum_t log(1e-20 + softmax(Y_t)[target_t]), divided by the
batch size; reg = regc/2 * sum W^2 over the weight matrices, divided by the batch size;
ppl2 = 2^(sum of -log2 p / number of targets).
"""
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


def dropout_masks(params, model, words, rng):
    """Inverted-dropout masks for a batch, time-major like the generators' inputs
    (None where the probability is 0 or rng is None)."""
    if rng is None:
        return None, None
    p_enc, p_dec = params.get("drop_prob_encoder", 0), params.get("drop_prob_decoder", 0)
    dtype = model["Wd"].dtype
    B, T = words.shape
    H = model["Wd"].shape[0]

    def mask(shape, p):
        return ((rng.random(shape, dtype=np.float32) < 1 - p) * (1.0 / (1 - p))).astype(dtype)
    enc = None
    if p_enc > 0:
        if module(params) is lstm:
            enc = mask(lstm.encoder_mask_shape(words, model), p_enc)
        else:
            word_shape, image_shape = rnn.encoder_mask_shapes(words, model)
            enc = (mask(word_shape, p_enc), mask(image_shape, p_enc))
    dec = mask((T + 1, B, H), p_dec) if p_dec > 0 else None
    return enc, dec


def targets_and_mask(words, lengths):
    """Time-major targets (T+1, B): w_1..w_n then END (0); valid (T+1, B): the n+1
    scored steps of each sentence."""
    B, T = words.shape
    targets = np.zeros((T + 1, B), dtype=np.int64)
    targets[:T] = words.T
    valid = np.arange(T + 1)[:, None] <= lengths[None, :]
    targets[lengths, np.arange(B)] = 0
    return targets, valid


def by_length(batch, masks):
    """The batch (and dropout masks) in decreasing order of sentence length, and the order."""
    order = np.argsort(-np.asarray(batch.lengths), kind="stable")
    batch = batch._replace(feats=batch.feats[order], words=batch.words[order],
                           lengths=batch.lengths[order])
    enc, dec = masks
    if isinstance(enc, tuple):
        enc = (enc[0][:, order], enc[1][order])
    elif enc is not None:
        enc = enc[:, order]
    return batch, (enc, dec[:, order] if dec is not None else None), order


def batch_cost(model, batch, params, rng=None, masks=None, return_dfeats=False):
    """NeuralTalk's cost of a batch and the gradient of every parameter.

    rng: dropout randomness (None: no dropout, as in evaluation); masks: explicit
    (encoder, decoder) dropout masks instead (gradient checks fix them this way).
    """
    gen = module(params)
    dtype = model["Wd"].dtype
    batch = batch._replace(feats=np.asarray(batch.feats, dtype=dtype),
                           words=np.asarray(batch.words), lengths=np.asarray(batch.lengths))
    if masks is None:
        masks = dropout_masks(params, model, batch.words, rng)
    batch, (enc_mask, dec_mask), order = by_length(batch, masks)
    feats, words, lengths = batch.feats, batch.words, batch.lengths
    Hdec, cache = gen.forward(model, feats, words, lengths, params, enc_mask, dec_mask)
    targets, valid = targets_and_mask(words, lengths)
    Hs = Hdec[valid]  # (N, H): the scored steps only
    Y = Hs @ model["Wd"] + model["bd"]
    Y -= Y.max(1, keepdims=True)
    P = np.exp(Y)
    P /= P.sum(1, keepdims=True)
    t = targets[valid]
    p_target = P[np.arange(len(t)), t]
    B = len(words)
    loss_cost = -np.sum(np.log(1e-20 + p_target.astype(np.float64))) / B
    logppl = -np.sum(np.log2(1e-20 + p_target.astype(np.float64)))
    dY = P
    dY[np.arange(len(t)), t] -= 1
    dY /= B
    grads = {"Wd": Hs.T @ dY, "bd": dY.sum(0, keepdims=True)}
    dHdec = np.zeros_like(Hdec)
    dHdec[valid] = dY @ model["Wd"].T
    gen_grads, dXi = gen.backward(dHdec, cache)
    grads.update(gen_grads)
    regc = params.get("regc", 0)
    reg_cost = 0.0
    if regc > 0:
        for name in gen.REGULARIZED:
            W = model[name]
            reg_cost += 0.5 * regc * float(np.sum(W.astype(np.float64) ** 2)) / B
            grads[name] += (regc / B) * W
    cost = {"loss_cost": loss_cost, "reg_cost": reg_cost, "total_cost": loss_cost + reg_cost,
            "ppl2": 2.0 ** (logppl / len(t)), "logppl": logppl, "ntokens": len(t)}
    if return_dfeats:  # the gradient of the image features, in the batch's own order
        dfeats = np.empty_like(feats)
        dfeats[order] = dXi @ model["We"].T
        return cost, grads, dfeats
    return cost, grads


def start(model, feats, params):
    """Prediction: the state of a batch of images before the first word (axis 0 = batch)."""
    return module(params).start(model, np.asarray(feats, dtype=model["Wd"].dtype), params)


def step(model, state, prev_words, params):
    """Feed the previous words (B,); returns log(1e-20 + softmax) (B, V) and the new state."""
    Y, state = module(params).step(model, state, np.asarray(prev_words), params)
    Y = Y - Y.max(1, keepdims=True)
    P = np.exp(Y)
    P /= P.sum(1, keepdims=True)
    return np.log(1e-20 + P), state


def perplexity(model, table, params, batch_size=100, max_images=-1):
    """ppl2 over every sentence of the first max_images images of a SentenceTable."""
    logppl = 0.0
    ntokens = 0
    for batch in table.iter_batches(batch_size, max_images):
        cost, _ = batch_cost(model, batch, dict(params, regc=0), rng=None)
        logppl += cost["logppl"]
        ntokens += cost["ntokens"]
    return 2.0 ** (logppl / max(1, ntokens))


def make_task(params, dataset, rng, vocab=None):
    """The training Task of a caption generator on `dataset` (see neuraltalk/tasks.py)."""
    from neuraltalk.batches import SentenceTable
    from neuraltalk.tasks import Task
    from neuraltalk.vocab import build_vocab

    train_images = dataset.split("train")
    if vocab is None:
        token_lists = [s["tokens"] for img in train_images for s in img["sentences"]]
        wordtoix, ixtoword, bias = build_vocab(token_lists, params["word_count_threshold"])
    else:
        wordtoix, ixtoword = vocab
        bias = np.zeros(len(ixtoword))
    model = init_model(params, dataset.feature_width, len(ixtoword), bias, rng)
    train = SentenceTable(dataset, wordtoix, "train")
    val = SentenceTable(dataset, wordtoix, "val")

    def validate(model):
        ppl = perplexity(model, val, params, params["eval_batch_size"], params["eval_max_images"])
        return {"score": ppl, "perplexity": ppl,
                "summary": "validation perplexity = %f" % ppl}

    return Task(model=model, wordtoix=wordtoix, ixtoword=ixtoword,
                sample_batch=train.sample,
                cost=lambda model, batch, rng: batch_cost(model, batch, params, rng),
                validate=validate, update_keys=sorted(model), epoch_size=len(train))
