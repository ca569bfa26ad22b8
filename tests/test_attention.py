"""The soft-attention generator: gradient checks (parameters and regions, masks, dropout,
penalty, gate), the paper's equations written plainly one sentence and one step at a time,
the masked softmax, and decoding (beam 1 = greedy, weights per chosen word)."""
import os

import numpy as np
import pytest

from neuraltalk.captions.decoding import beam_search
from neuraltalk.data.batches import Batch
from neuraltalk.layers.packed import layout
from neuraltalk.models import attention, captioning, module_of
from neuraltalk.train.gradcheck import check_gradients

from stepwise import greedy, teacher_forced_log_likelihood

D, E, H, A, V, R = 6, 4, 5, 3, 11, 4
LENGTHS = (3, 1, 5, 0, 2, 5)  # different lengths, a tie, an empty sentence, unsorted
REGION_COUNTS = (4, 1, 2, 3, 4, 2)  # different counts, one image with only region 0


def _params(gate=1, **extra):
    return dict({"generator": "attention", "word_encoding_size": E, "hidden_size": H,
                 "attention_size": A, "att_gate": gate, "att_lambda": 0.7, "regc": 1e-3,
                 "drop_prob_encoder": 0.3, "drop_prob_decoder": 0.4}, **extra)


def _batch(rng, lengths=LENGTHS, region_counts=REGION_COUNTS):
    words = np.zeros((len(lengths), max(lengths) + 1), dtype=np.int32)
    for b, n in enumerate(lengths):
        words[b, :n] = rng.integers(1, V, size=n)
    regions = rng.normal(size=(len(lengths), R, D))
    B = len(lengths)
    return Batch(regions[:, 0].copy(), words, np.array(lengths, np.int32), np.arange(B),
                 np.arange(B), regions, np.array(region_counts))


def _model(params, rng):
    model = captioning.init_model(params, D, V, np.zeros(V), rng, dtype=np.float64)
    for k in model:  # larger weights than the default init: a sterner check
        model[k] = rng.normal(scale=0.5, size=model[k].shape)
    return model


def _reference(model, batch, params, masks=None):
    """Xu et al.'s equations, one sentence and one step at a time (masks cut per sentence
    from the packed ones)."""
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    lay = layout(batch.words, batch.lengths)
    sorted_index = {b: j for j, b in enumerate(lay.order)}
    W = model["WLSTM"]
    loss = penalty = logppl = 0.0
    for b in range(len(batch.words)):
        rows = np.flatnonzero(lay.sentence == sorted_index[b])  # this sentence, step order
        U = masks[0][rows] if masks else np.ones((len(rows), E))
        U2 = masks[1][rows] if masks else np.ones((len(rows), E))
        ws = [0] + list(batch.words[b, :batch.lengths[b]])
        a = batch.regions[b, :batch.region_counts[b]]
        abar = a.mean(0)
        h = np.tanh(abar @ model["Winit_h"] + model["binit_h"][0])
        c = np.tanh(abar @ model["Winit_c"] + model["binit_c"][0])
        total_alpha = np.zeros(len(a))
        for t, (w_in, w_out) in enumerate(zip(ws, ws[1:] + [0])):
            e = np.array([model["watt"][:, 0] @ np.tanh(a_i @ model["Wa"] + h @ model["Wha"]
                                                        + model["ba"][0]) for a_i in a])
            alpha = np.exp(e) / np.exp(e).sum()
            total_alpha += alpha
            z = alpha @ a
            if params["att_gate"]:
                z = z * sig(h @ model["Wbeta"][:, 0] + model["bbeta"][0, 0])
            x = model["Ws"][w_in] * U[t]
            g = np.concatenate([[1], x, z, h]) @ W
            i, f, o, gg = sig(g[:H]), sig(g[H:2 * H]), sig(g[2 * H:3 * H]), np.tanh(g[3 * H:])
            c = i * gg + f * c
            h = o * np.tanh(c)
            y = ((x + h @ model["Lh"] + z @ model["Lz"]) * U2[t]) @ model["Wd"] + model["bd"][0]
            p = np.exp(y - y.max())
            p /= p.sum()
            loss -= np.log(1e-20 + p[w_out])
            logppl -= np.log2(1e-20 + p[w_out])
        penalty += params["att_lambda"] * np.sum((1 - total_alpha) ** 2)
    B = len(batch.words)
    reg = sum(0.5 * params["regc"] * np.sum(model[k] ** 2) for k in attention.REGULARIZED)
    return loss / B, reg / B, penalty / B, 2 ** (logppl / (sum(batch.lengths) + B))


