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
count; padding words and regions add nothing). Ranking cost over a
batch of K corresponding pairs (eq. 9), margin 1, both directions:
  C = sum_k [ sum_{l != k} max(0, S_kl - S_kk + 1) + sum_{l != k} max(0, S_lk - S_kk + 1) ]
(the l = k terms are the constant 1 each and are left out), divided by K, plus
regc/2 * sum W^2 / K. Row vectors throughout: v = CNN @ Wm + bm, and so on.

Shapes: region features (K, R, D) with counts (K,); words (K, T) with lengths (K,);
inside, the BRNN runs time-major (T, K, h). Every score of a batch comes from one
(K*R, h) x (h, K*T) product.
"""
import numpy as np

from neuraltalk.errors import NeuralTalkError

REGULARIZED = ("Wm", "We", "Wf", "Wb", "Wd")


def add_arguments(group):
    """The alignment model's flags (driver.py adds them to its own)."""
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
                       help="region features file (default: regions.h5 in the dataset folder)")


def init_model(params, region_width, vocab_size, rng, word_vectors=None, dtype=np.float32):
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


def brnn_forward(model, words, lengths):
    """s (T, K, h) time-major for words (K, T), zero at padding; and the cache."""
    K, T = words.shape
    mask = (np.arange(T)[:, None] < lengths[None, :]).astype(model["We"].dtype)[..., None]
    x = model["Ww"][words.T]  # (T, K, w)  eq. 2
    e = np.maximum(x @ model["We"] + model["be"], 0)  # eq. 3
    hf = np.zeros_like(e)
    hb = np.zeros_like(e)
    for t in range(T):  # forward recurrence, eq. 4
        a = e[t] + model["bf"]
        if t > 0:
            a += hf[t - 1] @ model["Wf"]
        hf[t] = np.maximum(a, 0)
    for t in reversed(range(T)):  # backward recurrence from each sentence's last word, eq. 5
        a = e[t] + model["bb"]
        if t < T - 1:
            a += hb[t + 1] @ model["Wb"]
        hb[t] = np.maximum(a, 0) * mask[t]
    s = np.maximum((hf + hb) @ model["Wd"] + model["bd"], 0) * mask  # eq. 6
    return s, (words, mask, x, e, hf, hb, s)


def brnn_backward(model, ds, cache):
    words, mask, x, e, hf, hb, s = cache
    T = len(e)
    da = ds * (s > 0)  # s is 0 at padding, so da is too
    h_sum = hf + hb
    g = {"Wd": h_sum.reshape(-1, h_sum.shape[-1]).T @ da.reshape(-1, da.shape[-1]),
         "bd": da.sum((0, 1))[None]}
    dh = da @ model["Wd"].T
    de = np.zeros_like(e)
    dWf = np.zeros_like(model["Wf"])
    dWb = np.zeros_like(model["Wb"])
    dbf = np.zeros_like(model["bf"])
    dbb = np.zeros_like(model["bb"])
    carry = np.zeros_like(e[0])
    for t in reversed(range(T)):  # back through the forward recurrence
        dz = (dh[t] + carry) * (hf[t] > 0)
        de[t] += dz
        dbf += dz.sum(0)
        if t > 0:
            dWf += hf[t - 1].T @ dz
            carry = dz @ model["Wf"].T
    carry = np.zeros_like(e[0])
    for t in range(T):  # back through the backward recurrence
        dz = (dh[t] + carry) * (hb[t] > 0)  # hb is 0 at padding: no gradient there
        de[t] += dz
        dbb += dz.sum(0)
        if t < T - 1:
            dWb += hb[t + 1].T @ dz
            carry = dz @ model["Wb"].T
    dze = de * (e > 0)
    w = x.shape[-1]
    g.update({"Wf": dWf, "bf": dbf, "Wb": dWb, "bb": dbb,
              "We": x.reshape(-1, w).T @ dze.reshape(-1, dze.shape[-1]),
              "be": dze.sum((0, 1))[None]})
    dx = (dze @ model["We"].T) * mask
    dWw = np.zeros_like(model["Ww"])
    np.add.at(dWw, words.T.ravel(), dx.reshape(-1, w))
    g["Ww"] = dWw
    return g


def region_word_products(v, region_mask, s):
    """dots (K, R, L, T): v_i . s_t for every region of every image and word of every
    sentence, in one product; regions past an image's count are -inf."""
    K, R, h = v.shape
    T, L, _ = s.shape
    dots = (v.reshape(K * R, h) @ s.reshape(T * L, h).T).reshape(K, R, T, L)
    dots = dots.transpose(0, 1, 3, 2)
    return np.where(region_mask[:, :, None, None], dots, -np.inf)


def scores(dots, word_mask, kind):
    """S (K, L) from the region-word products (eq. 8); word_mask (L, T)."""
    if kind == "max":
        best = dots.max(1)  # (K, L, T)
        return (best * word_mask[None]).sum(2), best
    positive = np.where(np.isfinite(dots), np.maximum(dots, 0), 0)
    return (positive * word_mask[None, None]).sum((1, 3)), positive


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


