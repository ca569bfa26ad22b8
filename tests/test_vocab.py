"""neuraltalk.data.vocab.build_vocab: NeuralTalk's preProBuildWordVocab."""
import numpy as np

from neuraltalk.data.vocab import build_vocab

CORPUS = [["a", "dog", "runs"], ["a", "cat"], ["the", "dog", "jumps", "a"], ["zebra"]]
# counts: a 3, dog 2, runs 1, cat 1, the 1, jumps 1, zebra 1; 4 sentences -> '.' 4


def test_threshold_keeps_words_seen_at_least_that_often():
    wordtoix, ixtoword, bias = build_vocab(CORPUS, word_count_threshold=2)
    assert wordtoix == {"#START#": 0, "a": 1, "dog": 2}
    assert ixtoword == {0: ".", 1: "a", 2: "dog"}
    # log(counts / total) - max: counts '.' 4, a 3, dog 2
    np.testing.assert_allclose(bias, [0.0, np.log(3 / 4), np.log(2 / 4)], rtol=0, atol=1e-15)


def test_threshold_one_keeps_every_word_in_order_of_first_appearance():
    wordtoix, ixtoword, bias = build_vocab(CORPUS, word_count_threshold=1)
    words = ["a", "dog", "runs", "cat", "the", "jumps", "zebra"]
    assert wordtoix == dict({"#START#": 0}, **{w: i + 1 for i, w in enumerate(words)})
    assert ixtoword == {i: w for i, w in enumerate(["."] + words)}
    counts = np.array([4, 3, 2, 1, 1, 1, 1, 1], dtype=np.float64)
    np.testing.assert_allclose(bias, np.log(counts / counts.sum()) - np.log(4 / 14), atol=1e-15)
    assert bias.shape == (8,) and bias.dtype == np.float64 and bias.max() == 0.0


def test_end_token_is_counted_once_per_sentence_even_an_empty_one():
    _, ixtoword, bias = build_vocab([["x"], [], ["x", "x"]], word_count_threshold=1)
    assert ixtoword == {0: ".", 1: "x"}
    np.testing.assert_allclose(bias, [0.0, 0.0], atol=1e-15)  # '.' 3, x 3


def test_a_threshold_above_every_count_leaves_only_start_and_end():
    wordtoix, ixtoword, bias = build_vocab(iter(CORPUS), word_count_threshold=10)
    assert wordtoix == {"#START#": 0} and ixtoword == {0: "."}
    np.testing.assert_array_equal(bias, [0.0])


def test_vocabulary_indices_invert_each_other():
    wordtoix, ixtoword, _ = build_vocab(CORPUS, word_count_threshold=1)
    assert all(wordtoix[ixtoword[i]] == i for i in range(1, len(ixtoword)))
    assert len(wordtoix) == len(ixtoword)
