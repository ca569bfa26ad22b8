"""What every caption generator shares, as NeuralTalk's GenericBatchGenerator does.

The image encoder x_img = f We + be, the word vectors Ws[.] (row 0 is START) and the
decoder Y = h Wd + bd with NeuralTalk's cost:
  loss = sum over sentences of -sum_t log(1e-20 + softmax(Y_t)[target_t]) / batch size
  reg = regc/2 * sum W^2 over the generator's REGULARIZED matrices / batch size
  ppl2 = 2^(sum of -log2 p / number of targets)
A batch is packed (neuraltalk/layers/packed.py `layout`): sentences sorted by decreasing
length, step by step, without padding, so the decoder runs as one (N_tokens, H) x (H, V)
product. Weights start uniform in [-0.1, 0.1], biases at 0, bd at the log-frequency vector.
"""
import numpy as np

from neuraltalk.errors import NeuralTalkError
from neuraltalk.layers.affine import affine_backward, affine_forward
from neuraltalk.layers.blas import in_row_chunks
from neuraltalk.layers.dropout import dropout_mask
from neuraltalk.layers.packed import layout
from neuraltalk.layers.softmax import (log_softmax, softmax_cross_entropy_backward,
                                       softmax_cross_entropy_forward)


def add_arguments(group):
    """The flags every caption generator takes (NeuralTalk's)."""
    group.add_argument("--image_encoding_size", type=int, default=256, help="image encoding size")
    group.add_argument("--word_encoding_size", type=int, default=256, help="word encoding size")
    group.add_argument("--hidden_size", type=int, default=256, help="hidden layer size")
    group.add_argument("--drop_prob_encoder", type=float, default=0.5,
                       help="dropout right after the encoders")
    group.add_argument("--drop_prob_decoder", type=float, default=0.5,
                       help="dropout right before the decoder")


def uniform(rng, shape, dtype):
    """NeuralTalk's initw: uniform in [-0.1, 0.1]."""
    return (rng.random(shape) * 0.2 - 0.1).astype(dtype)


def init_model(params, feature_width, vocab_size, bias_init_vector, rng, dtype=np.float32):
    """The generator's own initialisation, with bd = the log-frequency vector (V,)."""
    from neuraltalk.models import module_of
    gen = module_of(params)
    gen.check_params(params)
    model = gen.init(params, feature_width, vocab_size, rng, dtype)
    model["bd"][...] = np.asarray(bias_init_vector, dtype=dtype).reshape(1, -1)
    return model


def sorted_feats(batch, order, dtype):
    """The batch's image features (B, D) in the packed layout's sentence order."""
    feats = np.asarray(batch.feats)
    if np.any(order != np.arange(len(order))):
        feats = feats[order]
    return feats.astype(dtype, copy=False)


def word_and_image_dropout_masks(params, lay, rng, word_width, image_width, out_width, dtype):
    """Inverted-dropout masks of a generator that drops its word rows and its image
    encodings separately, as NeuralTalk's RNN does: (encoder: (words (N, word_width),
    images (B, image_width)) or None; decoder (N, out_width) or None), drawn in that order."""
    B, N = len(lay.order), len(lay.inputs)
    p_enc = params.get("drop_prob_encoder", 0)
    enc = None
    if rng is not None and p_enc > 0:
        enc = (dropout_mask((N, word_width), p_enc, rng, dtype),
               dropout_mask((B, image_width), p_enc, rng, dtype))
    dec = dropout_mask((N, out_width), params.get("drop_prob_decoder", 0), rng, dtype)
    return enc, dec


def word_and_image_inputs(model, batch, params, rng, masks, dropout_masks):
    """What the loss of a generator with word and image dropout (rnn, mrnn, lrcn) starts
    from: the batch's packed layout, its image features in the layout's order, and the
    masks (words, images, decoder): `masks` when given (gradient checks), else drawn by
    the model's dropout_masks from rng."""
    lay = layout(batch.words, batch.lengths)
    feats = sorted_feats(batch, lay.order, model["Wd"].dtype)
    enc_mask, dec_mask = masks if masks is not None else dropout_masks(params, model, lay, rng)
    word_mask, image_mask = enc_mask if enc_mask is not None else (None, None)
    return lay, feats, word_mask, image_mask, dec_mask


