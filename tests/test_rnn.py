"""The multimodal RNN generator: gradient checks of every option, NeuralTalk's maths written
plainly one sentence at a time (dropout included), prediction steps against the training
forward."""
import numpy as np
import pytest

from neuraltalk.layers.packed import layout
from neuraltalk.models import module_of
from neuraltalk.models import captioning
from neuraltalk.data.batches import Batch
from neuraltalk.train.gradcheck import check_gradients

from stepwise import sentence_loss, teacher_forced_log_likelihood

D, E, H, V = 7, 4, 5, 11
LENGTHS = (3, 1, 5, 0, 2, 5)  # different lengths, a tie, an empty sentence, unsorted
OPTIONS = [(relu, once) for relu in (0, 1) for once in (0, 1)]
IDS = ["relu_encoders%d-feed_once%d" % o for o in OPTIONS]


def _params(option, **extra):
    relu, once = option
    return dict({"generator": "rnn", "image_encoding_size": H, "word_encoding_size": E,
                 "hidden_size": H, "rnn_relu_encoders": relu, "rnn_feed_once": once,
                 "regc": 1e-3, "drop_prob_encoder": 0.3, "drop_prob_decoder": 0.4}, **extra)


def _batch(rng, lengths=LENGTHS):
    words = np.zeros((len(lengths), max(lengths)), dtype=np.int32)
    for b, n in enumerate(lengths):
        words[b, :n] = rng.integers(1, V, size=n)
    return Batch(rng.normal(size=(len(lengths), D)), words, np.array(lengths, np.int32),
                 np.arange(len(lengths)), np.arange(len(lengths)))


def _model(params, rng):
    model = captioning.init_model(params, D, V, np.zeros(V), rng, dtype=np.float64)
    for k in model:  # larger weights than the default init: a sterner check
        model[k] = rng.normal(scale=0.5, size=model[k].shape)
    return model


def _sentence_masks(batch, masks):
    """The packed dropout masks cut into NeuralTalk's per-sentence masks: Us (n+1, E) over
    [START, words], Ui (H,) over x_img, U2 (n+1, H) over the states."""
    lay = layout(batch.words, batch.lengths)
    (enc_words, enc_image), dec = masks
    out = {}
    for j, b in enumerate(lay.order):
        rows = np.flatnonzero(lay.sentence == j)  # in step order
        out[b] = (enc_words[rows], enc_image[j], dec[rows])
    return out


def _reference(model, batch, params, sentence_masks=None):
    """NeuralTalk's RNNGenerator.forward and RNNGenCost, one sentence at a time. Also
    returns the smallest |input| of any ReLU (how far the batch is from a kink)."""
    loss, logppl, ntokens, margin = 0.0, 0.0, 0, np.inf
    for b in range(len(batch.words)):
        ws = list(batch.words[b, :batch.lengths[b]])
        Xs = model["Ws"][[0] + ws]
        Xi = batch.feats[b] @ model["We"] + model["be"][0]
        Us, Ui, U2 = sentence_masks[b] if sentence_masks else (1, 1, 1)
        Xs, Xi = Xs * Us, Xi * Ui
        Xsh = Xs @ model["Wxh"] + model["bxh"]
        if params["rnn_relu_encoders"]:
            kept = np.broadcast_to(Ui, Xi.shape) != 0  # dropped entries stay at 0 whatever moves
            margin = min(margin, np.abs(Xsh).min(), np.abs(Xi[kept]).min(initial=np.inf))
            Xsh, Xi = np.maximum(Xsh, 0), np.maximum(Xi, 0)
        h = np.zeros(H)
        Hs = []
        for t in range(len(Xs)):
            a = Xsh[t] + h @ model["Whh"] + model["bhh"][0]
            if not params["rnn_feed_once"] or t == 0:
                a = a + Xi
            margin = min(margin, np.abs(a).min())
            h = np.maximum(a, 0)
            Hs.append(h)
        Y = (np.array(Hs) * U2) @ model["Wd"] + model["bd"]
        nats, bits = sentence_loss(Y, ws)
        loss += nats
        logppl += bits
        ntokens += len(ws) + 1
    B = len(batch.words)
    reg = sum(0.5 * params["regc"] * np.sum(model[k] ** 2)
              for k in ("We", "Ws", "Wxh", "Whh", "Wd"))
    return loss / B, reg / B, 2 ** (logppl / ntokens), ntokens, margin