def _masks(params, model, batch, rng):
    masks = attention.dropout_masks(params, model, layout(batch.words, batch.lengths), rng)
    assert (masks[0] == 0).any() and (masks[1] == 0).any()
    return masks


@pytest.mark.parametrize("gate,max_entries", [
    (0, 25), (1, 25),  # 25 random entries of every array: a few seconds
    pytest.param(0, None, marks=pytest.mark.slow), pytest.param(1, None, marks=pytest.mark.slow)])
def test_gradients_of_every_parameter_and_the_regions_match_finite_differences(gate,
                                                                               max_entries):
    rng = np.random.default_rng(10 + gate)
    params = _params(gate)
    model = _model(params, rng)
    batch = _batch(rng)
    masks = _masks(params, model, batch, rng)  # fixed, nonzero dropout

    def cost():
        return captioning.batch_cost(model, batch, params, masks=masks)[0]["total_cost"]

    c, grads, dregions = captioning.batch_cost(model, batch, params, masks=masks,
                                               return_dregions=True)
    assert c["att_cost"] > 0.1  # the penalty is on and matters
    arrays = dict(model, regions=batch.regions)
    grads = dict(grads, regions=dregions)
    assert set(grads) == set(arrays)
    assert ("Wbeta" in model) == bool(gate)
    # padded regions: exactly 0 analytically (checked below), a last-bit wobble of the
    # cost numerically, which min_magnitude leaves out
    worst = check_gradients(cost, arrays, grads, max_entries=max_entries,
                            rng=np.random.default_rng(0), min_magnitude=1e-10)
    assert max(worst.values()) < 1e-6, sorted(worst.items(), key=lambda kv: -kv[1])
    padding = ~attention.region_mask(batch.region_counts, R)
    assert np.all(dregions[padding] == 0)


@pytest.mark.parametrize("gate", [0, 1])
def test_batch_cost_with_dropout_equals_the_papers_equations_one_step_at_a_time(gate):
    rng = np.random.default_rng(20 + gate)
    params = _params(gate)
    model = _model(params, rng)
    batch = _batch(rng)
    masks = _masks(params, model, batch, rng)
    cost, _ = captioning.batch_cost(model, batch, params, masks=masks)
    loss, reg, penalty, ppl2 = _reference(model, batch, params, masks)
    assert cost["loss_cost"] == pytest.approx(loss, rel=1e-12)
    assert cost["reg_cost"] == pytest.approx(reg, rel=1e-12)
    assert cost["att_cost"] == pytest.approx(penalty, rel=1e-12)
    assert cost["total_cost"] == pytest.approx(loss + reg + penalty, rel=1e-12)
    assert cost["ppl2"] == pytest.approx(ppl2, rel=1e-12)


def test_padded_regions_get_zero_weight_and_do_not_change_the_cost():
    rng = np.random.default_rng(4)
    params = _params(1)
    model = _model(params, rng)
    batch = _batch(rng)
    state = attention.start(model, None, params, batch.regions, batch.region_counts)
    _, state = attention.step(model, state, np.zeros(len(LENGTHS), np.int64), params)
    padding = ~attention.region_mask(batch.region_counts, R)
    assert np.all(state["alpha"][padding] == 0)
    np.testing.assert_allclose(state["alpha"].sum(1), 1, rtol=1e-12)
    assert np.all(state["alpha"][~padding] > 0)
    garbage = batch.regions.copy()
    garbage[padding] = 1e3
    cost, _ = captioning.batch_cost(model, batch, params, compute_grads=False)
    cost2, _ = captioning.batch_cost(model, batch._replace(regions=garbage), params,
                                     compute_grads=False)
    assert cost2["total_cost"] == cost["total_cost"]


def test_float32_cost_and_gradients_are_close_to_float64():
    rng = np.random.default_rng(5)
    params = _params(1, drop_prob_encoder=0, drop_prob_decoder=0)
    model = _model(params, rng)
    batch = _batch(rng)
    model32 = {k: v.astype(np.float32) for k, v in model.items()}
    batch32 = batch._replace(regions=batch.regions.astype(np.float32))
    cost32, grads32 = captioning.batch_cost(model32, batch32, params)
    cost64, grads64 = captioning.batch_cost(model, batch, params)
    assert cost32["total_cost"] == pytest.approx(cost64["total_cost"], rel=1e-5)
    for k in grads64:
        assert grads32[k].dtype == np.float32
        np.testing.assert_allclose(grads32[k], grads64[k], atol=1e-4 * np.abs(grads64[k]).max())


