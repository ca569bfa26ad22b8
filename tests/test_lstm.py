"""The LSTM generator: gradient checks, NeuralTalk's maths written plainly one sentence at a
time (dropout included), prediction steps against the training forward."""
import numpy as np
import pytest

from neuraltalk.layers.packed import layout
from neuraltalk.models import module_of
from neuraltalk.models import captioning
from neuraltalk.data.batches import Batch
from neuraltalk.train.gradcheck import check_gradients

from stepwise import sentence_loss, teacher_forced_log_likelihood

D, E, H, V = 7, 4, 5, 11  # E != H: NeuralTalk needs E == H, this code does not
LENGTHS = (3, 1, 5, 0, 2, 5)  # different lengths, a tie, an empty sentence, unsorted


def _params(tanhC, **extra):
    return dict({"generator": "lstm", "image_encoding_size": E, "word_encoding_size": E,
                 "hidden_size": H, "tanhC_version": tanhC, "regc": 1e-3,
                 "drop_prob_encoder": 0.3, "drop_prob_decoder": 0.4}, **extra)


def _batch(rng, lengths=LENGTHS):
    words = np.zeros((len(lengths), max(lengths) + 1), dtype=np.int32)  # one column of slack
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
    """The packed dropout masks cut into NeuralTalk's per-sentence masks: U (n+2, E) over
    [x_img, START, words] and U2 (n+1, H) over the scored states."""
    lay = layout(batch.words, batch.lengths)
    enc, dec = masks
    B = len(batch.lengths)
    out = {}
    for j, b in enumerate(lay.order):
        rows = np.flatnonzero(lay.sentence == j)  # in step order
        out[b] = (np.vstack([enc[j], enc[B + rows]]), dec[rows])
    return out


def _reference(model, batch, params, sentence_masks=None):
    """NeuralTalk's LSTMGenerator.forward and RNNGenCost, one sentence at a time."""
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    loss, logppl, ntokens = 0.0, 0.0, 0
    for b in range(len(batch.words)):
        ws = list(batch.words[b, :batch.lengths[b]])
        X = np.vstack([batch.feats[b] @ model["We"] + model["be"][0], model["Ws"][[0] + ws]])
        U, U2 = sentence_masks[b] if sentence_masks else (1, 1)
        X = X * U
        h, c = np.zeros(H), np.zeros(H)
        Hout = []
        for t, x in enumerate(X):
            a = np.concatenate([[1], x, h]) @ model["WLSTM"]
            i, f, o, g = sig(a[:H]), sig(a[H:2 * H]), sig(a[2 * H:3 * H]), np.tanh(a[3 * H:])
            c = i * g + (f * c if t > 0 else 0)
            h = o * (np.tanh(c) if params["tanhC_version"] else c)
            Hout.append(h)
        Y = (np.array(Hout[1:]) * U2) @ model["Wd"] + model["bd"]  # the image step unscored
        nats, bits = sentence_loss(Y, ws)
        loss += nats
        logppl += bits
        ntokens += len(ws) + 1
    B = len(batch.words)
    reg = sum(0.5 * params["regc"] * np.sum(model[k] ** 2) for k in ("We", "Ws", "WLSTM", "Wd"))
    return loss / B, reg / B, 2 ** (logppl / ntokens), ntokens


@pytest.mark.parametrize("tanhC", [0, 1])
def test_gradients_of_every_parameter_and_input_match_finite_differences(tanhC):
    rng = np.random.default_rng(10 + tanhC)
    params = _params(tanhC)
    model = _model(params, rng)
    batch = _batch(rng)
    lay = layout(batch.words, batch.lengths)
    masks = module_of(params).dropout_masks(params, model, lay, rng)  # fixed, nonzero dropout
    assert (masks[0] == 0).any() and (masks[1] == 0).any()
    feats = batch.feats  # perturbed in place by the check

    def cost():
        return captioning.batch_cost(model, batch, params, masks=masks)[0]["total_cost"]

    _, grads, dfeats = captioning.batch_cost(model, batch, params, masks=masks,
                                             return_dfeats=True)
    arrays = dict(model, feats=feats)
    grads = dict(grads, feats=dfeats)
    assert set(grads) == set(arrays) == {"We", "be", "Ws", "WLSTM", "Wd", "bd", "feats"}
    worst = check_gradients(cost, arrays, grads)
    assert max(worst.values()) < 1e-6, sorted(worst.items(), key=lambda kv: -kv[1])


@pytest.mark.parametrize("tanhC", [0, 1])
def test_batch_cost_with_dropout_equals_neuraltalk_one_sentence_at_a_time(tanhC):
    rng = np.random.default_rng(20 + tanhC)
    params = _params(tanhC)
    model = _model(params, rng)
    batch = _batch(rng)
    masks = module_of(params).dropout_masks(params, model, layout(batch.words, batch.lengths),
                                            rng)
    cost, _ = captioning.batch_cost(model, batch, params, masks=masks)
    loss, reg, ppl2, ntokens = _reference(model, batch, params, _sentence_masks(batch, masks))
    assert cost["loss_cost"] == pytest.approx(loss, rel=1e-12)
    assert cost["reg_cost"] == pytest.approx(reg, rel=1e-12)
    assert cost["ppl2"] == pytest.approx(ppl2, rel=1e-12)
    assert cost["ntokens"] == ntokens == sum(LENGTHS) + len(LENGTHS)


def test_batch_cost_without_dropout_in_float32_is_close_to_float64():
    rng = np.random.default_rng(3)
    params = _params(0, drop_prob_encoder=0, drop_prob_decoder=0)
    model = _model(params, rng)
    batch = _batch(rng)
    model32 = {k: v.astype(np.float32) for k, v in model.items()}
    cost32, grads32 = captioning.batch_cost(model32, batch, params, rng=np.random.default_rng(0))
    evaluation, no_grads = captioning.batch_cost(model, batch, params, compute_grads=False)
    assert no_grads is None
    assert evaluation["loss_cost"] == pytest.approx(_reference(model, batch, params)[0], rel=1e-12)
    cost64, grads64 = captioning.batch_cost(model, batch, params)
    assert cost32["total_cost"] == pytest.approx(_reference(model, batch, params)[0]
                                                 + cost64["reg_cost"], rel=1e-5)
    for k in grads64:
        assert grads32[k].dtype == np.float32
        np.testing.assert_allclose(grads32[k], grads64[k], atol=1e-5 * np.abs(grads64[k]).max())


@pytest.mark.parametrize("tanhC", [0, 1])
def test_prediction_steps_score_sentences_as_the_training_forward_does(tanhC):
    rng = np.random.default_rng(30 + tanhC)
    params = _params(tanhC)
    model = _model(params, rng)
    batch = _batch(rng)
    state = captioning.start(model, batch.feats, params)
    total = teacher_forced_log_likelihood(model, params, state, batch.words, batch.lengths)
    cost, _ = captioning.batch_cost(model, batch, dict(params, regc=0))
    assert -total / len(LENGTHS) == pytest.approx(cost["loss_cost"], rel=1e-12)
