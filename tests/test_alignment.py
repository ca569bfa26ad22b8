"""The alignment model: gradient checks of every parameter, both score forms, and the
cost against a plain loop over image-sentence pairs."""
import numpy as np
import pytest

from neuraltalk.data.batches import Batch
from neuraltalk.train.gradcheck import check_gradients
from neuraltalk.models import brnn

D, V = 7, 10


def _setup(kind, seed, finetune=True):
    rng = np.random.default_rng(seed)
    params = {"embedding_size": 6, "word_vector_size": 5, "score": kind, "margin": 1.0,
              "regc": 1e-3}
    model = brnn.init(params, D, V, rng, dtype=np.float64)
    for k in model:
        model[k] = rng.normal(scale=0.7, size=model[k].shape)
    K, R, T = 4, 3, 5
    counts = np.array([3, 1, 2, 3])  # images with different numbers of regions
    lengths = np.array([5, 2, 3, 1])  # sentences of different lengths
    words = rng.integers(1, V, size=(K, T)) * (np.arange(T) < lengths[:, None])
    feats = rng.normal(size=(K, R, D))
    return params, model, Batch(None, words, lengths, None, None, feats, counts)


def _plain_brnn(model, words):
    """Equations 2-6 written plainly for one sentence: s (n, h) and every ReLU input."""
    n = len(words)
    x = model["Ww"][words]  # eq. 2
    pe = x @ model["We"] + model["be"][0]
    e = np.maximum(pe, 0)  # eq. 3
    pre = [pe.ravel()]
    hf, hb = [], [None] * n
    prev = np.zeros(e.shape[1])
    for t in range(n):  # eq. 4
        p = e[t] + prev @ model["Wf"] + model["bf"][0]
        pre.append(p)
        prev = np.maximum(p, 0)
        hf.append(prev)
    nxt = np.zeros(e.shape[1])
    for t in reversed(range(n)):  # eq. 5
        p = e[t] + nxt @ model["Wb"] + model["bb"][0]
        pre.append(p)
        nxt = np.maximum(p, 0)
        hb[t] = nxt
    s = np.zeros((n, e.shape[1]))
    for t in range(n):  # eq. 6
        p = (hf[t] + hb[t]) @ model["Wd"] + model["bd"][0]
        pre.append(p)
        s[t] = np.maximum(p, 0)
    return s, np.concatenate([np.ravel(p) for p in pre] + [np.zeros(0)])


def _plain_products(model, batch):
    """For every image k and sentence l, the (regions, words) products v_i . s_t."""
    K = len(batch.words)
    s = [_plain_brnn(model, batch.words[l, :batch.lengths[l]])[0] for l in range(K)]
    v = [batch.regions[k, :batch.region_counts[k]] @ model["Wm"] + model["bm"][0]
         for k in range(K)]  # eq. 1
    return [[v[k] @ s[l].T for l in range(K)] for k in range(K)]


def _kink_distance(params, model, batch):
    """How far the batch is from any kink: ReLUs, the max over regions (gap between the
    two best), DeFrag's max(0, .), and the hinges."""
    cost, _ = brnn.loss(model, batch, params, return_scores=True)
    K = len(batch.words)
    distances = [np.abs(_plain_brnn(model, batch.words[l, :batch.lengths[l]])[1]).min(initial=np.inf)
                 for l in range(K)]
    for row in _plain_products(model, batch):
        for dots in row:
            if not dots.size:
                continue
            if params["score"] == "max" and len(dots) > 1:
                top2 = -np.sort(-dots, axis=0)[:2]
                distances.append((top2[0] - top2[1]).min())
            elif params["score"] == "defrag":
                distances.append(np.abs(dots).min())
    S = cost["S"]
    hinge = S - np.diag(S)[:, None] + 1
    hinge2 = S - np.diag(S)[None, :] + 1
    off = ~np.eye(len(S), dtype=bool)
    distances += [np.abs(hinge[off]).min(), np.abs(hinge2[off]).min()]
    return min(distances)


