"""The alignment model (Karpathy & Fei-Fei, Section 3.1): regions and words in one space.

Regions: v_i = Wm CNN(I_b) + bm                                  (eq. 1)
Words, a bidirectional RNN over the sentence:
  x_t = Ww 1_t                                                    (eq. 2)
  e_t = f(We x_t + be)                                            (eq. 3)
  hf_t = f(e_t + Wf hf_{t-1} + bf)                                (eq. 4)
  hb_t = f(e_t + Wb hb_{t+1} + bb)                                (eq. 5)
  s_t = f(Wd (hf_t + hb_t) + bd)                                  (eq. 6)
with f = ReLU. Image-sentence score (eq. 8): S_kl = sum_t max_i v_i . s_t (`--score max`),
or DeFrag's S_kl = sum_t sum_i max(0, v_i . s_t) (`--score defrag`, eq. 7 as the paper
writes it: not normalised, so it grows with the sentence's length and the image's region
count; padding words and regions add nothing). Ranking cost over a batch of K
corresponding pairs (eq. 9), margin 1, both directions:
  C = sum_k [ sum_{l != k} max(0, S_kl - S_kk + 1) + sum_{l != k} max(0, S_lk - S_kk + 1) ]
(the l = k terms are the constant 1 each and are left out), divided by K, plus
regc/2 * sum W^2 / K. Row vectors throughout: v = CNN @ Wm + bm, and so on.

The sentences are packed (neuraltalk/layers/packed.py) and both recurrences are the
layer library's RNN, forward and reversed; the word vectors s_t are then put in
sentence-major order, so that every score of K images with L sentences comes from one
(K*R, h) x (h, N_words) product and a segmented sum over each sentence's words. The same
`image_sentence_scores` serves the training cost and retrieval.
"""
from collections import namedtuple

import numpy as np

from neuraltalk.errors import NeuralTalkError
from neuraltalk.layers.affine import affine_backward, affine_forward
from neuraltalk.layers.embedding import embedding_backward, embedding_forward
from neuraltalk.layers.packed import pack
from neuraltalk.layers.rnn import rnn_backward, rnn_forward

NAME = "brnn"
PAPER = "Karpathy & Fei-Fei's alignment model: region embeddings, bidirectional RNN, ranking cost"
ARCHITECTURE = ("embedding_size", "word_vector_size", "score", "word_count_threshold")
DEFAULTS = {"solver": "adam"}  # rmsprop's first steps blow up the unbounded scores
REGULARIZED = ("Wm", "We", "Wf", "Wb", "Wd")
NEEDS_REGIONS = True
# the paper's sizes (Section 4): h = 1000 for Flickr8k/30k, 300-d word2vec vectors kept fixed
PRESETS = {"paper": {"embedding_size": 1000, "word_vector_size": 300,
                     "finetune_word_vectors": 0}}


def add_arguments(group):
    group.add_argument("--embedding_size", type=int, default=256,
                       help="h: size of the common region-word space (paper: 1000-1600)")
    group.add_argument("--word_vector_size", type=int, default=300,
                       help="size of the word vectors x_t (paper: 300, word2vec)")
    group.add_argument("--word_vectors", default="",
                       help="word2vec file (binary or text) to initialise the word vectors")
    group.add_argument("--finetune_word_vectors", type=int, default=0,
                       help="1: train the word vectors (the paper keeps them fixed)")
    group.add_argument("--score", default="max", choices=["max", "defrag"],
                       help="image-sentence score: sum over words of the best region, or "
                            "DeFrag's sum of all positive region-word products")
    group.add_argument("--margin", type=float, default=1.0, help="ranking margin")
    group.add_argument("--beta", type=float, default=1.0,
                       help="MRF smoothness: larger beta, longer snippets")
    group.add_argument("--regions", default="",
                       help="region features file (default: regions.h5 in the dataset folder; "
                            "without one, or with 'whole_image': each image's feature vector "
                            "is its only region, R = 1)")


def check_params(params):
    for name in ("embedding_size", "word_vector_size"):
        if params[name] <= 0:
            raise NeuralTalkError("--%s must be positive, not %s" % (name, params[name]))


