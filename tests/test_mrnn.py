"""The m-RNN generator: gradient checks, Mao et al.'s equations written plainly one sentence
at a time (dropout included), prediction steps against the training forward, beam search,
and the likelihood matrix of retrieval against the batch cost."""
import itertools

import numpy as np
import pytest

from neuraltalk.captions.decoding import beam_search
from neuraltalk.data.batches import Batch
from neuraltalk.errors import NeuralTalkError
from neuraltalk.layers.packed import layout
from neuraltalk.models import captioning, module_of, mrnn
from neuraltalk.train.gradcheck import gradient_errors

from stepwise import (greedy, sentence_loss, sequence_log_probability,
                      teacher_forced_log_likelihood)

D, E1, E2, M, V = 7, 4, 5, 6, 11  # E2 is also the recurrent layer's size
LENGTHS = (3, 1, 5, 0, 2, 5)  # different lengths, a tie, an empty sentence, unsorted


def _params(**extra):
    return dict({"generator": "mrnn", "image_encoding_size": 3, "word_encoding_size": E2,
                 "hidden_size": E2, "mrnn_embedding_size": E1, "mrnn_multimodal_size": M,
                 "regc": 1e-3, "drop_prob_encoder": 0.3, "drop_prob_decoder": 0.4}, **extra)


def _batch(rng, lengths=LENGTHS):
    words = np.zeros((len(lengths), max(lengths) + 1), dtype=np.int32)
    for b, n in enumerate(lengths):
        words[b, :n] = rng.integers(1, V, size=n)
    return Batch(rng.normal(size=(len(lengths), D)), words, np.array(lengths, np.int32),
                 np.arange(len(lengths)), np.arange(len(lengths)))


def _model(params, rng, scale=0.5):
    model = captioning.init_model(params, D, V, np.zeros(V), rng, dtype=np.float64)
    for k in model:
        model[k] = rng.normal(scale=scale, size=model[k].shape)
    return model


def _sentence_masks(batch, masks):
    """The packed masks cut per sentence: (w(t) (n+1, E2), V_I I (M,), m(t) (n+1, M))."""
    lay = layout(batch.words, batch.lengths)
    (word, image), dec = masks
    return {b: (word[lay.sentence == j], image[j], dec[lay.sentence == j])
            for j, b in enumerate(lay.order)}


def _g2(x):
    return 1.7159 * np.tanh(2 * x / 3)


def _reference(model, batch, params, sentence_masks=None):
    """The m-RNN's cost written from its equations, one sentence and one step at a time."""
    loss, logppl, ntokens = 0.0, 0.0, 0
    for b in range(len(batch.words)):
        ws = list(batch.words[b, :batch.lengths[b]])
        Uw, Ui, Um = sentence_masks[b] if sentence_masks else (np.ones((len(ws) + 1, E2)), 1, 1)
        image = (batch.feats[b] @ model["We"]) * Ui  # V_I I
        r = np.zeros(E2)
        Ms = []
        for t, x in enumerate([0] + ws):
            w = np.maximum(model["Ws"][x] @ model["W2"] + model["b2"][0], 0) * Uw[t]
            r = np.maximum(r @ model["Ur"] + w, 0)
            Ms.append(_g2(w @ model["Vw"] + r @ model["Vr"] + image + model["bm"][0]))
        Y = (np.array(Ms) * Um) @ model["Wd"] + model["bd"]
        nats, bits = sentence_loss(Y, ws)
        loss += nats
        logppl += bits
        ntokens += len(ws) + 1
    B = len(batch.words)
    reg = sum(0.5 * params["regc"] * np.sum(model[k] ** 2) for k in mrnn.REGULARIZED)
    return loss / B, reg / B, 2 ** (logppl / ntokens), ntokens


def test_gradients_of_every_parameter_and_input_match_finite_differences():
    rng = np.random.default_rng(10)
    params = _params()
    model = _model(params, rng)
    batch = _batch(rng)
    masks = mrnn.dropout_masks(params, model, layout(batch.words, batch.lengths), rng)
    assert all((m == 0).any() for m in (masks[0][0], masks[0][1], masks[1]))

    def cost():
        return captioning.batch_cost(model, batch, params, masks=masks)[0]["total_cost"]

    _, grads, dfeats = captioning.batch_cost(model, batch, params, masks=masks,
                                             return_dfeats=True)
    arrays = dict(model, feats=batch.feats)  # perturbed in place by the check
    grads = dict(grads, feats=dfeats)
    assert set(grads) == set(arrays) == {"Ws", "W2", "b2", "Ur", "Vw", "Vr", "We", "bm",
                                         "Wd", "bd", "feats"}
    # two ReLUs: entries whose stencil crosses a kink are skipped (and counted); entries
    # below 1e-7 (units off on most steps) are pure round-off of a cost of ~10
    worst, skipped = gradient_errors(cost, arrays, grads, min_magnitude=1e-7)
    assert max(worst.values()) < 1e-6, sorted(worst.items(), key=lambda kv: -kv[1])
    assert sum(skipped.values()) < 0.02 * sum(a.size for a in arrays.values())


