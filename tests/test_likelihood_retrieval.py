"""Retrieval by likelihood, for every caption generator: the score matrix against a
brute-force loop over (image, sentence) pairs, and the table and retrieval.json that
eval_sentence_predictions.py --retrieval writes, with the alignment model's keys."""
import json

import numpy as np
import pytest

from neuraltalk.captions import retrieval
from neuraltalk.data.batches import Batch
from neuraltalk.metrics.retrieval import ranks, recall_table
from neuraltalk.models import captioning

D, V = 6, 9
LENGTHS = np.array([3, 0, 5, 2, 5, 1, 4])
GENERATORS = {
    "lstm": {"tanhC_version": 0},
    "rnn": {"rnn_relu_encoders": 0, "rnn_feed_once": 0},
    "mrnn": {"mrnn_embedding_size": 3, "mrnn_multimodal_size": 7},
    "lrcn": {"lrcn_variant": "2f"},
}


def _setup(generator, seed=0):
    rng = np.random.default_rng(seed)
    params = dict({"generator": generator, "image_encoding_size": 5, "word_encoding_size": 5,
                   "hidden_size": 5}, **GENERATORS[generator])
    model = captioning.init_model(params, D, V, np.zeros(V), rng, dtype=np.float64)
    for k in model:
        model[k] = rng.normal(scale=0.7, size=model[k].shape)
    words = np.zeros((len(LENGTHS), LENGTHS.max()), np.int32)
    for s, n in enumerate(LENGTHS):
        words[s, :n] = rng.integers(1, V, size=n)
    return model, params, rng.normal(size=(4, D)), words


def _brute_force(model, params, feats, words):
    """Each pair's log-likelihood as its own one-sentence batch's cost, over n + 1."""
    S = np.empty((len(feats), len(LENGTHS)))
    for i in range(len(feats)):
        for s, n in enumerate(LENGTHS):
            one = Batch(feats[i:i + 1], words[s:s + 1], LENGTHS[s:s + 1], None, None)
            cost, _ = captioning.batch_cost(model, one, params, compute_grads=False)
            S[i, s] = -cost["loss_cost"] / (n + 1)
    return S


@pytest.mark.parametrize("generator", sorted(GENERATORS))
def test_likelihood_matrix_equals_a_loop_over_every_image_sentence_pair(generator):
    model, params, feats, words = _setup(generator)
    S = retrieval.likelihood_matrix(model, params, feats, words, LENGTHS, max_pairs=10)
    np.testing.assert_allclose(S, _brute_force(model, params, feats, words), rtol=1e-12)


def test_start_and_step_on_every_pair_agree_with_the_m_rnns_own_vectorised_matrix():
    from neuraltalk.models import mrnn
    model, params, feats, words = _setup("mrnn")
    own = mrnn.likelihood_matrix(model, params, feats, words, LENGTHS, image_chunk=3)
    generic = retrieval.pairwise_likelihood(mrnn, model, params, feats, words, LENGTHS)
    np.testing.assert_allclose(own, generic, rtol=1e-12)


class _Table:
    """The parts of a SentenceTable retrieval reads: 3 images of 2, 3 and 2 sentences."""

    def __init__(self, feats, words):
        self.dataset = type("Dataset", (), {"features": np.vstack([feats[:3], feats])})()
        self.image_ids = np.array([3, 4, 5])  # rows of dataset.features
        self.counts = np.array([2, 3, 2])
        self.offsets = np.array([0, 2, 5])
        self.words, self.lengths = words, LENGTHS


def test_retrieval_table_ranks_by_likelihood_with_the_alignment_models_keys():
    model, params, feats, words = _setup("lstm", seed=1)
    table = _Table(feats, words)
    result = retrieval.retrieval_table(model, params, table, max_images=3)
    S = _brute_force(model, params, feats[:3], words)
    expected = recall_table(*ranks(S, np.repeat(np.arange(3), table.counts)))
    assert result == expected
    assert set(result) == {"i2t", "t2i"}
    assert set(result["i2t"]) == {"R@1", "R@5", "R@10", "medr"}
    # two images: only their 5 sentences are ranked
    two = retrieval.retrieval_table(model, params, table, max_images=2)
    S2 = _brute_force(model, params, feats[:2], words)[:, :5]
    assert two == recall_table(*ranks(S2, np.repeat(np.arange(2), [2, 3])))


def test_report_writes_retrieval_json(tmp_path, capsys):
    result = {"i2t": {"R@1": 0.5, "R@5": 1.0, "R@10": 1.0, "medr": 1.5},
              "t2i": {"R@1": 0.25, "R@5": 1.0, "R@10": 1.0, "medr": 2.0}}
    retrieval.report(result, 4, "test", 0.1, str(tmp_path), "cv/x.p", "by likelihood (lstm)")
    assert json.load(open(tmp_path / "retrieval.json")) == result
    assert "retrieval by likelihood (lstm) on 4 images" in capsys.readouterr().out
