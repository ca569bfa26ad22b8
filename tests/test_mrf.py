"""The MRF's dynamic programme against brute force, and snippets."""
import itertools

import numpy as np
import pytest

from neuraltalk.mrf import energy, snippet_accuracy, snippets, viterbi


@pytest.mark.parametrize("seed", range(30))
def test_viterbi_finds_the_brute_force_optimum(seed):
    rng = np.random.default_rng(seed)
    n_words, n_regions = int(rng.integers(1, 6)), int(rng.integers(1, 5))
    unary = rng.normal(size=(n_words, n_regions))
    beta = float(rng.choice([0.0, 0.3, 1.0, 5.0]))
    best = max(energy(unary, beta, np.array(a))
               for a in itertools.product(range(n_regions), repeat=n_words))
    a = viterbi(unary, beta)
    assert energy(unary, beta, a) == pytest.approx(best, abs=1e-12)


def test_large_beta_gives_one_snippet_and_zero_beta_the_best_region_per_word():
    unary = np.array([[1.0, 0.0], [0.0, 0.2], [0.9, 0.0]])
    assert viterbi(unary, 0.0).tolist() == [0, 1, 0]
    assert viterbi(unary, 10.0).tolist() == [0, 0, 0]


def test_snippets_are_runs_of_words_with_one_region():
    assert snippets(["a", "red", "ball", "and", "a", "box"], [0, 1, 1, 0, 2, 2]) == \
        [(0, "a"), (1, "red ball"), (0, "and"), (2, "a box")]


def test_snippet_accuracy_counts_object_words_only():
    items = [{"assignment": [0, 1, 1, 2], "token_region": [-1, 1, 2, 2]}]
    assert snippet_accuracy(items) == pytest.approx(2 / 3)