def init(params, region_width, vocab_size, rng, dtype=np.float32, word_vectors=None):
    """Weights uniform in +-sqrt(6 / (fan_in + fan_out)) (the recurrent ones halved), word
    vectors uniform in +-0.5 unless given (V, word_vector_size), ReLU biases 0.01, bm 0."""
    h, w = params["embedding_size"], params["word_vector_size"]

    def uniform(n, m, scale=None):
        scale = scale if scale is not None else np.sqrt(6.0 / (n + m))
        return ((rng.random((n, m)) * 2 - 1) * scale).astype(dtype)

    def relu_bias():
        # slightly positive: with zero biases every unit of e_t that is 0 puts the first
        # step of each recurrence exactly on the ReLU's kink (pre-activation e_t + 0 = 0),
        # where no finite-difference gradient check can agree with the backward pass
        return np.full((1, h), 0.01, dtype)
    model = {"Wm": uniform(region_width, h), "bm": np.zeros((1, h), dtype),
             "Ww": uniform(vocab_size, w, 0.5) if word_vectors is None
             else np.asarray(word_vectors, dtype),
             "We": uniform(w, h), "be": relu_bias(),
             "Wf": uniform(h, h) * dtype(0.5), "bf": relu_bias(),
             "Wb": uniform(h, h) * dtype(0.5), "bb": relu_bias(),
             "Wd": uniform(h, h), "bd": relu_bias()}
    if model["Ww"].shape != (vocab_size, w):
        raise NeuralTalkError("word vectors have shape %s, expected (%d, %d)"
                              % (model["Ww"].shape, vocab_size, w))
    return model


def embed_regions(model, feats):
    """v (K, R, h) = feats @ Wm + bm   (eq. 1)"""
    return feats @ model["Wm"] + model["bm"]


Sentences = namedtuple("Sentences", [
    "s",         # (N, h) s_t of every word, sentence-major: sentence 0's words, then 1's, ...
    "sentence",  # (N,) the sentence (batch index) of each row of s
    "starts",    # (L,) the first row of each sentence in s (its length where empty)
    "lengths",   # (L,) words per sentence
])

BRNNCache = namedtuple("BRNNCache", [
    "perm", "words", "e_in", "e_pre", "forward", "backward", "output", "s_packed"])


def sentence_vectors(model, words, lengths):
    """The BRNN (eqs. 2-6) over sentences words (L, T), lengths (L,): Sentences and the cache."""
    lengths = np.asarray(lengths, dtype=np.int64)
    p = pack(lengths)
    idx = np.asarray(words)[p.order[p.sequence], p.step]  # the word at each packed row
    x, words_cache = embedding_forward(model["Ww"], idx)  # eq. 2
    e_pre, e_cache = affine_forward(x, model["We"], model["be"])
    e = np.maximum(e_pre, 0)  # eq. 3
    hf, f_cache = rnn_forward(e + model["bf"], model["Wf"], p.counts)  # eq. 4
    hb, b_cache = rnn_forward(e + model["bb"], model["Wb"], p.counts, reverse=True)  # eq. 5
    s_pre, d_cache = affine_forward(hf + hb, model["Wd"], model["bd"])
    s = np.maximum(s_pre, 0)  # eq. 6
    # sentence-major rows: sentence order[j]'s words are the packed rows of sequence j
    sentence = p.order[p.sequence]
    perm = np.lexsort((p.step, sentence))
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    out = Sentences(s[perm], sentence[perm], starts, lengths)
    return out, BRNNCache(perm, words_cache, e_cache, e_pre, f_cache, b_cache, d_cache, s)


def sentence_vectors_backward(ds, cache):
    """ds (N, h) in the sentence-major order of Sentences.s -> the gradients of Ww, We, be,
    Wf, bf, Wb, bb, Wd, bd."""
    d = np.empty_like(ds)
    d[cache.perm] = ds
    d *= cache.s_packed > 0
    dh, dWd, dbd = affine_backward(d, cache.output)
    dAf, dWf, _ = rnn_backward(dh, cache.forward)
    dAb, dWb, _ = rnn_backward(dh, cache.backward)
    de = dAf + dAb
    de *= cache.e_pre > 0
    dx, dWe, dbe = affine_backward(de, cache.e_in)
    return {"Ww": embedding_backward(dx, cache.words), "We": dWe, "be": dbe,
            "Wf": dWf, "bf": dAf.sum(0, keepdims=True), "Wb": dWb,
            "bb": dAb.sum(0, keepdims=True), "Wd": dWd, "bd": dbd}


