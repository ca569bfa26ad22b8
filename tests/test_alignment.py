"""The alignment model: gradient checks of every parameter, both score forms, and the
cost against a plain loop over image-sentence pairs."""
import numpy as np
import pytest

from neuraltalk import alignment
from neuraltalk.gradcheck import check_gradients

D, V = 7, 10


def _setup(kind, seed, finetune=True):
    rng = np.random.default_rng(seed)
    params = {"embedding_size": 6, "word_vector_size": 5, "score": kind, "margin": 1.0,
              "regc": 1e-3}
    model = alignment.init_model(params, D, V, rng, dtype=np.float64)
    for k in model:
        model[k] = rng.normal(scale=0.7, size=model[k].shape)
    K, R, T = 4, 3, 5
    counts = np.array([3, 1, 2, 3])  # images with different numbers of regions
    lengths = np.array([5, 2, 3, 1])  # sentences of different lengths
    words = rng.integers(1, V, size=(K, T)) * (np.arange(T) < lengths[:, None])
    feats = rng.normal(size=(K, R, D))
    return params, model, (feats, counts, words, lengths)


def _pre_activations(model, batch):
    """Every ReLU input of the BRNN, written plainly, one sentence at a time."""
    feats, counts, words, lengths = batch
    out = []
    for k in range(len(words)):
        n = lengths[k]
        x = model["Ww"][words[k, :n]]
        pe = x @ model["We"] + model["be"][0]
        e = np.maximum(pe, 0)
        hf, hb = [], [None] * n
        prev = np.zeros(e.shape[1])
        for t in range(n):
            p = e[t] + prev @ model["Wf"] + model["bf"][0]
            out.append(p)
            prev = np.maximum(p, 0)
            hf.append(prev)
        nxt = np.zeros(e.shape[1])
        for t in reversed(range(n)):
            p = e[t] + nxt @ model["Wb"] + model["bb"][0]
            out.append(p)
            nxt = np.maximum(p, 0)
            hb[t] = nxt
        out.append(pe.ravel())
        for t in range(n):
            out.append((hf[t] + hb[t]) @ model["Wd"] + model["bd"][0])
    return np.concatenate([np.ravel(o) for o in out])


def _kink_distance(params, model, batch):
    """How far the batch is from any kink: ReLUs, the max over regions (gap between the
    two best), DeFrag's max(0, .), and the hinges."""
    cost, _ = alignment.batch_cost(model, batch, params, return_scores=True)
    feats, counts, words, lengths = batch
    R = feats.shape[1]
    v = alignment.embed_regions(model, feats)
    s, _ = alignment.brnn_forward(model, words, lengths)
    dots = alignment.region_word_products(v, np.arange(R)[None] < counts[:, None], s)
    distances = [np.abs(_pre_activations(model, batch)).min()]
    word_mask = np.arange(words.shape[1])[None] < lengths[:, None]
    if params["score"] == "max":
        top2 = -np.sort(-dots, axis=1)[:, :2]
        gap = np.where(np.isfinite(top2[:, 1]), top2[:, 0] - top2[:, 1], np.inf)
        distances.append(gap[:, word_mask].min())
    else:
        finite = np.isfinite(dots) & word_mask[None, None]
        distances.append(np.abs(dots[finite]).min())
    S = cost["S"]
    hinge = S - np.diag(S)[:, None] + 1
    hinge2 = S - np.diag(S)[None, :] + 1
    off = ~np.eye(len(S), dtype=bool)
    distances += [np.abs(hinge[off]).min(), np.abs(hinge2[off]).min()]
    return min(distances)


@pytest.mark.parametrize("kind", ["max", "defrag"])
def test_gradients_of_every_parameter_match_finite_differences(kind):
    # away from the kinks of max, ReLU and the hinges: the first seed whose batch is more
    # than 0.02 from every kink (the finite-difference steps are at most 2e-3)
    for seed in range(200):
        params, model, batch = _setup(kind, seed)
        if _kink_distance(params, model, batch) > 0.02:
            break
    else:
        pytest.fail("no batch away from the kinks")
    cost, grads = alignment.batch_cost(model, batch, params)
    assert cost["loss_cost"] > 0 and set(grads) == set(model)
    worst = check_gradients(lambda: alignment.batch_cost(model, batch, params)[0]["total_cost"],
                            model, grads, min_magnitude=1e-9)
    assert max(worst.values()) < 1e-6, sorted(worst.items(), key=lambda kv: -kv[1])