def test_prediction_steps_score_sentences_as_the_training_forward_does():
    rng = np.random.default_rng(6)
    params = _params(1)
    model = _model(params, rng)
    batch = _batch(rng)
    cost, _ = captioning.batch_cost(model, batch, params, compute_grads=False)
    state = attention.start(model, None, params, batch.regions, batch.region_counts)
    total = teacher_forced_log_likelihood(model, params, state, batch.words, batch.lengths)
    assert -total / len(LENGTHS) == pytest.approx(cost["loss_cost"], rel=1e-10)


def test_beam_1_equals_greedy_and_returns_the_weights_of_each_chosen_word():
    rng = np.random.default_rng(7)
    params = _params(1)
    model = _model(params, rng)
    batch = _batch(rng)
    regions = (batch.regions, batch.region_counts)
    results = beam_search(model, params, batch.feats, 1, max_steps=6, regions=regions,
                          return_weights=True)
    reference = greedy(model, params, attention.start(model, None, params, *regions),
                       len(LENGTHS), max_steps=6)
    for (total, words, weights), beams in zip(reference, results):
        logprob, seq, w = beams[0]
        assert seq == words and logprob == pytest.approx(total, abs=1e-12)
        assert w.shape == (len(seq), R)
        np.testing.assert_allclose(w, weights, rtol=1e-10)


def test_wider_beams_score_no_worse_and_keep_weights_that_sum_to_one():
    rng = np.random.default_rng(8)
    params = _params(0)
    model = _model(params, rng)
    batch = _batch(rng)
    regions = (batch.regions, batch.region_counts)
    one = beam_search(model, params, batch.feats, 1, 8, regions=regions)
    five = beam_search(model, params, batch.feats, 5, 8, regions=regions, return_weights=True)
    for b1, b5 in zip(one, five):
        assert b5[0][0] >= b1[0][0] - 1e-12
        for logprob, seq, w in b5:
            np.testing.assert_allclose(w.sum(1), 1, rtol=1e-10)


def test_without_regions_the_attention_generator_says_what_it_needs():
    from neuraltalk.errors import NeuralTalkError
    rng = np.random.default_rng(9)
    params = _params(0)
    model = _model(params, rng)
    batch = _batch(rng)._replace(regions=None, region_counts=None)
    with pytest.raises(NeuralTalkError, match="regions"):
        module_of(params).loss(model, batch, params)


def test_colour_and_shape_words_are_matched_to_the_one_object_they_name():
    from neuraltalk.demo.checker import attention_hits, described_objects
    objects = [{"color": "red", "shape": "circle"}, {"color": "red", "shape": "square"},
               {"color": "blue", "shape": "circle"}]
    tokens = "a red big ball and a blue circle and a red thing and a square".split()
    assert described_objects(tokens, objects) == [-1, 0, -1, 0, -1, -1, 2, 2, -1, -1, -1,
                                                  -1, -1, -1, 1]
    weights = np.zeros((len(tokens) + 1, 4))  # END's row too, as beam search gives
    weights[:, 0] = 1
    weights[1, 1] = weights[3, 1] = 2  # "red", "ball" on object 0's region (region 1)
    weights[14, 3] = 2  # "square" on object 2's region, not object 1's
    assert attention_hits(tokens, weights, objects) == (2, 5)


def test_grid_cells_tile_the_part_of_the_image_the_cnn_sees():
    from neuraltalk.cnn import efficientnet, vgg16
    from neuraltalk.cnn.extract import grid_boxes
    cells = grid_boxes(vgg16.input_box((140, 70)), 14, 14)
    assert cells.shape == (196, 4)
    assert tuple(cells[0]) == (0, 0, 10, 5) and tuple(cells[-1]) == (130, 65, 140, 70)
    assert tuple(cells[1]) == (10, 0, 20, 5) and tuple(cells[14]) == (0, 5, 10, 10)
    x0, y0, x1, y1 = efficientnet.input_box((64, 64))  # short side 256, centre crop 224
    assert (x0, y0, x1, y1) == (4.0, 4.0, 60.0, 60.0)
    area = sum((c[2] - c[0]) * (c[3] - c[1]) for c in grid_boxes((x0, y0, x1, y1), 7, 7))
    assert area == 56 * 56


@pytest.mark.slow  # a full VGG-16 forward pass in NumPy
def test_vgg16_conv5_3_map_feeds_the_same_fc7_as_forward():
    from neuraltalk.cnn import vgg16
    rng = np.random.default_rng(0)
    net = {name: (rng.normal(scale=0.05, size=shape[0]).astype(np.float32),
                  np.zeros(shape[1], np.float32)) for name, shape in vgg16.weight_shapes().items()}
    x = rng.normal(size=(1, 224, 224, 3)).astype(np.float32)
    fmap = vgg16.feature_map(net, x)
    assert fmap.shape == (1, 14, 14, 512)
    np.testing.assert_array_equal(vgg16.from_map(net, fmap), vgg16.forward(net, x))


