"""Self-critical sequence training: the policy gradient against finite differences of
sum A log p(sample) computed with the prediction steps, the CIDEr-D reward against the
metrics module, the sampler's distribution and seeding, and a short run on shapes."""
import glob
import os

import numpy as np
import pytest

import driver
from neuraltalk import models
from neuraltalk.captions.decoding import beam_search
from neuraltalk.metrics.cider import cider_d, document_frequencies
from neuraltalk.metrics.cider_reward import CiderD
from neuraltalk.errors import NeuralTalkError
from neuraltalk.models import captioning
from neuraltalk.train import scst, solvers
from neuraltalk.train.checkpoint import load_checkpoint
from neuraltalk.train.runs import best_checkpoint
from neuraltalk.train.gradcheck import check_gradients

D, H, V = 7, 5, 11
# SCST samples from whole-image features: generators that read regions are refused
# (test_a_generator_that_reads_regions_is_refused)
GENERATORS = sorted(name for name, m in models.GENERATORS.items() if not m.NEEDS_REGIONS)


def _params(generator, **extra):
    """Every flag's default (each generator's own included), small sizes, no dropout."""
    params = vars(driver.build_parser().parse_args([]))
    params.update(generator=generator, image_encoding_size=H, word_encoding_size=H,
                  hidden_size=H, drop_prob_encoder=0.0, drop_prob_decoder=0.0, regc=1e-2,
                  scst_samples=4)
    params.update(extra)
    return params


def _model(params, rng, scale=0.5):
    model = captioning.init_model(params, D, V, np.zeros(V), rng, dtype=np.float64)
    for k in model:  # larger weights than the default init: peaked, varied distributions
        model[k] = rng.normal(scale=scale, size=model[k].shape)
    return model


def _log_likelihoods(model, feats, words, lengths, finished, params):
    """log p of each caption, one prediction step at a time: the words drawn, and END for
    the captions that drew it."""
    state = captioning.start(model, feats, params)
    total = np.zeros(len(lengths))
    prev = np.zeros(len(lengths), dtype=np.int64)
    for t in range(words.shape[1] + 1):
        logprobs, state = captioning.step(model, state, prev, params)
        word = words[:, t] if t < words.shape[1] else np.zeros(len(lengths), np.int64)
        scored = (t < lengths) | ((t == lengths) & finished)
        total[scored] += logprobs[np.flatnonzero(scored), np.where(t < lengths, word, 0)[scored]]
        prev = word
    return total


@pytest.mark.parametrize("generator", GENERATORS)
def test_policy_gradient_matches_finite_differences_of_advantage_weighted_log_likelihood(
        generator):
    params = _params(generator)
    gen = models.GENERATORS[generator]
    K = params["scst_samples"]
    for seed in range(1, 30):  # the first random model whose samples end and get cut alike
        rng = np.random.default_rng(seed)
        model = _model(params, rng)
        feats = rng.normal(size=(3, D))
        words, lengths, finished = captioning.sample(model, feats, params, rng, K, 1.0,
                                                     max_steps=5)
        # captions with END, captions cut short, and several lengths
        if finished.any() and not finished.all() and len(set(lengths.tolist())) > 2:
            break
    else:
        pytest.fail("no sample of both kinds")
    feats = np.repeat(feats, K, axis=0)  # perturbed in place by the check
    A = rng.normal(size=len(lengths))
    S = len(lengths)

    def surrogate():  # -sum_s A_s log p(s) / S + regc/2 sum W^2 / S
        logp = _log_likelihoods(model, feats, words, lengths, finished, params)
        reg = sum(0.5 * params["regc"] * np.sum(model[k] ** 2) for k in gen.REGULARIZED)
        return float(-(A * logp).sum() / S + reg / S)

    cost, grads = scst.policy_gradient(model, feats, words, lengths, finished, A, params)
    assert cost["total_cost"] == pytest.approx(surrogate(), rel=1e-10)
    assert set(grads) == set(model)
    worst = check_gradients(surrogate, model, grads, max_entries=60)
    assert max(worst.values()) < 1e-6, sorted(worst.items(), key=lambda kv: -kv[1])


