"""Caption generators: gradient checks, an independent per-sentence reference, NeuralTalk's
checkpoint, overfitting."""
import json
import os

import numpy as np
import pytest
import scipy.io

from neuraltalk import generators, solvers
from neuraltalk.batches import Batch
from neuraltalk.checkpoint import load_checkpoint
from neuraltalk.gradcheck import check_gradients

D, E, H, V = 7, 5, 5, 11
OPTIONS = [
    {"generator": "lstm", "tanhC_version": 0},
    {"generator": "lstm", "tanhC_version": 1},
    {"generator": "rnn", "rnn_relu_encoders": 0, "rnn_feed_once": 0},
    {"generator": "rnn", "rnn_relu_encoders": 1, "rnn_feed_once": 0},
    {"generator": "rnn", "rnn_relu_encoders": 0, "rnn_feed_once": 1},
    {"generator": "rnn", "rnn_relu_encoders": 1, "rnn_feed_once": 1},
]


def _params(option, **extra):
    params = {"image_encoding_size": E, "word_encoding_size": E, "hidden_size": H,
              "regc": 1e-3, "drop_prob_encoder": 0.3, "drop_prob_decoder": 0.4}
    params.update(option)
    params.update(extra)
    return params


def _batch(rng, lengths=(3, 1, 5, 0)):
    T = max(lengths)
    words = np.zeros((len(lengths), T), dtype=np.int32)
    for b, n in enumerate(lengths):
        words[b, :n] = rng.integers(1, V, size=n)
    return Batch(rng.normal(size=(len(lengths), D)), words, np.array(lengths, np.int32),
                 np.arange(len(lengths)), np.arange(len(lengths)))


def _model(params, rng):
    model = generators.init_model(params, D, V, rng.normal(size=V), rng, dtype=np.float64)
    for k in model:  # larger weights than the default init: a sterner check
        model[k] = rng.normal(scale=0.5, size=model[k].shape)
    return model


def _relu_margin(model, batch, params, masks):
    """Smallest |input| of any ReLU of the RNN on this batch (inf for the LSTM)."""
    if params["generator"] != "rnn":
        return np.inf
    index = np.concatenate([np.zeros((len(batch.words), 1), int), batch.words], axis=1)
    Xs = model["Ws"][index] * masks[0][0].transpose(1, 0, 2)  # masks are time-major
    Xi = (batch.feats @ model["We"] + model["be"]) * masks[0][1]
    Xsh = Xs @ model["Wxh"] + model["bxh"]
    inputs = [Xsh, Xi] if params["rnn_relu_encoders"] else []
    if params["rnn_relu_encoders"]:
        Xsh, Xi = np.maximum(Xsh, 0), np.maximum(Xi, 0)
    h = np.zeros_like(Xi)
    for t in range(Xs.shape[1]):
        a = Xsh[:, t] + model["bhh"] + (Xi if t == 0 or not params["rnn_feed_once"] else 0) \
            + h @ model["Whh"]
        inputs.append(a[t <= batch.lengths])  # scored steps only
        h = np.maximum(a, 0)
    return min(np.abs(x).min() for x in inputs if x.size)


@pytest.mark.parametrize("option", OPTIONS, ids=lambda o: "-".join("%s%s" % kv for kv in o.items()))
def test_gradients_of_every_parameter_and_input_match_finite_differences(option):
    # away from the kinks of ReLU: a batch whose ReLU inputs are all at least 0.02 from 0,
    # further than the finite differences' steps move them
    for seed in range(100):
        rng = np.random.default_rng(seed)
        params = _params(option)
        model = _model(params, rng)
        batch = _batch(rng)
        masks = generators.dropout_masks(params, model, batch.words, rng)  # fixed dropout
        if _relu_margin(model, batch, params, masks) > 0.02:
            break
    assert masks[0] is not None and masks[1] is not None
    feats = batch.feats.copy()

    def cost():
        b = batch._replace(feats=feats)
        return generators.batch_cost(model, b, params, masks=masks)[0]["total_cost"]

    _, grads, dfeats = generators.batch_cost(model, batch, params, masks=masks,
                                             return_dfeats=True)
    arrays = dict(model, feats=feats)
    grads = dict(grads, feats=dfeats)
    assert set(grads) == set(arrays)
    worst = check_gradients(cost, arrays, grads, min_magnitude=1e-9)
    assert max(worst.values()) < 1e-6, sorted(worst.items(), key=lambda kv: -kv[1])


