"""score_matrix (block by block of images, one reused buffer) against the training score."""
import numpy as np
import pytest

from neuraltalk.models import brnn


@pytest.mark.parametrize("kind", ["max", "sum"])
@pytest.mark.parametrize("chunk_words, block_bytes", [(4096, 1 << 30), (10, 1), (3, 200)])
def test_score_matrix_in_blocks_equals_image_sentence_scores(monkeypatch, kind, chunk_words,
                                                             block_bytes):
    monkeypatch.setattr(brnn, "BLOCK_BYTES", block_bytes)  # one image a block, a few, all
    rng = np.random.default_rng(1)
    params = {"embedding_size": 16, "word_vector_size": 8, "score": kind}
    model = brnn.init(params, 12, 30, rng)
    K, R = 9, 5
    feats = rng.standard_normal((K, R, 12)).astype(np.float32)
    counts = np.array([5, 0, 3, 5, 1, 4, 5, 2, 5])  # fewer regions than R, and none
    words = rng.integers(1, 30, (23, 7))
    lengths = rng.integers(0, 8, 23)
    lengths[:2] = [0, 7]
    sentences, _ = brnn.sentence_vectors(model, words, lengths)
    expected, _ = brnn.image_sentence_scores(brnn.embed_regions(model, feats), counts, sentences,
                                             kind)
    got = brnn.score_matrix(model, params, feats, counts, words, lengths, chunk_words=chunk_words)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    if kind == "max":  # an image without regions scores -inf against every nonempty sentence
        assert np.isneginf(got[1, lengths > 0]).all()