def test_attention_strip_shades_each_word_by_its_weights(tmp_path):
    from PIL import Image
    from neuraltalk.captions.report import TILE, write_attention_strip
    Image.fromarray(np.full((64, 64, 3), 200, np.uint8)).save(tmp_path / "a.png")
    boxes = np.array([[0, 0, 64, 64], [0, 0, 32, 32], [32, 32, 64, 64]])
    weights = np.array([[0.1, 0.8, 0.1], [0.1, 0.1, 0.8]])
    write_attention_strip(str(tmp_path / "s.png"), str(tmp_path / "a.png"), ["red", "ball"],
                          weights, boxes)
    strip = np.asarray(Image.open(tmp_path / "s.png"), np.float64)
    assert strip.shape[1] == 2 * (TILE + 4)
    q = TILE // 4
    first, second = strip[:TILE, :TILE], strip[:TILE, TILE + 4:2 * TILE + 4]
    assert first[q, q].mean() > 2 * first[3 * q, 3 * q].mean()  # the top-left box is lit
    assert second[3 * q, 3 * q].mean() > 2 * second[q, q].mean()  # then the bottom-right


@pytest.fixture(scope="module")
def attention_run(shapes_root, tmp_path_factory):
    import driver
    from neuraltalk.train.runs import best_checkpoint
    out = tmp_path_factory.mktemp("cv")
    assert driver.main(["--dataset", "shapes", "--data_root", shapes_root,
                        "--generator", "attention", "--checkpoint_output_directory", str(out),
                        "--worker_status_output_directory", str(out / "status"),
                        "--hidden_size", "32", "--word_encoding_size", "32",
                        "--attention_size", "16", "--max_iters", "20",
                        "--eval_max_images", "20", "--eval_period", "1000"]) == 0
    return best_checkpoint(str(out))


@pytest.mark.slow  # trains a small attention model first
def test_evaluation_of_an_attention_model_scores_where_it_looks_and_draws_it(attention_run,
                                                                             tmp_path):
    import json
    import eval_sentence_predictions
    assert eval_sentence_predictions.main([attention_run, "--max_images", "6", "--beam_size",
                                           "2", "--out", str(tmp_path), "--no_meteor"]) == 0
    result = json.load(open(tmp_path / "result_struct.json"))
    assert 0 <= result["attention_accuracy"] <= 1
    blob = result["imgblobs"][0]
    words = [w["word"] for w in blob["attention"]]
    assert " ".join(w for w in words if w != "END") == blob["candidate"]["text"]
    assert all(abs(sum(w["weights"]) - 1) < 1e-3 for w in blob["attention"])
    page = open(tmp_path / "result.html").read()
    assert page.count('class="attention"') == 6
    assert os.path.exists(blob["attention_png"])


@pytest.mark.slow  # trains a small attention model first
def test_prediction_with_an_attention_model_reads_the_folders_regions(attention_run,
                                                                      shapes_root, tmp_path):
    import shutil
    import predict_on_images
    from neuraltalk.data.regions import load_regions, save_regions
    folder = os.path.join(shapes_root, "shapes")
    names = ["00000.png", "00001.png", "00002.png"]
    for n in names:
        shutil.copy(os.path.join(folder, "images", n), tmp_path / n)
    (tmp_path / "tasks.txt").write_text("\n".join(names) + "\n")
    assert predict_on_images.main([attention_run, "-r", str(tmp_path)]) == 2  # no regions.h5
    regions = load_regions(folder)
    save_regions(str(tmp_path / "regions.h5"), regions.feats[:3], regions.boxes[:3],
                 regions.counts[:3])
    assert predict_on_images.main([attention_run, "-r", str(tmp_path)]) == 0
    page = open(tmp_path / "result.html").read()
    assert page.count('class="attention"') == 3
    assert sorted(os.listdir(tmp_path / "attention")) == ["0.png", "1.png", "2.png"]


def test_preset_shapes_gives_the_readme_demo_sizes_and_flags_given_still_win(capsys):
    import driver
    params = driver.parse_flags(driver.build_parser(), ["--dataset", "shapes", "--generator",
                                                        "attention", "--preset", "shapes",
                                                        "--max_epochs", "2"])
    assert (params["hidden_size"], params["word_encoding_size"], params["attention_size"],
            params["max_epochs"]) == (128, 128, 64, 2)
    assert "--preset shapes: --attention_size 64 --hidden_size 128" in capsys.readouterr().out