def _reference_cost(model, batch, params):
    """NeuralTalk's cost written plainly, one sentence at a time, no dropout."""
    loss = 0.0
    logppl = 0.0
    ntok = 0
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    for b in range(len(batch.words)):
        ws = list(batch.words[b, :batch.lengths[b]])
        xi = batch.feats[b] @ model["We"] + model["be"][0]
        if params["generator"] == "lstm":
            xs = [xi] + [model["Ws"][0]] + [model["Ws"][w] for w in ws]
            h = np.zeros(H)
            c = np.zeros(H)
            outs = []
            for t, x in enumerate(xs):
                a = np.concatenate([[1], x, h]) @ model["WLSTM"]
                i, f, o, g = sig(a[:H]), sig(a[H:2 * H]), sig(a[2 * H:3 * H]), np.tanh(a[3 * H:])
                c = i * g + (f * c if t > 0 else 0)
                h = o * (np.tanh(c) if params["tanhC_version"] else c)
                if t > 0:
                    outs.append(h)
        else:
            h = np.zeros(H)
            outs = []
            for t, w in enumerate([0] + ws):
                xsh = model["Ws"][w] @ model["Wxh"] + model["bxh"][0]
                img = xi
                if params["rnn_relu_encoders"]:
                    xsh, img = np.maximum(xsh, 0), np.maximum(xi, 0)
                if params["rnn_feed_once"] and t > 0:
                    img = 0
                h = np.maximum(xsh + img + h @ model["Whh"] + model["bhh"][0], 0)
                outs.append(h)
        for h, target in zip(outs, ws + [0]):
            y = h @ model["Wd"] + model["bd"][0]
            p = np.exp(y - y.max())
            p /= p.sum()
            loss -= np.log(1e-20 + p[target])
            logppl -= np.log2(1e-20 + p[target])
            ntok += 1
    B = len(batch.words)
    reg = sum(0.5 * params["regc"] * np.sum(model[k] ** 2)
              for k in generators.module(params).REGULARIZED)
    return loss / B, reg / B, 2 ** (logppl / ntok)


@pytest.mark.parametrize("option", OPTIONS, ids=lambda o: "-".join("%s%s" % kv for kv in o.items()))
def test_batch_cost_equals_a_plain_per_sentence_implementation(option):
    rng = np.random.default_rng(2)
    params = _params(option)
    model = _model(params, rng)
    batch = _batch(rng, lengths=(4, 2, 6, 0, 1))
    cost, _ = generators.batch_cost(model, batch, params, rng=None)
    loss, reg, ppl2 = _reference_cost(model, batch, params)
    assert np.isclose(cost["loss_cost"], loss, rtol=1e-12)
    assert np.isclose(cost["reg_cost"], reg, rtol=1e-12)
    assert np.isclose(cost["ppl2"], ppl2, rtol=1e-12)
    assert cost["ntokens"] == 4 + 2 + 6 + 0 + 1 + 5


def test_dropout_is_inverted_and_scaled():
    rng = np.random.default_rng(3)
    params = _params(OPTIONS[0], drop_prob_encoder=0.5, drop_prob_decoder=0.25)
    model = _model(params, rng)
    enc, dec = generators.dropout_masks(params, model, np.zeros((400, 6), np.int32), rng)
    assert set(np.unique(enc)) == {0.0, 2.0} and set(np.unique(dec)) == {0.0, 1 / 0.75}
    assert abs(enc.mean() - 1) < 0.02 and abs(dec.mean() - 1) < 0.02


@pytest.mark.parametrize("option", [OPTIONS[0], OPTIONS[2]], ids=["lstm", "rnn"])
def test_overfits_a_handful_of_sentences_to_perplexity_near_one(option):
    rng = np.random.default_rng(4)
    params = _params(option, image_encoding_size=32, word_encoding_size=32, hidden_size=32,
                     regc=0, drop_prob_encoder=0, drop_prob_decoder=0, solver="rmsprop",
                     learning_rate=1e-2, decay_rate=0.99, smooth_eps=1e-8, grad_clip=5)
    model = generators.init_model(params, D, V, np.zeros(V), rng)
    batch = _batch(rng, lengths=(5, 3, 7, 4))
    batch = batch._replace(feats=batch.feats.astype(np.float32))
    cache = {}
    for _ in range(300):
        cost, grads = generators.batch_cost(model, batch, params)
        solvers.update(model, grads, cache, params)
    assert generators.batch_cost(model, batch, params)[0]["ppl2"] < 1.1


def test_image_encoding_size_must_fit_the_generator():
    from neuraltalk.errors import NeuralTalkError
    params = _params(OPTIONS[0], image_encoding_size=E + 1)
    with pytest.raises(NeuralTalkError, match="--image_encoding_size"):
        generators.init_model(params, D, V, np.zeros(V), np.random.default_rng(0))


def test_greedy_steps_reproduce_neuraltalk_on_its_own_checkpoint(neuraltalk_checkpoint_dir,
                                                                  example_images):
    c = load_checkpoint(os.path.join(neuraltalk_checkpoint_dir, "neuraltalk_lstm.p"))
    feats = scipy.io.loadmat(os.path.join(example_images, "vgg_feats.mat"))["feats"].T
    expected = json.load(open(os.path.join(neuraltalk_checkpoint_dir, "expected_beam1.json")))
    model, params = c["model"], c["params"]
    state = generators.start(model, feats, params)
    prev = np.zeros(len(feats), np.int64)
    words = [[] for _ in feats]
    logprob = np.zeros(len(feats))
    done = np.zeros(len(feats), bool)
    for _ in range(20):
        logprobs, state = generators.step(model, state, prev, params)
        prev = logprobs.argmax(1)
        for b in np.flatnonzero(~done):
            words[b].append(prev[b])
            logprob[b] += logprobs[b, prev[b]]
        done |= prev == 0
    for b, blob in enumerate(expected["imgblobs"]):
        assert " ".join(c["ixtoword"][i] for i in words[b] if i > 0) == blob["candidate"]["text"]
        assert abs(logprob[b] - blob["candidate"]["logprob"]) < 1e-9