def segment_sums(X, sentences):
    """(K, L): the sum of the columns of X (K, N) over each sentence's words (0 if none)."""
    out = np.zeros((len(X), len(sentences.lengths)), X.dtype)
    nonempty = sentences.lengths > 0
    if nonempty.any():
        out[:, nonempty] = np.add.reduceat(X, sentences.starts[nonempty], axis=1)
    return out


ScoreCache = namedtuple("ScoreCache", ["v", "s", "sentence", "kind", "winner", "active"])


def image_sentence_scores(v, region_counts, sentences, kind="max", need_cache=False):
    """S (K, L) for images v (K, R, h) with region_counts (K,) and Sentences (eq. 8, or
    DeFrag's eq. 7): every region-word product from one (K*R, h) x (h, N) product."""
    K, R, h = v.shape
    N = len(sentences.s)
    dots = (v.reshape(K * R, h) @ sentences.s.T).reshape(K, R, N)
    region_mask = np.arange(R)[None, :] < np.asarray(region_counts)[:, None]
    winner = active = None
    if kind == "max":
        dots[~region_mask] = -np.inf
        if need_cache:
            winner = dots.argmax(1)  # (K, N): the best region of each image for each word
            per_word = np.take_along_axis(dots, winner[:, None], 1)[:, 0]
        else:
            per_word = dots.max(1)
        if N == 0:
            per_word = np.zeros((K, 0), dots.dtype)
    else:
        np.clip(dots, 0, np.inf, out=dots)
        dots *= region_mask[:, :, None]
        per_word = dots.sum(1)
        active = dots > 0 if need_cache else None
    S = segment_sums(per_word, sentences)
    cache = ScoreCache(v, sentences.s, sentences.sentence, kind, winner, active) if need_cache else None
    return S, cache


def image_sentence_scores_backward(dS, cache):
    """dS (K, L) -> (dv (K, R, h), ds (N, h))."""
    v, s, sentence, kind, winner, active = cache
    K, R, h = v.shape
    dcolumn = dS[:, sentence]  # every word of sentence l gets dS[:, l]
    if kind == "max":
        ddots = np.zeros((K, R, len(s)), dS.dtype)
        np.put_along_axis(ddots, winner[:, None], dcolumn[:, None], 1)
    else:
        ddots = active * dcolumn[:, None]
    ddots = ddots.astype(v.dtype).reshape(K * R, -1)
    dv = (ddots @ s).reshape(K, R, h)
    ds = ddots.T @ v.reshape(K * R, h)
    return dv, ds


def ranking_cost(S, margin):
    """The cost of eq. 9 (without the constant l = k terms) and dC/dS."""
    K = len(S)
    diag = np.diag(S)
    off = ~np.eye(K, dtype=bool)
    sentence_hinge = np.maximum(0, S - diag[:, None] + margin) * off  # image k, sentence l
    image_hinge = np.maximum(0, S - diag[None, :] + margin) * off  # image l, sentence k
    cost = sentence_hinge.sum() + image_hinge.sum()
    active_s = (sentence_hinge > 0).astype(S.dtype)
    active_i = (image_hinge > 0).astype(S.dtype)
    dS = active_s + active_i
    dS[np.diag_indices(K)] = -active_s.sum(1) - active_i.sum(0)
    return cost, dS


def loss(model, batch, params, rng=None, masks=None, compute_grads=True, return_scores=False):
    """Cost and gradients of a batch of K image-sentence pairs: batch.regions (K, R, D),
    batch.region_counts (K,), batch.words (K, T), batch.lengths (K,). No dropout."""
    dtype = model["Wm"].dtype
    feats = np.asarray(batch.regions, dtype=dtype)
    K, R, D = feats.shape
    v, region_cache = affine_forward(feats.reshape(K * R, D), model["Wm"], model["bm"])  # eq. 1
    v = v.reshape(K, R, -1)
    sentences, brnn_cache = sentence_vectors(model, batch.words, batch.lengths)
    S, score_cache = image_sentence_scores(v, batch.region_counts, sentences,
                                           params.get("score", "max"), need_cache=True)
    cost, dS = ranking_cost(S, params.get("margin", 1.0))
    regc = params.get("regc", 0)
    reg_cost = 0.0
    if regc > 0:
        for name in REGULARIZED:
            reg_cost += 0.5 * regc * float(np.sum(model[name].astype(np.float64) ** 2)) / K
    result = {"loss_cost": cost / K, "reg_cost": reg_cost, "total_cost": cost / K + reg_cost}
    if return_scores:
        result["S"] = S
    if not compute_grads:
        return result, None
    dv, ds = image_sentence_scores_backward(dS / K, score_cache)
    grads = sentence_vectors_backward(ds, brnn_cache)
    _, grads["Wm"], grads["bm"] = affine_backward(dv.reshape(K * R, -1), region_cache,
                                                  need_dx=False)
    if regc > 0:
        for name in REGULARIZED:
            grads[name] += (regc / K) * model[name]
    return result, grads


