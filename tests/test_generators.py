"""What both generators share: the order of a batch, dropout masks, NeuralTalk's
own checkpoint, the task the training loop runs, overfitting."""
import json
import os

import numpy as np
import pytest
import scipy.io

from neuraltalk import models
from neuraltalk.train import solvers
from neuraltalk.layers.packed import layout
from neuraltalk.models import captioning, module_of
from neuraltalk.data.batches import Batch
from neuraltalk.train.checkpoint import load_checkpoint
from neuraltalk.data.dataset import Dataset
from neuraltalk.errors import NeuralTalkError

D, V = 7, 11


def _params(generator, size=5, **extra):
    return dict({"generator": generator, "image_encoding_size": size, "word_encoding_size": size,
                 "hidden_size": size, "tanhC_version": 0, "rnn_relu_encoders": 0,
                 "rnn_feed_once": 0, "regc": 1e-3, "drop_prob_encoder": 0.5,
                 "drop_prob_decoder": 0.5}, **extra)


def _batch(rng, lengths):
    words = np.zeros((len(lengths), max(lengths)), dtype=np.int32)
    for b, n in enumerate(lengths):
        words[b, :n] = rng.integers(1, V, size=n)
    return Batch(rng.normal(size=(len(lengths), D)).astype(np.float32), words,
                 np.array(lengths, np.int32), np.arange(len(lengths)), np.arange(len(lengths)))