@pytest.mark.parametrize("generator", GENERATORS)
def test_zero_advantages_leave_the_model_unchanged(generator):
    rng = np.random.default_rng(2)
    params = _params(generator, regc=0.0)
    model = _model(params, rng)
    feats = rng.normal(size=(3, D))
    words, lengths, finished = captioning.sample(model, feats, params, rng, 4, 1.0)
    cost, grads = scst.policy_gradient(model, np.repeat(feats, 4, axis=0), words, lengths,
                                       finished, np.zeros(len(lengths)), params)
    assert cost["total_cost"] == 0.0
    for k in grads:
        assert not grads[k].any(), k
    before = {k: v.copy() for k, v in model.items()}
    solvers.update(model, grads, {}, dict(params, solver="rmsprop", learning_rate=1e-3))
    for k in model:
        np.testing.assert_array_equal(model[k], before[k])


@pytest.mark.parametrize("generator", GENERATORS)
def test_the_same_seed_draws_the_same_captions(generator):
    rng = np.random.default_rng(3)
    params = _params(generator)
    model = _model(params, rng)
    feats = rng.normal(size=(4, D))
    a = captioning.sample(model, feats, params, np.random.default_rng(7), 5, 1.0)
    b = captioning.sample(model, feats, params, np.random.default_rng(7), 5, 1.0)
    c = captioning.sample(model, feats, params, np.random.default_rng(8), 5, 1.0)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])
    words, lengths, _ = a
    assert not words[np.arange(words.shape[1])[None, :] >= lengths[:, None]].any()  # 0 after


@pytest.mark.parametrize("generator", GENERATORS)
def test_greedy_sampling_is_beam_search_with_beam_one(generator):
    rng = np.random.default_rng(4)
    params = _params(generator)
    model = _model(params, rng, scale=0.3)
    feats = rng.normal(size=(6, D))
    words, lengths, finished = captioning.sample(model, feats, params, None, 1, 0, max_steps=7)
    for b, beams in enumerate(beam_search(model, params, feats, 1, max_steps=7)):
        seq = beams[0][1]
        assert finished[b] == (len(seq) > 0 and seq[-1] == 0)
        assert list(words[b, :lengths[b]]) == [w for w in seq if w > 0]


def test_sampled_first_words_follow_the_tempered_softmax():
    rng = np.random.default_rng(5)
    params = _params("lstm")
    model = _model(params, rng, scale=0.3)
    feats = rng.normal(size=(1, D))
    n = 20000
    for temperature in (1.0, 0.5):
        words, lengths, finished = captioning.sample(model, feats, params, rng, n,
                                                     temperature, max_steps=1)
        first = np.where(finished, 0, words[:, 0])
        Y, _ = models.GENERATORS["lstm"].step(
            model, captioning.start(model, feats, params), np.zeros(1, np.int64), params)
        p = np.exp(Y[0] / temperature - (Y[0] / temperature).max())
        p /= p.sum()
        counts = np.bincount(first, minlength=V)
        # each count is binomial(n, p): within 4.5 standard deviations
        assert np.all(np.abs(counts - n * p) < 4.5 * np.sqrt(n * p * (1 - p)) + 1), (counts, n * p)


def _random_corpus(rng, n_images, words, max_len=9):
    return [[list(rng.choice(words, size=rng.integers(0, max_len + 1)))
             for _ in range(rng.integers(1, 6))] for _ in range(n_images)]