# words per chunk of sentences in score_matrix: the BRNN's products then have 512 rows
# of 12-word sentences, and its (words, h) arrays (24 MB at h = 1000) stay under the
# 32 MB up to which the heap keeps freed memory (neuraltalk/runtime.py). At 12,288 words
# they were 49 MB, new pages for every chunk, and the BRNN over 5,000 sentences took
# 5.1-5.7 s (0.39 of the sgemm rate) against 3.1-3.6 s now (bench/retrieval_speed.py).
CHUNK_WORDS = 6144
BLOCK_BYTES = 32 << 20  # region-word products of one block of images in score_matrix


def score_matrix(model, params, region_feats, counts, words, lengths, chunk_words=None):
    """S (N_images, N_sentences) of the model's score, in chunks of sentences of at most
    chunk_words words, so memory stays bounded however large the split.

    The same scores as image_sentence_scores, made for speed: the region embeddings in one
    2-D product (a (K, R, D) @ (D, h) product is K small ones), and each chunk's region-word
    products block by block of images into one reused buffer, reduced over the regions
    there (the whole chunk's (K, R, words) products were 330 MB at 1,000 images, newly
    allocated and masked for each chunk)."""
    feats = np.asarray(region_feats, dtype=model["Wm"].dtype)
    K, R, D = feats.shape
    v = embed_regions(model, feats.reshape(K * R, D))  # (K*R, h)
    counts = np.asarray(counts)
    lengths = np.asarray(lengths, dtype=np.int64)
    kind = params.get("score", "max")
    S = np.empty((K, len(lengths)), dtype=np.float32)
    for start, stop in sentence_chunks(lengths, chunk_words):
        sentences, _ = sentence_vectors(model, words[start:stop], lengths[start:stop])
        per_word = _per_word_scores(v, R, counts, sentences.s, kind)
        S[:, start:stop] = segment_sums(per_word, sentences)
    return S