def batch_cost(model, batch, params, return_scores=False):
    """Cost and gradients of a batch of K image-sentence pairs: batch = (region feats
    (K, R, D), counts (K,), words (K, T), lengths (K,))."""
    feats, counts, words, lengths = batch
    dtype = model["Wm"].dtype
    feats = np.asarray(feats, dtype=dtype)
    K, R, _ = feats.shape
    region_mask = np.arange(R)[None, :] < counts[:, None]
    word_mask = (np.arange(words.shape[1])[None, :] < lengths[:, None]).astype(dtype)
    v = embed_regions(model, feats)
    s, cache = brnn_forward(model, words, lengths)
    dots = region_word_products(v, region_mask, s)
    S, inner = scores(dots, word_mask, params.get("score", "max"))
    cost, dS = ranking_cost(S, params.get("margin", 1.0))
    dS /= K
    # back through the scores to every region-word product
    if params.get("score", "max") == "max":
        winner = dots.argmax(1)  # (K, L, T): the best region of image k for word t of l
        ddots = np.zeros_like(dots)
        np.put_along_axis(ddots, winner[:, None], (dS[:, :, None] * word_mask[None])[:, None], 1)
    else:
        ddots = (dots > 0) * (dS[:, None, :, None] * word_mask[None, None])
    ddots = ddots.astype(dtype)
    h = v.shape[-1]
    dv = (ddots.reshape(K * R, -1) @ s.transpose(1, 0, 2).reshape(-1, h)).reshape(K, R, h)
    L, T = words.shape
    ds = (ddots.reshape(K * R, L * T).T @ v.reshape(K * R, h)).reshape(L, T, h).transpose(1, 0, 2)
    grads = brnn_backward(model, ds, cache)
    grads["Wm"] = feats.reshape(K * R, -1).T @ dv.reshape(K * R, h)
    grads["bm"] = dv.sum((0, 1))[None]
    regc = params.get("regc", 0)
    reg_cost = 0.0
    for name in REGULARIZED:
        if regc > 0:
            reg_cost += 0.5 * regc * float(np.sum(model[name].astype(np.float64) ** 2)) / K
            grads[name] += (regc / K) * model[name]
    result = {"loss_cost": cost / K, "reg_cost": reg_cost, "total_cost": cost / K + reg_cost}
    if return_scores:
        result["S"] = S
    return result, grads


def make_task(params, dataset, rng, vocab=None):
    """The training Task of the alignment model (see neuraltalk/tasks.py)."""
    from neuraltalk.batches import SentenceTable
    from neuraltalk.regions import load_regions
    from neuraltalk.retrieval import evaluate_model
    from neuraltalk.tasks import Task
    from neuraltalk.vocab import build_vocab

    regions = load_regions(params.get("regions") or dataset.folder, len(dataset.images))
    if vocab is None:
        token_lists = [s["tokens"] for img in dataset.split("train") for s in img["sentences"]]
        wordtoix, ixtoword, _ = build_vocab(token_lists, params["word_count_threshold"])
    else:
        wordtoix, ixtoword = vocab
    word_vectors = None
    if params.get("word_vectors"):
        from neuraltalk.word2vec import vectors_for_vocabulary
        word_vectors = vectors_for_vocabulary(params["word_vectors"], ixtoword,
                                              params["word_vector_size"], rng)
    model = init_model(params, regions.width, len(ixtoword), rng, word_vectors)
    train = SentenceTable(dataset, wordtoix, "train")
    val = SentenceTable(dataset, wordtoix, "val")

    def sample_batch(batch_size, rng):
        # K different images, one of each image's sentences
        n = min(batch_size, len(train.image_ids))
        pick = rng.choice(len(train.image_ids), size=n, replace=False)
        rows = train.offsets[pick] + (rng.random(n) * train.counts[pick]).astype(np.int64)
        b = train.batch(rows)
        feats, counts = regions.rows(b.image_ids)
        return feats, counts, b.words, np.maximum(b.lengths, 0)

    def validate(model):
        result = evaluate_model(model, params, regions, val, params["eval_max_images"])
        total = sum(result[d]["R@%d" % k] for d in ("i2t", "t2i") for k in (1, 5, 10))
        return {"score": -total, "perplexity": -total,
                "summary": "retrieval on val: " + format_recalls(result)}

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
    return Task(model=model, wordtoix=wordtoix, ixtoword=ixtoword, sample_batch=sample_batch,
                cost=lambda model, batch, rng: batch_cost(model, batch, params),
                validate=validate, update_keys=update_keys, epoch_size=len(train),
                check_features=check_features)


def format_recalls(result):
    return "; ".join("%s R@1 %.3f R@5 %.3f R@10 %.3f medr %g" % (
        name, result[d]["R@1"], result[d]["R@5"], result[d]["R@10"], result[d]["medr"])
        for d, name in (("i2t", "image annotation"), ("t2i", "image search")))