@pytest.mark.parametrize("kind", ["max", "defrag"])
def test_scores_and_cost_equal_a_plain_loop_over_pairs(kind):
    params, model, batch = _setup(kind, 0)
    feats, counts, words, lengths = batch
    cost, _ = alignment.batch_cost(model, batch, params, return_scores=True)
    K = len(words)
    s, _ = alignment.brnn_forward(model, words, lengths)
    S = np.zeros((K, K))
    for k in range(K):
        v = feats[k, :counts[k]] @ model["Wm"] + model["bm"][0]
        for l in range(K):
            for t in range(lengths[l]):
                products = v @ s[t, l]
                S[k, l] += products.max() if kind == "max" else np.maximum(products, 0).sum()
    np.testing.assert_allclose(cost["S"], S, rtol=1e-12)
    loss = sum(max(0, S[k, l] - S[k, k] + 1) + max(0, S[l, k] - S[k, k] + 1)
               for k in range(K) for l in range(K) if l != k) / K
    assert cost["loss_cost"] == pytest.approx(loss, rel=1e-12)


def test_backward_direction_starts_at_each_sentences_last_word():
    params, model, batch = _setup("max", 1)
    feats, counts, words, lengths = batch
    s, _ = alignment.brnn_forward(model, words, lengths)
    # the same sentence alone, without padding, gives the same word vectors
    for k in range(len(words)):
        alone, _ = alignment.brnn_forward(model, words[k:k + 1, :lengths[k]], lengths[k:k + 1])
        np.testing.assert_allclose(s[:lengths[k], k], alone[:, 0], rtol=1e-12)
        assert not s[lengths[k]:, k].any()


def _task_params(**overrides):
    import argparse
    parser = argparse.ArgumentParser()
    alignment.add_arguments(parser)
    params = vars(parser.parse_args([]))
    params.update({"word_count_threshold": 5, "eval_max_images": 30, "regc": 1e-8,
                   "embedding_size": 16, "word_vector_size": 8}, **overrides)
    return params


def test_word_vectors_are_frozen_unless_finetuned(shapes_root):
    from neuraltalk.dataset import load_dataset
    dataset = load_dataset("shapes", data_root=shapes_root)
    frozen = alignment.make_task(_task_params(), dataset, np.random.default_rng(0))
    assert "Ww" not in frozen.update_keys
    assert set(frozen.update_keys) == set(frozen.model) - {"Ww"}
    tuned = alignment.make_task(_task_params(finetune_word_vectors=1), dataset,
                                np.random.default_rng(0))
    assert set(tuned.update_keys) == set(tuned.model)


def test_task_batches_pair_distinct_images_with_their_own_sentences(shapes_root):
    from neuraltalk.dataset import load_dataset
    from neuraltalk.regions import load_regions
    dataset = load_dataset("shapes", data_root=shapes_root)
    task = alignment.make_task(_task_params(), dataset, np.random.default_rng(0))
    feats, counts, words, lengths = task.sample_batch(40, np.random.default_rng(1))
    regions = load_regions(dataset.folder)
    every = regions.feats[...]
    train = np.array([img["split"] == "train" for img in dataset.images])
    assert feats.shape[0] == 40 and feats.dtype == np.float32
    # each row's regions are one training image's, and no image comes twice
    matches = [np.flatnonzero((every == feats[k]).all((1, 2)) & train
                              & (regions.counts == counts[k])) for k in range(40)]
    assert all(len(m) >= 1 for m in matches)
    assert len({m[0] for m in matches}) == 40
    ixtoword = task.ixtoword
    for k, m in enumerate(matches):
        sentence = [ixtoword[ix] for ix in words[k, :lengths[k]]]
        own = [[w for w in s["tokens"] if w in task.wordtoix]
               for s in dataset.images[m[0]]["sentences"]]
        assert sentence in own


def test_validation_reports_retrieval_as_a_lower_is_better_score(shapes_root):
    from neuraltalk.dataset import load_dataset
    dataset = load_dataset("shapes", data_root=shapes_root)
    task = alignment.make_task(_task_params(), dataset, np.random.default_rng(0))
    result = task.validate(task.model)
    assert result["score"] == result["perplexity"] < 0
    assert "image search R@1" in result["summary"]