def test_batch_cost_with_dropout_equals_the_equations_one_sentence_at_a_time():
    rng = np.random.default_rng(20)
    params = _params()
    model = _model(params, rng)
    batch = _batch(rng)
    masks = mrnn.dropout_masks(params, model, layout(batch.words, batch.lengths), rng)
    cost, _ = captioning.batch_cost(model, batch, params, masks=masks)
    loss, reg, ppl2, ntokens = _reference(model, batch, params, _sentence_masks(batch, masks))
    assert cost["loss_cost"] == pytest.approx(loss, rel=1e-12)
    assert cost["reg_cost"] == pytest.approx(reg, rel=1e-12)
    assert cost["ppl2"] == pytest.approx(ppl2, rel=1e-12)
    assert cost["ntokens"] == ntokens == sum(LENGTHS) + len(LENGTHS)


def test_cost_and_gradients_do_not_depend_on_the_order_of_the_batch():
    rng = np.random.default_rng(1)
    params = _params()
    model = _model(params, rng)
    batch = _batch(rng)
    perm = rng.permutation(len(LENGTHS))
    shuffled = Batch(*(np.asarray(x)[perm] for x in batch[:5]))
    cost, grads, dfeats = captioning.batch_cost(model, batch, params, return_dfeats=True)
    cost2, grads2, dfeats2 = captioning.batch_cost(model, shuffled, params, return_dfeats=True)
    assert cost2["total_cost"] == pytest.approx(cost["total_cost"], rel=1e-13)
    for k in grads:
        np.testing.assert_allclose(grads2[k], grads[k], rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(dfeats2, dfeats[perm], rtol=1e-10, atol=1e-15)


def test_float32_training_cost_is_close_to_float64():
    rng = np.random.default_rng(3)
    params = _params(drop_prob_encoder=0, drop_prob_decoder=0)
    model = _model(params, rng)
    batch = _batch(rng)
    model32 = {k: v.astype(np.float32) for k, v in model.items()}
    cost32, grads32 = captioning.batch_cost(model32, batch, params, rng=np.random.default_rng(0))
    cost64, grads64 = captioning.batch_cost(model, batch, params)
    assert cost64["loss_cost"] == pytest.approx(_reference(model, batch, params)[0], rel=1e-12)
    assert cost32["total_cost"] == pytest.approx(cost64["total_cost"], rel=1e-5)
    for k in grads64:
        assert grads32[k].dtype == np.float32
        np.testing.assert_allclose(grads32[k], grads64[k], atol=1e-5 * np.abs(grads64[k]).max())


def test_prediction_steps_score_sentences_as_the_training_forward_does():
    rng = np.random.default_rng(30)
    params = _params()
    model = _model(params, rng)
    batch = _batch(rng)
    state = captioning.start(model, batch.feats, params)
    total = teacher_forced_log_likelihood(model, params, state, batch.words, batch.lengths)
    cost, _ = captioning.batch_cost(model, batch, dict(params, regc=0))
    assert -total / len(LENGTHS) == pytest.approx(cost["loss_cost"], rel=1e-12)


def test_likelihood_matrix_is_each_pairs_batch_cost_divided_by_its_length():
    rng = np.random.default_rng(40)
    params = _params()
    model = _model(params, rng)
    batch = _batch(rng)
    feats = rng.normal(size=(5, D))
    S = mrnn.likelihood_matrix(model, params, feats, batch.words, batch.lengths, image_chunk=2)
    assert S.shape == (5, len(LENGTHS))
    for i, j in itertools.product(range(5), range(len(LENGTHS))):
        one = Batch(feats[i:i + 1], batch.words[j:j + 1], batch.lengths[j:j + 1], None, None)
        cost, _ = captioning.batch_cost(model, one, dict(params, regc=0), compute_grads=False)
        assert S[i, j] == pytest.approx(-cost["loss_cost"] / (LENGTHS[j] + 1), rel=1e-12)


def test_beam_size_one_is_exactly_greedy():
    rng = np.random.default_rng(0)
    params = _params()
    model = _model(params, rng, scale=1.0)
    feats = rng.normal(size=(8, D))
    reference = greedy(model, params, captioning.start(model, feats, params), len(feats))
    for (total, words, _), beams in zip(reference, beam_search(model, params, feats, 1)):
        assert beams[0][1] == words and beams[0][0] == pytest.approx(total, abs=1e-12)


def test_wide_beam_finds_the_best_sequence_found_by_brute_force():
    V4, steps = 4, 3
    rng = np.random.default_rng(1)
    params = _params()
    model = captioning.init_model(params, D, V4, np.zeros(V4), rng, dtype=np.float64)
    for k in model:
        model[k] = rng.normal(size=model[k].shape)
    for f in rng.normal(size=(3, D)):
        candidates = [s for n in range(1, steps + 1) for s in itertools.product(range(V4), repeat=n)
                      if 0 not in s[:-1] and (n == steps or s[-1] == 0)]
        best = max((sequence_log_probability(model, params, f, s), list(s)) for s in candidates)
        beams = beam_search(model, params, f[None], beam_size=V4 ** steps, max_steps=steps)[0]
        assert beams[0][1] == best[1] and beams[0][0] == pytest.approx(best[0], abs=1e-12)


def test_word_encoding_size_must_equal_the_recurrent_layer():
    with pytest.raises(NeuralTalkError, match="--word_encoding_size"):
        captioning.init_model(_params(hidden_size=E2 + 1), D, V, np.zeros(V),
                              np.random.default_rng(0))
    assert module_of(_params()) is mrnn
