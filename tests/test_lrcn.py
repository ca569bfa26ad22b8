"""The LRCN generator, all three variants of its Figure 4: gradient checks, the stacked
LSTMs written plainly one sentence at a time (dropout included), prediction steps against
the training forward, beam search."""

import numpy as np
import pytest

from neuraltalk.captions.decoding import beam_search
from neuraltalk.data.batches import Batch
from neuraltalk.layers.packed import layout
from neuraltalk.models import captioning, lrcn
from neuraltalk.train.gradcheck import check_gradients

from stepwise import best_sequence_by_brute_force, greedy, sentence_loss, teacher_forced_log_likelihood

D, Ei, E, H, V = 7, 3, 4, 5, 11  # three different widths: the row blocks cannot be confused
LENGTHS = (3, 1, 5, 0, 2, 5)
VARIANTS = ["1u", "2u", "2f"]


def _params(variant, **extra):
    return dict({"generator": "lrcn", "lrcn_variant": variant, "image_encoding_size": Ei,
                 "word_encoding_size": E, "hidden_size": H, "regc": 1e-3,
                 "drop_prob_encoder": 0.3, "drop_prob_decoder": 0.4}, **extra)


def _batch(rng, lengths=LENGTHS, n_words=V, width=D):
    words = np.zeros((len(lengths), max(lengths) + 1), dtype=np.int32)
    for b, n in enumerate(lengths):
        words[b, :n] = rng.integers(1, n_words, size=n)
    return Batch(rng.normal(size=(len(lengths), width)), words, np.array(lengths, np.int32),
                 np.arange(len(lengths)), np.arange(len(lengths)))


def _model(params, rng, n_words=V, scale=0.5, width=D):
    model = captioning.init_model(params, width, n_words, np.zeros(n_words), rng, dtype=np.float64)
    for k in model:
        model[k] = rng.normal(scale=scale, size=model[k].shape)
    return model


def _reference(model, batch, params, masks=None):
    """LRCN's cost from Figure 4, one sentence and one step at a time: the LSTMs' inputs
    concatenated as the figure draws them, h = o * tanh(c)."""
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    lay = layout(batch.words, batch.lengths)
    inputs = {"1u": [["word", "image"]], "2u": [["word", "image"], ["below"]],
              "2f": [["word"], ["below", "image"]]}[params["lrcn_variant"]]
    loss, logppl, ntokens = 0.0, 0.0, 0
    for j, b in enumerate(lay.order):
        rows = lay.sentence == j
        ws = list(batch.words[b, :batch.lengths[b]])
        Uw, Ui, Uh = ((masks[0][0][rows], masks[0][1][j], masks[1][rows]) if masks
                      else (np.ones((len(ws) + 1, E)), 1, 1))
        image = (batch.feats[b] @ model["We"] + model["be"][0]) * Ui
        states = [(np.zeros(H), np.zeros(H)) for _ in inputs]
        tops = []
        for t, x in enumerate([0] + ws):
            below = None
            for l, (name, ins) in enumerate(zip(("WLSTM", "WLSTM2"), inputs)):
                parts = {"word": model["Ws"][x] * Uw[t], "image": image, "below": below}
                h, c = states[l]
                a = np.concatenate([[1]] + [parts[k] for k in ins] + [h]) @ model[name]
                i, f, o, g = sig(a[:H]), sig(a[H:2 * H]), sig(a[2 * H:3 * H]), np.tanh(a[3 * H:])
                c = i * g + f * c
                h = o * np.tanh(c)
                states[l] = (h, c)
                below = h
            tops.append(below)
        Y = (np.array(tops) * Uh) @ model["Wd"] + model["bd"]
        nats, bits = sentence_loss(Y, ws)
        loss += nats
        logppl += bits
        ntokens += len(ws) + 1
    B = len(batch.words)
    reg = sum(0.5 * params["regc"] * np.sum(model[k] ** 2) for k in lrcn.REGULARIZED
              if k in model)
    return loss / B, reg / B, 2 ** (logppl / ntokens), ntokens