def sentence_chunks(lengths, chunk_words=None):
    """score_matrix's chunks [start, stop) of the sentences: from the first, as many as fit
    in chunk_words words, at least one. From any chunk's start the rest are the same, so
    ranks scoring whole chunks each get the same S bytes (alignment/retrieval.py)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    limit = chunk_words or CHUNK_WORDS
    chunks, start = [], 0
    while start < len(lengths):
        words_so_far = np.cumsum(lengths[start:])
        stop = start + max(1, int(np.searchsorted(words_so_far, limit, side="right")))
        chunks.append((start, stop))
        start = stop
    return chunks


def _per_word_scores(v, R, counts, s, kind):
    """(K, N): each image's score of each word, the max (or DeFrag's sum of ReLUs) over its
    regions of the region-word products, as in image_sentence_scores."""
    K, N = len(v) // R, len(s)
    out = np.empty((K, N), dtype=np.result_type(v, s))
    if N == 0:
        return out
    images = max(1, BLOCK_BYTES // (R * N * out.itemsize))
    buf = np.empty(min(images, K) * R * N, dtype=out.dtype)
    for k0 in range(0, K, images):
        k1 = min(K, k0 + images)
        dots = np.matmul(v[k0 * R:k1 * R], s.T, out=buf[:(k1 - k0) * R * N].reshape(-1, N))
        dots = dots.reshape(k1 - k0, R, N)
        if kind != "max":
            np.clip(dots, 0, np.inf, out=dots)
        for k in np.flatnonzero(counts[k0:k1] < R):  # images with fewer regions than R
            dots[k, counts[k0 + k]:] = -np.inf if kind == "max" else 0
        (np.max if kind == "max" else np.sum)(dots, axis=1, out=out[k0:k1])
    return out


def make_task(params, dataset, rng, vocab=None):
    """The training Task of the alignment model (see neuraltalk/models/task.py)."""
    from neuraltalk.data.batches import SentenceTable
    from neuraltalk.data.regions import regions_for_training
    from neuraltalk.models.task import Task
    from neuraltalk.data.vocab import build_vocab

    # stored with the checkpoint: evaluation, the MRF and region captions read the same
    regions, params["regions"] = regions_for_training(dataset, params.get("regions", ""))
    if vocab is None:
        token_lists = [s["tokens"] for img in dataset.split("train") for s in img["sentences"]]
        wordtoix, ixtoword, _ = build_vocab(token_lists, params["word_count_threshold"])
    else:
        wordtoix, ixtoword = vocab
    word_vectors = None
    if params.get("word_vectors"):
        from neuraltalk.data.word2vec import vectors_for_vocabulary
        word_vectors = vectors_for_vocabulary(params["word_vectors"], ixtoword,
                                              params["word_vector_size"], rng)
    check_params(params)
    model = init(params, regions.width, len(ixtoword), rng, word_vectors=word_vectors)
    train = SentenceTable(dataset, wordtoix, "train", regions)
    val = SentenceTable(dataset, wordtoix, "val", regions)

    def sample_batch(batch_size, rng):
        # K different images, one of each image's sentences
        n = min(batch_size, len(train.image_ids))
        pick = rng.choice(len(train.image_ids), size=n, replace=False)
        rows = train.offsets[pick] + (rng.random(n) * train.counts[pick]).astype(np.int64)
        return train.batch(rows)

    def validate(model):
        result = retrieval_table(model, params, val, params["eval_max_images"])
        total = sum(result[d]["R@%d" % k] for d in ("i2t", "t2i") for k in (1, 5, 10))
        return {"name": "recall_sum", "value": total, "lower_is_better": False,
                "summary": "retrieval on val: %s; sum of recalls %.3f"
                           % (format_recalls(result), total)}

    def check_features(chunk_images=64):
        # the region features are what this model reads, in chunks of bounded memory
        imgids = np.union1d(train.image_ids, val.image_ids)
        for start in range(0, len(imgids), chunk_images):
            chunk = imgids[start:start + chunk_images]
            feats = np.asarray(regions.feats[chunk], dtype=np.float32)
            finite = np.isfinite(feats.sum(axis=(1, 2), dtype=np.float64))
            if not finite.all():
                raise NeuralTalkError("%s holds NaN or infinite region features for imgid %d "
                                      "(checked before training): recompute them"
                                      % (regions.path, chunk[~finite][0]))

    update_keys = sorted(k for k in model if k != "Ww" or params.get("finetune_word_vectors"))
    # whole images: the regions are the feature rows, which the loop checks itself
    return Task(model=model, wordtoix=wordtoix, ixtoword=ixtoword, sample_batch=sample_batch,
                cost=lambda model, batch, rng: loss(model, batch, params),
                validate=validate, update_keys=update_keys, epoch_size=len(train),
                check_features=None if regions.whole_image else check_features)


def retrieval_table(model, params, table, max_images=-1):
    """R@1/5/10 and median rank both ways over the images of a SentenceTable with regions
    (the first max_images; -1: all)."""
    from neuraltalk.metrics.retrieval import ranks, recall_table
    n_images = len(table.image_ids) if max_images < 0 else min(max_images, len(table.image_ids))
    n_sentences = int(table.offsets[n_images - 1] + table.counts[n_images - 1])
    feats, counts = table.regions.rows(table.image_ids[:n_images])
    width = max(1, int(table.lengths[:n_sentences].max(initial=0)))
    S = score_matrix(model, params, feats, counts, table.words[:n_sentences, :width],
                     table.lengths[:n_sentences])
    sentence_image = np.repeat(np.arange(n_images), table.counts[:n_images])
    return recall_table(*ranks(S, sentence_image))


def format_recalls(result):
    return "; ".join("%s R@1 %.3f R@5 %.3f R@10 %.3f medr %g" % (
        name, result[d]["R@1"], result[d]["R@5"], result[d]["R@10"], result[d]["medr"])
        for d, name in (("i2t", "image annotation"), ("t2i", "image search")))