def _dregions(model, batch, params):
    """The gradient of the cost with respect to the region features, from dv = dC/dv."""
    from neuraltalk.models.brnn import (image_sentence_scores, image_sentence_scores_backward,
                                        ranking_cost, sentence_vectors)
    v = batch.regions @ model["Wm"] + model["bm"]
    sentences, _ = sentence_vectors(model, batch.words, batch.lengths)
    S, cache = image_sentence_scores(v, batch.region_counts, sentences, params["score"], True)
    _, dS = ranking_cost(S, params["margin"])
    dv, _ = image_sentence_scores_backward(dS / len(S), cache)
    return dv @ model["Wm"].T


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
    cost, grads = brnn.loss(model, batch, params)
    assert cost["loss_cost"] > 0 and set(grads) == set(model)
    worst = check_gradients(lambda: brnn.loss(model, batch, params)[0]["total_cost"],
                            dict(model, regions=batch.regions), dict(grads, regions=_dregions(
                                model, batch, params)), min_magnitude=1e-9)
    assert max(worst.values()) < 1e-6, sorted(worst.items(), key=lambda kv: -kv[1])


@pytest.mark.parametrize("kind", ["max", "defrag"])
def test_scores_and_cost_equal_a_plain_loop_over_pairs(kind):
    params, model, batch = _setup(kind, 0)
    cost, _ = brnn.loss(model, batch, params, return_scores=True)
    K = len(batch.words)
    products = _plain_products(model, batch)
    S = np.array([[dots.max(0).sum() if kind == "max" else np.maximum(dots, 0).sum()
                   for dots in products[k]] for k in range(K)])  # eq. 8, or DeFrag's eq. 7
    np.testing.assert_allclose(cost["S"], S, rtol=1e-12)
    loss = sum(max(0, S[k, l] - S[k, k] + 1) + max(0, S[l, k] - S[k, k] + 1)
               for k in range(K) for l in range(K) if l != k) / K
    assert cost["loss_cost"] == pytest.approx(loss, rel=1e-12)


def test_sentence_vectors_are_equations_2_to_6_one_sentence_at_a_time():
    params, model, batch = _setup("max", 1)
    sentences, _ = brnn.sentence_vectors(model, batch.words, batch.lengths)
    for k, n in enumerate(batch.lengths):
        rows = slice(sentences.starts[k], sentences.starts[k] + n)
        assert (sentences.sentence[rows] == k).all()
        np.testing.assert_allclose(sentences.s[rows], _plain_brnn(model, batch.words[k, :n])[0],
                                   rtol=1e-12)


def _task_params(**overrides):
    import argparse
    parser = argparse.ArgumentParser()
    brnn.add_arguments(parser)
    params = vars(parser.parse_args([]))
    params.update({"word_count_threshold": 5, "eval_max_images": 30, "regc": 1e-8,
                   "embedding_size": 16, "word_vector_size": 8}, **overrides)
    return params


def test_word_vectors_are_frozen_unless_finetuned(shapes_root):
    from neuraltalk.data.dataset import load_dataset
    dataset = load_dataset("shapes", data_root=shapes_root)
    frozen = brnn.make_task(_task_params(), dataset, np.random.default_rng(0))
    assert "Ww" not in frozen.update_keys
    assert set(frozen.update_keys) == set(frozen.model) - {"Ww"}
    tuned = brnn.make_task(_task_params(finetune_word_vectors=1), dataset,
                                np.random.default_rng(0))
    assert set(tuned.update_keys) == set(tuned.model)


def test_task_batches_pair_distinct_images_with_their_own_sentences(shapes_root):
    from neuraltalk.data.dataset import load_dataset
    from neuraltalk.data.regions import load_regions
    dataset = load_dataset("shapes", data_root=shapes_root)
    task = brnn.make_task(_task_params(), dataset, np.random.default_rng(0))
    batch = task.sample_batch(40, np.random.default_rng(1))
    feats, counts, words, lengths = batch.regions, batch.region_counts, batch.words, batch.lengths
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


def test_validation_reports_the_recall_sum_under_its_own_name(shapes_root):
    from neuraltalk.data.dataset import load_dataset
    dataset = load_dataset("shapes", data_root=shapes_root)
    task = brnn.make_task(_task_params(), dataset, np.random.default_rng(0))
    result = task.validate(task.model)
    assert result["name"] == "recall_sum" and result["lower_is_better"] is False
    assert 0 <= result["value"] <= 6  # six recalls, each in [0, 1]
    assert "image search R@1" in result["summary"]