@pytest.mark.parametrize("option", OPTIONS, ids=IDS)
def test_gradients_of_every_parameter_and_input_match_finite_differences(option):
    params = _params(option)
    # away from the kinks of ReLU: a batch whose ReLU inputs are all at least 0.02 from 0,
    # further than the finite differences move them
    for seed in range(100):
        rng = np.random.default_rng(seed)
        model = _model(params, rng)
        batch = _batch(rng)
        masks = module_of(params).dropout_masks(params, model,
                                         layout(batch.words, batch.lengths), rng)
        margin = _reference(model, batch, params, _sentence_masks(batch, masks))[-1]
        if margin > 0.02:
            break
    assert margin > 0.02
    assert (masks[0][0] == 0).any() and (masks[0][1] == 0).any() and (masks[1] == 0).any()
    feats = batch.feats  # perturbed in place by the check

    def cost():
        return captioning.batch_cost(model, batch, params, masks=masks)[0]["total_cost"]

    _, grads, dfeats = captioning.batch_cost(model, batch, params, masks=masks,
                                             return_dfeats=True)
    arrays = dict(model, feats=feats)
    grads = dict(grads, feats=dfeats)
    assert set(grads) == set(arrays) == {"We", "be", "Ws", "Wxh", "bxh", "Whh", "bhh", "Wd",
                                         "bd", "feats"}
    # entries below 1e-7 (units that are off on most steps) are pure round-off: the cost
    # is ~10, so its differences carry ~1e-13 of noise, 1e-6 of such an entry
    worst = check_gradients(cost, arrays, grads, min_magnitude=1e-7)
    assert max(worst.values()) < 1e-6, sorted(worst.items(), key=lambda kv: -kv[1])


@pytest.mark.parametrize("option", OPTIONS, ids=IDS)
def test_batch_cost_with_dropout_equals_neuraltalk_one_sentence_at_a_time(option):
    rng = np.random.default_rng(20)
    params = _params(option)
    model = _model(params, rng)
    batch = _batch(rng)
    masks = module_of(params).dropout_masks(params, model, layout(batch.words, batch.lengths),
                                            rng)
    cost, _ = captioning.batch_cost(model, batch, params, masks=masks)
    loss, reg, ppl2, ntokens, _ = _reference(model, batch, params, _sentence_masks(batch, masks))
    assert cost["loss_cost"] == pytest.approx(loss, rel=1e-12)
    assert cost["reg_cost"] == pytest.approx(reg, rel=1e-12)
    assert cost["ppl2"] == pytest.approx(ppl2, rel=1e-12)
    assert cost["ntokens"] == ntokens == sum(LENGTHS) + len(LENGTHS)


@pytest.mark.parametrize("option", OPTIONS, ids=IDS)
def test_prediction_steps_score_sentences_as_the_training_forward_does(option):
    rng = np.random.default_rng(30)
    params = _params(option)
    model = _model(params, rng)
    batch = _batch(rng)
    state = captioning.start(model, batch.feats, params)
    total = teacher_forced_log_likelihood(model, params, state, batch.words, batch.lengths)
    cost, _ = captioning.batch_cost(model, batch, dict(params, regc=0))
    assert -total / len(LENGTHS) == pytest.approx(cost["loss_cost"], rel=1e-12)


def test_init_is_neuraltalks():
    params = _params((0, 0))
    model = captioning.init_model(params, 3000, 400, np.linspace(-3, 0, 400),
                                  np.random.default_rng(0))
    assert model["We"].shape == (3000, H) and model["Wxh"].shape == (E, H)
    assert model["Wd"].shape == (H, 400) and model["Ws"].shape == (400, E)
    assert model["Whh"].shape == (H, H)
    for k in ("We", "Ws", "Wxh", "Whh"):
        assert model[k].dtype == np.float32 and np.abs(model[k]).max() <= 0.1
    assert model["We"].std() == pytest.approx(0.2 / np.sqrt(12), rel=0.02)  # uniform [-0.1, 0.1]
    assert np.abs(model["Wd"]).max() <= 0.01  # NeuralTalk scales the RNN's decoder by 0.1
    assert model["Wd"].std() == pytest.approx(0.02 / np.sqrt(12), rel=0.05)
    for k in ("be", "bxh", "bhh"):
        assert not model[k].any()
    np.testing.assert_allclose(model["bd"][0], np.linspace(-3, 0, 400), rtol=1e-6)