@pytest.mark.parametrize("generator", ["lstm", "rnn"])
def test_cost_and_gradients_do_not_depend_on_the_order_of_the_batch(generator):
    rng = np.random.default_rng(1)
    params = _params(generator)
    model = captioning.init_model(params, D, V, np.zeros(V), rng, dtype=np.float64)
    batch = _batch(rng, (2, 5, 0, 3, 5, 1))
    perm = rng.permutation(6)
    shuffled = Batch(*(np.asarray(x)[perm] for x in batch[:5]))
    cost, grads, dfeats = captioning.batch_cost(model, batch, params, return_dfeats=True)
    cost2, grads2, dfeats2 = captioning.batch_cost(model, shuffled, params, return_dfeats=True)
    assert cost2["total_cost"] == pytest.approx(cost["total_cost"], rel=1e-13)
    for k in grads:
        np.testing.assert_allclose(grads2[k], grads[k], rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(dfeats2, dfeats[perm], rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("generator", ["lstm", "rnn"])
def test_dropout_masks_are_inverted_and_scaled(generator):
    rng = np.random.default_rng(3)
    params = _params(generator, drop_prob_encoder=0.5, drop_prob_decoder=0.25)
    model = captioning.init_model(params, D, V, np.zeros(V), rng)
    lay = layout(np.ones((300, 6), np.int32), np.full(300, 6))
    N = 300 * 7
    enc, dec = module_of(params).dropout_masks(params, model, lay, rng)
    encs = [enc] if generator == "lstm" else list(enc)
    shapes = [(300 + N, 5)] if generator == "lstm" else [(N, 5), (300, 5)]
    assert [e.shape for e in encs] == shapes and dec.shape == (N, 5)
    for e in encs:
        assert e.dtype == np.float32 and set(np.unique(e)) == {0.0, 2.0}
        assert abs(e.mean() - 1) < 0.05
    assert set(np.unique(dec)) == {0.0, np.float32(1 / 0.75)} and abs(dec.mean() - 1) < 0.02
    assert module_of(params).dropout_masks(params, model, lay, None) == (None, None)
    no_dropout = dict(params, drop_prob_encoder=0, drop_prob_decoder=0)
    assert module_of(no_dropout).dropout_masks(no_dropout, model, lay, rng) == (None, None)


@pytest.mark.parametrize("generator", ["lstm", "rnn"])
def test_training_uses_dropout_and_evaluation_does_not(generator):
    rng = np.random.default_rng(4)
    params = _params(generator)
    model = captioning.init_model(params, D, V, np.zeros(V), rng)
    batch = _batch(rng, (4, 2, 7))
    evaluation = captioning.batch_cost(model, batch, params)[0]["total_cost"]
    assert captioning.batch_cost(model, batch, params)[0]["total_cost"] == evaluation
    assert captioning.batch_cost(model, batch, params, rng)[0]["total_cost"] != evaluation


@pytest.mark.parametrize("generator", ["lstm", "rnn"])
def test_overfits_a_handful_of_sentences_to_perplexity_near_one(generator):
    rng = np.random.default_rng(4)
    params = _params(generator, size=32, regc=0, drop_prob_encoder=0, drop_prob_decoder=0,
                     solver="rmsprop", learning_rate=1e-2, decay_rate=0.99, smooth_eps=1e-8,
                     grad_clip=5)
    model = captioning.init_model(params, D, V, np.zeros(V), rng)
    batch = _batch(rng, (5, 3, 7, 4))
    cache = {}
    assert captioning.batch_cost(model, batch, params)[0]["ppl2"] > 5
    for _ in range(300):
        cost, grads = captioning.batch_cost(model, batch, params)
        solvers.update(model, grads, cache, params)
    assert captioning.batch_cost(model, batch, params)[0]["ppl2"] < 1.1


def test_image_encoding_size_must_fit_the_generator():
    with pytest.raises(NeuralTalkError, match="--image_encoding_size"):
        captioning.init_model(_params("lstm", image_encoding_size=6), D, V, np.zeros(V),
                              np.random.default_rng(0))
    with pytest.raises(NeuralTalkError, match="--image_encoding_size"):
        captioning.init_model(_params("rnn", image_encoding_size=6), D, V, np.zeros(V),
                              np.random.default_rng(0))


def test_unknown_generator_is_a_clear_error():
    with pytest.raises(NeuralTalkError, match="unknown --generator 'gru'"):
        captioning.init_model(_params("gru"), D, V, np.zeros(V), np.random.default_rng(0))


def test_greedy_steps_reproduce_neuraltalk_on_its_own_checkpoint(neuraltalk_checkpoint_dir,
                                                                  example_images):
    c = load_checkpoint(os.path.join(neuraltalk_checkpoint_dir, "neuraltalk_lstm.p"))
    feats = scipy.io.loadmat(os.path.join(example_images, "vgg_feats.mat"))["feats"].T
    with open(os.path.join(neuraltalk_checkpoint_dir, "expected_beam1.json")) as f:
        expected = json.load(f)["imgblobs"]
    model, params = c["model"], c["params"]
    assert len(feats) == len(expected) == 16
    state = captioning.start(model, feats, params)
    prev = np.zeros(len(feats), np.int64)  # START
    words = [[] for _ in feats]
    logprob = np.zeros(len(feats))
    done = np.zeros(len(feats), bool)
    for _ in range(20):  # NeuralTalk stops at END or after 20 words
        logprobs, state = captioning.step(model, state, prev, params)
        prev = logprobs.argmax(1)
        for b in np.flatnonzero(~done):
            words[b].append(prev[b])
            logprob[b] += logprobs[b, prev[b]]  # END included
        done |= prev == 0
    for b, blob in enumerate(expected):
        assert " ".join(c["ixtoword"][i] for i in words[b] if i > 0) == blob["candidate"]["text"]
        assert logprob[b] == pytest.approx(blob["candidate"]["logprob"], abs=1e-8)


def _dataset(rng):
    """6 train images of 2 sentences ('rare' once), 3 val images; 'one' only in val."""
    images = []
    for imgid in range(9):
        if imgid < 6:
            split = "train"
            sents = [["a", "red", "square"], ["a", "blue", "circle"] + ["rare"] * (imgid == 1)]
        else:
            split = "val"
            sents = [["a", "red", "circle"], ["one", "blue", "square"]]
        images.append({"imgid": imgid, "split": split, "filename": "%d.jpg" % imgid,
                       "sentences": [{"tokens": t, "imgid": imgid} for t in sents]})
    return Dataset("tiny", "/nowhere/tiny", images, rng.random((9, D), dtype=np.float32), None,
                   False)


def test_make_task_builds_vocabulary_model_and_batches_from_the_train_split():
    rng = np.random.default_rng(5)
    params = _params("lstm", word_count_threshold=2, eval_batch_size=2, eval_max_images=-1)
    task = models.make_task(params, _dataset(rng), rng)
    assert task.wordtoix == {"#START#": 0, "a": 1, "red": 2, "square": 3, "blue": 4, "circle": 5}
    assert task.ixtoword[0] == "." and len(task.ixtoword) == 6
    assert task.epoch_size == 12 and task.update_keys == sorted(task.model)
    assert task.model["We"].shape == (D, 5) and task.model["Wd"].shape == (5, 6)
    # bd starts at the log-frequencies: 'a' and END (once per sentence) are the most frequent
    assert task.model["bd"][0, 0] == task.model["bd"][0, 1] == 0
    assert task.model["bd"][0, 2] == pytest.approx(np.log(6 / 12))
    batch = task.sample_batch(4, rng)
    assert batch.feats.shape == (4, D) and batch.words.shape[0] == 4
    cost, grads = task.cost(task.model, batch, rng)
    assert set(grads) == set(task.model) and cost["total_cost"] > 0


def test_validation_is_the_perplexity_of_every_val_sentence_without_dropout():
    rng = np.random.default_rng(6)
    params = _params("rnn", word_count_threshold=1, eval_batch_size=2, eval_max_images=-1)
    dataset = _dataset(rng)
    task = models.make_task(params, dataset, rng)
    # the 6 val sentences as one batch: 'one' is not in the vocabulary and is dropped
    val = [s["tokens"] for img in dataset.images if img["split"] == "val" for s in img["sentences"]]
    words = [[task.wordtoix[w] for w in t if w in task.wordtoix] for t in val]
    batch = Batch(dataset.features[np.repeat([6, 7, 8], 2)],
                  np.array([w + [0] * (3 - len(w)) for w in words], np.int32),
                  np.array([len(w) for w in words], np.int32), None, None)
    expected = captioning.batch_cost(task.model, batch, params)[0]
    result = task.validate(task.model)
    assert result["name"] == "perplexity" and result["lower_is_better"]
    assert result["value"] == pytest.approx(expected["ppl2"], rel=1e-6)
    assert "%f" % result["value"] in result["summary"]
    # eval_max_images = 1: the two sentences of the first val image only
    first = Batch(batch.feats[:2], batch.words[:2], batch.lengths[:2], None, None)
    task1 = models.make_task(dict(params, eval_max_images=1), dataset, rng)
    assert task1.validate(task.model)["value"] == pytest.approx(
        captioning.batch_cost(task.model, first, params)[0]["ppl2"], rel=1e-6)


def test_gradient_check_finds_a_wrong_gradient_and_passes_a_right_one():
    from neuraltalk.train.gradcheck import check_gradients
    A = np.random.default_rng(7).normal(size=(3, 3))
    x = np.array([0.3, -1.2, 2.0])

    def cost():
        return float(np.sum(np.sin(A @ x)))

    right = A.T @ np.cos(A @ x)
    wrong = right.copy()
    wrong[1] *= 1.001
    assert check_gradients(cost, {"x": x}, {"x": right})["x"] < 1e-9
    assert check_gradients(cost, {"x": x}, {"x": wrong})["x"] > 1e-4
    np.testing.assert_array_equal(x, [0.3, -1.2, 2.0])  # perturbed and restored
