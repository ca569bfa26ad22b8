"""Retrieval ranks and recalls against plain loops; chunking changes nothing."""
import numpy as np
import pytest

from neuraltalk.data.batches import Batch
from neuraltalk.metrics.retrieval import ranks, recall_table
from neuraltalk.models import brnn


def test_ranks_equal_a_plain_loop():
    rng = np.random.default_rng(0)
    n_images, per = 7, 3
    S = rng.normal(size=(n_images, n_images * per))
    sentence_image = np.repeat(np.arange(n_images), per)
    i2t, t2i = ranks(S, sentence_image)
    for j in range(S.shape[1]):
        order = np.argsort(-S[:, j])
        assert t2i[j] == 1 + list(order).index(sentence_image[j])
    for i in range(n_images):
        order = list(np.argsort(-S[i]))
        assert i2t[i] == 1 + min(order.index(j) for j in np.flatnonzero(sentence_image == i))


def test_ties_count_against_the_right_answer():
    # a dead model scores everything alike: it must rank last, not first
    S = np.zeros((4, 12))
    i2t, t2i = ranks(S, np.repeat(np.arange(4), 3))
    assert t2i.tolist() == [4] * 12
    assert i2t.tolist() == [10] * 4  # behind the 9 sentences of the other images
    S = np.array([[2.0, 1.0, 2.0, 0.0], [0.0, 2.0, 2.0, 1.0]])
    i2t, t2i = ranks(S, np.array([0, 0, 1, 1]))
    assert i2t.tolist() == [2, 2] and t2i.tolist() == [1, 2, 2, 1]


def test_recall_table():
    table = recall_table(np.array([1, 2, 6, 11]), np.array([1, 1, 1, 20]))
    assert table["i2t"] == {"R@1": 0.25, "R@5": 0.5, "R@10": 0.75, "medr": 4.0}
    assert table["t2i"]["R@1"] == 0.75 and table["t2i"]["medr"] == 1.0


@pytest.mark.parametrize("kind", ["max", "defrag"])
def test_score_matrix_in_chunks_equals_the_batch_scores(kind):
    rng = np.random.default_rng(1)
    params = {"embedding_size": 8, "word_vector_size": 6, "score": kind}
    model = brnn.init(params, 5, 12, rng, dtype=np.float64)
    K, R, T = 6, 4, 7
    feats = rng.normal(size=(K, R, 5))
    counts = rng.integers(1, R + 1, size=K)
    lengths = rng.integers(1, T + 1, size=K)
    words = rng.integers(1, 12, size=(K, T)) * (np.arange(T) < lengths[:, None])
    cost, _ = brnn.loss(model, Batch(None, words, lengths, None, None, feats, counts), params,
                        return_scores=True)
    for chunk in (1, 10, 10000):  # one sentence per chunk, a few, all at once
        S = brnn.score_matrix(model, params, feats, counts, words, lengths, chunk_words=chunk)
        np.testing.assert_allclose(S, cost["S"], rtol=1e-5)