def decoder_logits(model, h):
    """The decoder's logits h Wd + bd (rows, V) of one decoding step, the bias added in place:
    a second (rows, V) temporary per step costs more than the addition."""
    Y = h @ model["Wd"]
    Y += model["bd"]
    return Y


def decoder_loss(model, Hdec, targets, B, params, regularized, compute_grads=True,
                 row_weights=None):
    """NeuralTalk's cost of the decoder on the packed states Hdec (N, H) scored against
    targets (N,), with L2 on `regularized`. Returns (cost dict, dHdec or None, grads of
    Wd, bd and the regularisation of every matrix in `regularized`, or None).

    row_weights (N,): weights of each row's log-likelihood instead of 1 (sentence-level
    weights spread over their rows, for policy gradients)."""
    Y, decoder_cache = affine_forward(Hdec, model["Wd"], model["bd"])
    losses, softmax_cache = softmax_cross_entropy_forward(Y, targets)
    N = len(targets)
    weighted = losses if row_weights is None else losses * row_weights
    loss_cost = float(np.sum(weighted)) / B
    logppl = float(np.sum(losses)) / np.log(2)
    reg_cost = 0.0
    regc = params.get("regc", 0)
    if regc > 0:
        for name in regularized:
            W = model[name].ravel()
            reg_cost += 0.5 * regc * float(np.dot(W, W)) / B
    cost = {"loss_cost": loss_cost, "reg_cost": reg_cost, "total_cost": loss_cost + reg_cost,
            "ppl2": 2.0 ** (logppl / max(1, N)), "logppl": logppl, "ntokens": N}
    if not compute_grads:
        return cost, None, None
    w = 1.0 / B if row_weights is None else np.asarray(row_weights, np.float64) / B
    dY = softmax_cross_entropy_backward(w, softmax_cache)
    dHdec, dWd, dbd = affine_backward(dY, decoder_cache)
    grads = {"Wd": dWd, "bd": dbd}
    return cost, dHdec, grads


def add_regularization(model, grads, regularized, params, B):
    """grads[name] += regc / B * model[name] for the regularized matrices, in place, in row
    chunks on every core (the same products and sums: 14M parameters at config B took
    11 ms as one whole-array temporary on one core)."""
    regc = params.get("regc", 0)
    if regc <= 0:
        return
    for name in regularized:
        g, w = grads[name], model[name]
        if g.ndim != 2 or not (g.flags.c_contiguous and w.flags.c_contiguous):
            g += (regc / B) * w
            continue

        def rows(r, g=g, w=w):
            g[r] += (regc / B) * w[r]
        in_row_chunks(rows, len(g))


def batch_cost(model, batch, params, rng=None, masks=None, compute_grads=True, **options):
    """The cost and gradients of a batch for whichever generator `params` names (see the
    protocol in models/__init__.py; options such as return_dfeats go to its loss)."""
    from neuraltalk.models import module_of
    return module_of(params).loss(model, batch, params, rng, masks, compute_grads, **options)


def start(model, feats, params):
    """Prediction: the state of a batch of images (B, D) before the first word."""
    from neuraltalk.models import module_of
    return module_of(params).start(model, np.asarray(feats, dtype=model["Wd"].dtype), params)


def step(model, state, prev_words, params):
    """Feed the previous words (B,) (START = 0 first); returns log(1e-20 + softmax(y))
    (B, V), as NeuralTalk scores words, and the new state."""
    from neuraltalk.models import module_of
    Y, state = module_of(params).step(model, state, np.asarray(prev_words), params)
    return log_softmax(Y), state


