"""Greedy and beam search: NeuralTalk's own predictions, brute force, finished beams."""
import json
import os

import numpy as np
import pytest
import scipy.io

from neuraltalk.models import captioning
from neuraltalk.train.checkpoint import load_checkpoint
from neuraltalk.captions.decoding import beam_search, caption_text

from stepwise import best_sequence_by_brute_force, greedy


def _neuraltalk(neuraltalk_checkpoint_dir, example_images):
    c = load_checkpoint(os.path.join(neuraltalk_checkpoint_dir, "neuraltalk_lstm.p"))
    feats = scipy.io.loadmat(os.path.join(example_images, "vgg_feats.mat"))["feats"].T
    return c, feats


@pytest.mark.parametrize("beam_size", [1, 7])
def test_reproduces_neuraltalk_predictions(neuraltalk_checkpoint_dir, example_images, beam_size):
    c, feats = _neuraltalk(neuraltalk_checkpoint_dir, example_images)
    expected = json.load(open(os.path.join(neuraltalk_checkpoint_dir,
                                           "expected_beam%d.json" % beam_size)))["imgblobs"]
    results = beam_search(c["model"], c["params"], feats, beam_size)
    for beams, blob in zip(results, expected):
        logprob, sequence = beams[0]
        assert caption_text(c["ixtoword"], sequence) == blob["candidate"]["text"]
        assert logprob == pytest.approx(blob["candidate"]["logprob"], abs=1e-9)


def _random_model(generator, rng, V=9):
    params = {"generator": generator, "image_encoding_size": 8, "word_encoding_size": 8,
              "hidden_size": 8, "tanhC_version": 0, "rnn_relu_encoders": 0, "rnn_feed_once": 0}
    model = captioning.init_model(params, 6, V, np.zeros(V), rng, dtype=np.float64)
    for k in model:
        model[k] = rng.normal(scale=1.0, size=model[k].shape)
    return model, params


@pytest.mark.parametrize("generator", ["lstm", "rnn"])
def test_beam_size_one_is_exactly_greedy(generator):
    rng = np.random.default_rng(0)
    model, params = _random_model(generator, rng)
    feats = rng.normal(size=(12, 6))
    results = beam_search(model, params, feats, beam_size=1)
    reference = greedy(model, params, captioning.start(model, feats, params), len(feats))
    for (logprob, words, _), beams in zip(reference, results):
        assert beams[0][1] == words and beams[0][0] == pytest.approx(logprob, abs=1e-12)


@pytest.mark.parametrize("generator", ["lstm", "rnn"])
def test_wide_beam_finds_the_best_sequence_found_by_brute_force(generator):
    # with beam_size >= V every sequence up to max_steps is kept, so the beam's best
    # equals the best of all sequences of length <= 3 (finished or cut at 3 steps)
    V, steps = 4, 3
    rng = np.random.default_rng(1)
    model, params = _random_model(generator, rng, V=V)
    feats = rng.normal(size=(3, 6))
    for f in feats:
        best = best_sequence_by_brute_force(model, params, f, V, steps)
        beams = beam_search(model, params, f[None], beam_size=V ** steps, max_steps=steps)[0]
        assert beams[0][1] == best[1] and beams[0][0] == pytest.approx(best[0], abs=1e-12)
        assert [b[0] for b in beams] == sorted((b[0] for b in beams), reverse=True)


def test_finished_beams_stay_and_are_not_expanded():
    rng = np.random.default_rng(2)
    model, params = _random_model("lstm", rng, V=5)
    model["bd"][0, 0] = 3.0  # END is likely early: beams finish at different steps
    results = beam_search(model, params, rng.normal(size=(20, 6)), beam_size=5, max_steps=8)
    finished_early = 0
    for beams in results:
        seqs = [tuple(s) for _, s in beams]
        assert len(set(seqs)) == len(seqs)  # no beam duplicated by re-expansion
        for _, s in beams:
            assert 0 not in s[:-1]  # nothing follows END
            finished_early += s[-1] == 0 and len(s) < 8
    assert finished_early > 0