def test_reward_equals_the_metrics_modules_cider_d_with_the_same_document_frequencies():
    rng = np.random.default_rng(6)
    vocab = ["a", "b", "c", "d", "e", "f"]
    ixtoword = dict(enumerate(["."] + vocab))
    # references also hold words the model does not know ("x", "y"): they count in the
    # references' norms and lengths and never match
    references = _random_corpus(rng, 15, vocab + ["x", "y"])
    training = _random_corpus(rng, 40, vocab + ["x", "z"])
    C = 150
    images = rng.integers(0, len(references), size=C)
    lengths = rng.integers(0, 12, size=C)
    words = rng.integers(1, len(ixtoword), size=(C, 12))
    df = document_frequencies(dict(enumerate(training)))
    rewards = CiderD(references, ixtoword, df).scores(words, lengths, images)
    for c in range(C):
        tokens = [ixtoword[w] for w in words[c, :lengths[c]]]
        _, per = cider_d({0: references[images[c]]}, {0: tokens}, df)
        assert rewards[c] == pytest.approx(per[0], rel=1e-12, abs=1e-12), c
    # without df: the scored images' own, as the evaluation computes a corpus's CIDEr-D
    first = {}
    for c in range(C):
        first.setdefault(int(images[c]), c)
    keys = sorted(first)
    refs = {i: references[i] for i in keys}
    cands = {i: [ixtoword[w] for w in words[first[i], :lengths[first[i]]]] for i in keys}
    _, per = cider_d(refs, cands)
    own = CiderD([references[i] for i in keys], ixtoword)
    np.testing.assert_allclose(own.scores(words[[first[i] for i in keys]],
                                          lengths[[first[i] for i in keys]], np.arange(len(keys))),
                               [per[i] for i in keys], rtol=1e-12, atol=1e-12)
    assert (rewards > 0).mean() > 0.5  # the check saw real overlaps, not only zeros


def test_a_reference_scores_high_and_an_unrelated_caption_zero():
    refs = [[["a", "red", "circle"], ["a", "red", "round", "circle"]], [["two", "squares"]]]
    ixtoword = {0: ".", 1: "a", 2: "red", 3: "circle", 4: "two", 5: "squares"}
    scorer = CiderD(refs, ixtoword)
    words = np.array([[1, 2, 3], [4, 5, 0], [4, 5, 0]])
    rewards = scorer.scores(words, [3, 2, 2], [0, 1, 0])
    assert rewards[0] > 1 and rewards[1] > 1 and rewards[2] == 0


def test_the_best_scst_checkpoint_of_a_folder_is_the_highest_cider_d(tmp_path):
    for name in ("model_checkpoint_shapes_h_scst_cider_d2.641.p",
                 "model_checkpoint_shapes_h_scst_cider_d2.805.p",
                 "model_checkpoint_shapes_h_scst_cider_d2.743.p",
                 "model_checkpoint_shapes_h_scst_last.p"):
        (tmp_path / name).write_bytes(b"")
    assert os.path.basename(best_checkpoint(str(tmp_path))) == \
        "model_checkpoint_shapes_h_scst_cider_d2.805.p"


def test_the_mean_baseline_is_the_mean_of_the_images_other_samples():
    rewards = np.array([[1.0, 2.0, 6.0], [0.0, 0.0, 3.0]])
    A = scst.advantages(rewards, np.array([2.0, 1.0]), "mean")
    np.testing.assert_allclose(A, [[1 - 4, 2 - 3.5, 6 - 1.5], [0 - 1.5, 0 - 1.5, 3 - 0]])
    G = scst.advantages(rewards, np.array([2.0, 1.0]), "greedy")
    np.testing.assert_allclose(G, [[-1, 0, 4], [-1, -1, 2]])


def _driver(shapes_root, out, *flags):
    return driver.main(["--dataset", "shapes", "--data_root", shapes_root,
                        "--checkpoint_output_directory", str(out),
                        "--worker_status_output_directory", str(out / "status"),
                        "--hidden_size", "32", "--image_encoding_size", "32",
                        "--word_encoding_size", "32"] + list(flags))