def sample(model, feats, params, rng=None, n_samples=1, temperature=1.0, max_steps=20):
    """Captions drawn from the generator, n_samples per image of feats (B, D), batched over
    images and samples: each word from softmax(y / temperature), or the most probable word
    with temperature 0 (greedy decoding, what beam search with beam 1 gives). max_steps
    caps the words drawn, END included, as captions/decoding.py does.

    Returns words (B * n_samples, max_steps) int32, row b * n_samples + k holding sample k
    of image b, 0 after its last word; lengths (B * n_samples,) int32, the words before END;
    finished (B * n_samples,) bool, whether END was drawn within max_steps.
    rng: np.random.Generator (unused when greedy): the same state draws the same captions."""
    from neuraltalk.models import module_of
    gen = module_of(params)
    feats = np.asarray(feats, dtype=model["Wd"].dtype)
    K = int(n_samples)
    S = len(feats) * K
    words = np.zeros((S, max_steps), dtype=np.int32)
    lengths = np.zeros(S, dtype=np.int32)
    finished = np.zeros(S, dtype=bool)
    state = {name: np.repeat(a, K, axis=0) for name, a in gen.start(model, feats, params).items()}
    live = np.arange(S)  # the rows still drawing words; the state holds only theirs
    prev = np.zeros(S, dtype=np.int64)  # START
    for t in range(max_steps):
        if len(live) == 0:
            break
        Y, state = gen.step(model, state, prev, params)
        if temperature == 0:
            w = Y.argmax(1)
        else:  # inverse-CDF sampling: one uniform per row; cumsum in float64 for the tail
            e = np.exp((Y - Y.max(1, keepdims=True)) / temperature)
            cdf = np.cumsum(e, axis=1, dtype=np.float64)
            u = rng.random(len(live)) * cdf[:, -1]
            w = np.minimum((cdf <= u[:, None]).sum(1), Y.shape[1] - 1)
        ended = w == 0
        finished[live[ended]] = True
        going = ~ended
        live, prev = live[going], w[going]
        words[live, t] = prev
        lengths[live] += 1
        state = {name: a[going] for name, a in state.items()}
    return words, lengths, finished


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


def make_task(gen, params, dataset, rng, vocab=None):
    """The training Task of the caption generator module `gen` on `dataset`.

    vocab: (wordtoix, ixtoword) of a checkpoint being resumed; None builds it from the
    training sentences with --word_count_threshold."""
    from neuraltalk.data.batches import SentenceTable
    from neuraltalk.models.task import Task
    from neuraltalk.data.vocab import build_vocab

    if vocab is None:
        token_lists = [s["tokens"] for img in dataset.split("train") for s in img["sentences"]]
        wordtoix, ixtoword, bias = build_vocab(token_lists, params["word_count_threshold"])
    else:
        wordtoix, ixtoword = vocab
        bias = np.zeros(len(ixtoword))  # the checkpoint's model replaces this one
    regions = dataset_regions(gen, params, dataset)
    width = dataset.feature_width if regions is None else regions.width
    model = init_model(params, width, len(ixtoword), bias, rng)
    train = SentenceTable(dataset, wordtoix, "train", regions)
    val = SentenceTable(dataset, wordtoix, "val", regions)

    def validate(model):
        ppl = perplexity(model, val, params, params.get("eval_batch_size", 100),
                         params.get("eval_max_images", -1))
        return {"name": "perplexity", "value": ppl, "lower_is_better": True,
                "summary": "validation perplexity = %f" % ppl}

    return Task(model=model, wordtoix=wordtoix, ixtoword=ixtoword,
                sample_batch=train.sample,
                cost=lambda model, batch, rng: gen.loss(model, batch, params, rng),
                validate=validate, update_keys=sorted(model), epoch_size=len(train))


def dataset_regions(gen, params, dataset):
    """The RegionFeatures a generator that attends (NEEDS_REGIONS) reads: --regions, or
    regions.h5 beside dataset.json; None for the others."""
    if not getattr(gen, "NEEDS_REGIONS", False):
        return None
    from neuraltalk.data.regions import load_regions
    return load_regions(params.get("regions") or dataset.folder, len(dataset.images))


def input_width(model):
    """The width of the image features (or regions, for a generator that attends) a
    generator's model takes."""
    return model["We"].shape[0] if "We" in model else model["Wa"].shape[0]


def check_feature_width(model, width, source):
    if model["We"].shape[0] != width:
        raise NeuralTalkError("the model takes %d-d image features but %s has %d-d features: "
                              "use the same CNN as in training"
                              % (model["We"].shape[0], source, width))