@pytest.mark.parametrize("variant", VARIANTS)
def test_gradients_of_every_parameter_and_input_match_finite_differences(variant):
    rng = np.random.default_rng(10)
    # smaller widths than elsewhere (still all different): every entry is checked
    params = _params(variant, image_encoding_size=2, word_encoding_size=3, hidden_size=4)
    model = _model(params, rng, n_words=7, width=5)
    batch = _batch(rng, (3, 1, 4, 0, 2, 4), n_words=7, width=5)
    masks = lrcn.dropout_masks(params, model, layout(batch.words, batch.lengths), rng)
    assert all((m == 0).any() for m in (masks[0][0], masks[0][1], masks[1]))

    def cost():
        return captioning.batch_cost(model, batch, params, masks=masks)[0]["total_cost"]

    _, grads, dfeats = captioning.batch_cost(model, batch, params, masks=masks,
                                             return_dfeats=True)
    arrays = dict(model, feats=batch.feats)
    grads = dict(grads, feats=dfeats)
    expected = {"We", "be", "Ws", "WLSTM", "Wd", "bd", "feats"} | (
        {"WLSTM2"} if variant != "1u" else set())
    assert set(grads) == set(arrays) == expected
    # the cost is smooth (no ReLU): no entry is at a kink, so none is skipped as one or
    # retried at a step so small that round-off dominates; entries below 1e-7 are
    # round-off of a cost of ~10
    worst = check_gradients(cost, arrays, grads, min_magnitude=1e-7, kink_tolerance=None)
    assert max(worst.values()) < 1e-6, sorted(worst.items(), key=lambda kv: -kv[1])


@pytest.mark.parametrize("variant", VARIANTS)
def test_batch_cost_with_dropout_equals_figure_4_one_sentence_at_a_time(variant):
    rng = np.random.default_rng(20)
    params = _params(variant)
    model = _model(params, rng)
    batch = _batch(rng)
    masks = lrcn.dropout_masks(params, model, layout(batch.words, batch.lengths), rng)
    cost, _ = captioning.batch_cost(model, batch, params, masks=masks)
    loss, reg, ppl2, ntokens = _reference(model, batch, params, masks)
    assert cost["loss_cost"] == pytest.approx(loss, rel=1e-12)
    assert cost["reg_cost"] == pytest.approx(reg, rel=1e-12)
    assert cost["ppl2"] == pytest.approx(ppl2, rel=1e-12)
    assert cost["ntokens"] == ntokens == sum(LENGTHS) + len(LENGTHS)


def test_the_variants_feed_the_image_where_figure_4_puts_it():
    rng = np.random.default_rng(2)
    shapes = {v: {k: a.shape for k, a in _model(_params(v), rng).items() if k.startswith("WLSTM")}
              for v in VARIANTS}
    assert shapes["1u"] == {"WLSTM": (1 + E + Ei + H, 4 * H)}
    assert shapes["2u"] == {"WLSTM": (1 + E + Ei + H, 4 * H), "WLSTM2": (1 + H + H, 4 * H)}
    assert shapes["2f"] == {"WLSTM": (1 + E + H, 4 * H), "WLSTM2": (1 + H + Ei + H, 4 * H)}


@pytest.mark.parametrize("variant", VARIANTS)
def test_prediction_steps_score_sentences_as_the_training_forward_does(variant):
    rng = np.random.default_rng(30)
    params = _params(variant)
    model = _model(params, rng)
    batch = _batch(rng)
    state = captioning.start(model, batch.feats, params)
    total = teacher_forced_log_likelihood(model, params, state, batch.words, batch.lengths)
    cost, _ = captioning.batch_cost(model, batch, dict(params, regc=0))
    assert -total / len(LENGTHS) == pytest.approx(cost["loss_cost"], rel=1e-12)


@pytest.mark.parametrize("variant", VARIANTS)
def test_beam_size_one_is_exactly_greedy(variant):
    rng = np.random.default_rng(0)
    params = _params(variant)
    model = _model(params, rng, scale=1.0)
    feats = rng.normal(size=(8, D))
    reference = greedy(model, params, captioning.start(model, feats, params), len(feats))
    for (total, words, _), beams in zip(reference, beam_search(model, params, feats, 1)):
        assert beams[0][1] == words and beams[0][0] == pytest.approx(total, abs=1e-12)


@pytest.mark.parametrize("variant", VARIANTS)
def test_wide_beam_finds_the_best_sequence_found_by_brute_force(variant):
    V4, steps = 4, 3
    rng = np.random.default_rng(1)
    params = _params(variant)
    model = _model(params, rng, n_words=V4, scale=1.0)
    for f in rng.normal(size=(3, D)):
        best = best_sequence_by_brute_force(model, params, f, V4, steps)
        beams = beam_search(model, params, f[None], beam_size=V4 ** steps, max_steps=steps)[0]
        assert beams[0][1] == best[1] and beams[0][0] == pytest.approx(best[0], abs=1e-12)
