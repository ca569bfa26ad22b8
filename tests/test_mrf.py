"""The MRF's dynamic programme against brute force, and snippets."""
import itertools

import numpy as np
import pytest

from neuraltalk import mrf as mrf_command
from neuraltalk.alignment.mrf import energy, snippet_accuracy, snippets, viterbi


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


def test_by_image_lists_each_regions_snippets():
    from neuraltalk.alignment.mrf import by_image
    boxes = [[0, 0, 64, 64], [1, 1, 9, 9], [20, 20, 40, 40]]
    items = [{"imgid": 3, "filename": "a.png", "filepath": "", "boxes": boxes,
              "tokens": ["a", "red", "ball", "and", "a", "box"],
              "assignment": [0, 1, 1, 0, 2, 2],
              "snippets": [(0, "a"), (1, "red ball"), (0, "and"), (2, "a box")]},
             {"imgid": 3, "filename": "a.png", "filepath": "", "boxes": boxes,
              "tokens": ["a", "box"], "assignment": [2, 2], "snippets": [(2, "a box")]},
             {"imgid": 5, "filename": "b.png", "filepath": "", "boxes": boxes[:1],
              "tokens": ["grey"], "assignment": [0], "snippets": [(0, "grey")]}]
    images = by_image(items)
    assert [i["imgid"] for i in images] == [3, 5]
    assert [r["snippets"] for r in images[0]["regions"]] == [["a", "and"], ["red ball"],
                                                             ["a box", "a box"]]
    assert images[0]["regions"][2]["box"] == [20, 20, 40, 40]
    assert len(images[0]["sentences"]) == 2 and images[1]["regions"][0]["snippets"] == ["grey"]


# ---- the command's flags, refused before any work ------------------------------------------

def _error(capsys, tmp_path, *flags):
    from neuraltalk.train.checkpoint import save_checkpoint
    path = str(tmp_path / "fake.p")
    save_checkpoint(path, {"model": {}, "params": {"model": "brnn", "dataset": "x"}})
    assert mrf_command.main([path] + list(flags)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    return err


@pytest.mark.parametrize("value", ["nan", "-0.5", "inf"])
def test_beta_must_be_a_finite_non_negative_number(tmp_path, capsys, value):
    err = _error(capsys, tmp_path, "--beta", value, "--out", str(tmp_path / "o"))
    assert "--beta %s" % value in err and "finite number >= 0" in err


@pytest.mark.parametrize("value", ["0", "-2"])
def test_max_images_must_be_positive_or_minus_one(tmp_path, capsys, value):
    err = _error(capsys, tmp_path, "--max_images", value, "--out", str(tmp_path / "o"))
    assert "--max_images %s: must be positive, or -1 for all" % value in err


def test_an_out_that_is_a_file_is_one_clear_error(tmp_path, capsys):
    (tmp_path / "taken").write_text("a file")
    err = _error(capsys, tmp_path, "--out", str(tmp_path / "taken"))
    assert "taken is a file, not a folder" in err