@pytest.mark.parametrize("flags, message", [
    (["--scst", "1"], "give its checkpoint with --init_model_from"),
    (["--scst", "1", "--init_model_from", "x.p", "--scst_baseline", "mean",
      "--scst_samples", "1"], "--scst_samples 2 or more"),
    (["--scst", "1", "--init_model_from", "x.p", "--scst_temperature", "0"],
     "--scst_temperature must be positive"),
    (["--scst", "1", "--init_model_from", "x.p", "--min_ppl_or_abort", "5"],
     "validates by CIDEr-D"),
    (["--scst", "1", "--init_model_from", "x.p", "--model", "brnn"], "alignment model"),
])
def test_bad_scst_flags_are_refused(flags, message, capsys):
    with pytest.raises(SystemExit) as e:
        driver.main(flags)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


@pytest.fixture(scope="module")
def ce_checkpoint(shapes_root, tmp_path_factory):
    """A cross-entropy LSTM trained briefly on shapes: the start of the SCST runs."""
    out = tmp_path_factory.mktemp("ce")
    assert _driver(shapes_root, out, "--max_iters", "150", "--batch_size", "50",
                   "--eval_period", "1000", "--eval_max_images", "50") == 0
    return glob.glob(str(out / "model_checkpoint_*_last.p"))[0]


@pytest.mark.slow  # a cross-entropy run of 150 iterations, then SCST
def test_a_short_scst_run_raises_validation_cider_d_over_its_starting_checkpoint(
        shapes_root, ce_checkpoint, tmp_path, capsys):
    start = ce_checkpoint
    ckpt = load_checkpoint(start)
    from neuraltalk.data.dataset import load_dataset
    dataset = load_dataset("shapes", data_root=shapes_root)
    val = [img for img in dataset.split("val") if img["sentences"]][:100]
    scorer = CiderD(scst.references_of(val), ckpt["ixtoword"])
    feats = dataset.features[[img["imgid"] for img in val]]
    before = scst.greedy_cider(ckpt["model"], ckpt["params"], feats, scorer)
    capsys.readouterr()
    assert _driver(shapes_root, tmp_path / "scst", "--scst", "1", "--init_model_from", start,
                   "--max_iters", "40", "--batch_size", "20", "--learning_rate", "5e-4",
                   "--eval_period", "1000", "--eval_max_images", "100") == 0
    out = capsys.readouterr().out
    assert "starting self-critical training" in out and "greedy reward =" in out
    (best,) = glob.glob(str(tmp_path / "scst" / "model_checkpoint_*_cider_d*.p"))
    after = load_checkpoint(best)
    assert after["val_score"]["name"] == "cider_d" and after["it"] == 39
    value = scst.greedy_cider(after["model"], after["params"], feats, scorer)
    assert value == pytest.approx(after["val_score"]["value"], rel=1e-9)
    assert value > before + 0.05, (before, value)


@pytest.mark.slow
def test_resuming_scst_continues_exactly_as_an_uninterrupted_run(shapes_root, ce_checkpoint,
                                                                 tmp_path):
    start = ce_checkpoint
    flags = ["--scst", "1", "--batch_size", "10", "--eval_period", "1000",
             "--eval_max_images", "20"]
    assert _driver(shapes_root, tmp_path / "a", *flags, "--init_model_from", start,
                   "--max_iters", "3") == 0
    half = glob.glob(str(tmp_path / "a" / "model_checkpoint_*_last.p"))[0]
    assert _driver(shapes_root, tmp_path / "b", *flags, "--init_model_from", half,
                   "--max_iters", "6") == 0
    assert _driver(shapes_root, tmp_path / "c", *flags, "--init_model_from", start,
                   "--max_iters", "6") == 0
    b = load_checkpoint(glob.glob(str(tmp_path / "b" / "model_checkpoint_*_last.p"))[0])
    c = load_checkpoint(glob.glob(str(tmp_path / "c" / "model_checkpoint_*_last.p"))[0])
    assert b["it"] == c["it"] == 5
    for key in c["model"]:
        np.testing.assert_array_equal(b["model"][key], c["model"][key])


def test_a_generator_that_reads_regions_is_refused():
    params = _params("attention", scst=1, init_model_from="x.p")
    with pytest.raises(NeuralTalkError, match="reads regions, which SCST does not carry"):
        scst.check_params(params)
