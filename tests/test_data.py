"""The data layer: dataset.json, feature files, vocabulary, batches."""
import json
import os

import h5py
import numpy as np
import pytest
import scipy.io

from neuraltalk.batches import SentenceTable, encode_sentences
from neuraltalk.dataset import load_dataset
from neuraltalk.errors import NeuralTalkError
from neuraltalk.feature_files import load_features, save_features_mat
from neuraltalk.vocab import build_vocab

SENTENCES = {
    "train": [["a", "dog", "runs"], ["a", "dog", "sits"], ["the", "cat"], ["a", "cat", "runs"]],
    "val": [["a", "dog"]],
    "test": [["the", "dog", "runs", "fast"]],
    "restval": [["a", "bird"]],
}


def _write_dataset(folder, feats=None, images=None):
    os.makedirs(folder, exist_ok=True)
    if images is None:
        images, sentid = [], 0
        for split, sents in SENTENCES.items():
            for tokens in sents:
                images.append({"filename": "%d.jpg" % len(images), "imgid": len(images),
                               "split": split, "sentences": [
                                   {"tokens": tokens, "raw": " ".join(tokens),
                                    "imgid": len(images), "sentid": sentid},
                                   {"tokens": tokens[::-1], "raw": "", "imgid": len(images),
                                    "sentid": sentid + 1}]})
                sentid += 2
    with open(os.path.join(folder, "dataset.json"), "w") as f:
        json.dump({"dataset": "tiny", "images": images}, f)
    if feats is None:
        feats = np.arange(len(images) * 3, dtype=np.float32).reshape(len(images), 3)
    np.save(os.path.join(folder, "vgg_feats.npy"), feats)
    return folder


# ---- dataset.json ----------------------------------------------------------------------

def test_loads_by_name_under_data_root_and_by_path(tmp_path):
    _write_dataset(str(tmp_path / "tiny"))
    by_name = load_dataset("tiny", data_root=str(tmp_path))
    by_path = load_dataset(str(tmp_path / "tiny"))
    assert len(by_name.images) == len(by_path.images) == 7
    assert by_name.feature_width == 3 and by_name.name == "tiny"
    assert [len(by_name.split(s)) for s in ("train", "val", "test")] == [4, 1, 1]


def test_fold_restval_puts_restval_into_train(tmp_path):
    _write_dataset(str(tmp_path / "tiny"))
    assert len(load_dataset(str(tmp_path / "tiny"), fold_restval=True).split("train")) == 5
    assert len(load_dataset(str(tmp_path / "tiny")).split("train")) == 4


def _load_error(folder):
    with pytest.raises(NeuralTalkError) as e:
        load_dataset(folder)
    return str(e.value)


def test_missing_dataset_names_the_file_and_what_to_do(tmp_path):
    msg = _load_error(str(tmp_path / "flickr8k"))
    assert "dataset.json does not exist" in msg and "--dataset shapes" in msg


def test_invalid_json_gives_line_and_column(tmp_path):
    folder = _write_dataset(str(tmp_path / "tiny"))
    with open(os.path.join(folder, "dataset.json"), "w") as f:
        f.write('{"images": [\n  {"imgid": 0,,}]}')
    msg = _load_error(folder)
    assert "not valid JSON" in msg and "line 2" in msg


def test_missing_key_names_the_image(tmp_path):
    folder = _write_dataset(str(tmp_path / "tiny"),
                            images=[{"imgid": 0, "split": "train"}], feats=np.ones((1, 2)))
    assert "image 0 has no 'sentences'" in _load_error(folder)


def test_imgid_out_of_range(tmp_path):
    images = [{"imgid": 5, "split": "train", "sentences": []}]
    assert "imgid 5, outside 0..0" in _load_error(
        _write_dataset(str(tmp_path / "t"), images=images, feats=np.ones((1, 2))))


def test_duplicate_imgid_and_sentid(tmp_path):
    images = [{"imgid": 0, "split": "train", "sentences": []},
              {"imgid": 0, "split": "train", "sentences": []}]
    assert "imgid 0 appears twice" in _load_error(
        _write_dataset(str(tmp_path / "a"), images=images, feats=np.ones((2, 2))))
    images = [{"imgid": 0, "split": "train", "sentences": [{"tokens": ["a"], "sentid": 3}]},
              {"imgid": 1, "split": "train", "sentences": [{"tokens": ["b"], "sentid": 3}]}]
    assert "sentid 3 appears twice" in _load_error(
        _write_dataset(str(tmp_path / "b"), images=images, feats=np.ones((2, 2))))


def test_empty_split_is_an_error_when_asked_for(tmp_path):
    images = [{"imgid": 0, "split": "train", "sentences": [{"tokens": ["a"]}]}]
    data = load_dataset(_write_dataset(str(tmp_path / "t"), images=images, feats=np.ones((1, 2))))
    with pytest.raises(NeuralTalkError, match="the val split is empty"):
        data.split("val")


def test_feature_count_must_match_the_images(tmp_path):
    folder = _write_dataset(str(tmp_path / "tiny"), feats=np.ones((6, 3), np.float32))
    assert "6 feature rows but" in _load_error(folder) and "7 images" in _load_error(folder)


# ---- feature files -----------------------------------------------------------------------

def test_real_matlab_v5_file_loads(example_images):
    feats = load_features(os.path.join(example_images, "vgg_feats.mat"))
    raw = scipy.io.loadmat(os.path.join(example_images, "vgg_feats.mat"))["feats"]
    assert feats.shape == (16, 4096) and raw.shape == (4096, 16)
    np.testing.assert_array_equal(feats[np.arange(16)], raw.T)
    assert feats[[3, 0]].dtype == np.float32


def _v73(path, feats_nd):
    """A MATLAB v7.3 file as MATLAB writes it: HDF5 with a 512-byte MATLAB header, the
    D x N matrix stored as an (N, D) dataset."""
    with h5py.File(path, "w", userblock_size=512) as f:
        f["feats"] = feats_nd
    with open(path, "r+b") as f:
        f.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 .")


@pytest.mark.parametrize("fmt", ["v5", "v7.3", "npy", "h5"])
def test_every_format_gives_the_same_rows(tmp_path, fmt):
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(9, 5)).astype(np.float32)
    if fmt == "v5":
        path = str(tmp_path / "f.mat")
        save_features_mat(path, feats)
        assert scipy.io.loadmat(path)["feats"].shape == (5, 9)
    elif fmt == "v7.3":
        path = str(tmp_path / "f.mat")
        _v73(path, feats)
    elif fmt == "npy":
        path = str(tmp_path / "f.npy")
        np.save(path, feats)
    else:
        path = str(tmp_path / "f.h5")
        with h5py.File(path, "w") as f:
            f["feats"] = feats
    rows = load_features(path)
    assert rows.shape == (9, 5)
    index = np.array([4, 1, 4, 8, 0])  # unsorted, repeated: h5py alone refuses this
    np.testing.assert_array_equal(rows[index], feats[index])
    np.testing.assert_array_equal(rows[2], feats[2])


def test_nan_features_are_refused(tmp_path):
    feats = np.ones((4, 3), np.float32)
    feats[2, 1] = np.nan
    np.save(tmp_path / "f.npy", feats)
    rows = load_features(str(tmp_path / "f.npy"))
    rows[[0, 1]]  # clean rows read fine
    with pytest.raises(NeuralTalkError, match="f.npy holds NaN or infinite values \\(rows 2\\)"):
        rows[[1, 2]]
    with pytest.raises(NeuralTalkError, match="NaN"):
        rows.check_finite()


def test_mat_file_without_feats_and_unknown_extension(tmp_path):
    scipy.io.savemat(str(tmp_path / "x.mat"), {"other": np.ones((2, 2))})
    with pytest.raises(NeuralTalkError, match="no variable 'feats'"):
        load_features(str(tmp_path / "x.mat"))
    (tmp_path / "x.csv").write_text("1,2")
    with pytest.raises(NeuralTalkError, match="unknown feature file type"):
        load_features(str(tmp_path / "x.csv"))


def test_npy_rows_are_read_on_demand_not_loaded(tmp_path):
    feats = np.arange(400, dtype=np.float32).reshape(100, 4)
    np.save(tmp_path / "f.npy", feats)
    rows = load_features(str(tmp_path / "f.npy"))
    assert not isinstance(rows._array, np.ndarray)
    np.testing.assert_array_equal(rows[np.array([5, 6, 7, 50, 99, 0])],
                                  feats[[5, 6, 7, 50, 99, 0]])
    np.save(tmp_path / "f.npy", np.asfortranarray(feats))
    with pytest.raises(NeuralTalkError, match="Fortran order"):
        load_features(str(tmp_path / "f.npy"))


# ---- vocabulary --------------------------------------------------------------------------

def test_vocabulary_as_neuraltalk_builds_it():
    sents = [["a", "dog"], ["a", "cat"], ["a", "dog", "runs"]]
    wordtoix, ixtoword, bias = build_vocab(sents, word_count_threshold=2)
    assert wordtoix == {"#START#": 0, "a": 1, "dog": 2}
    assert ixtoword == {0: ".", 1: "a", 2: "dog"}
    # counts: '.' once per sentence = 3, a = 3, dog = 2; log-frequencies minus their max
    expected = np.log(np.array([3, 3, 2]) / 8.0)
    np.testing.assert_allclose(bias, expected - expected.max())


# ---- batches -----------------------------------------------------------------------------

def test_encode_drops_unknown_words_and_pads():
    words, lengths = encode_sentences([["a", "zebra", "dog"], [], ["dog"]],
                                      {"#START#": 0, "a": 1, "dog": 2})
    np.testing.assert_array_equal(words, [[1, 2], [0, 0], [2, 0]])
    np.testing.assert_array_equal(lengths, [2, 0, 1])


def test_sampled_batches_are_padded_trimmed_and_repeatable(tmp_path):
    data = load_dataset(_write_dataset(str(tmp_path / "tiny")))
    wordtoix, _, _ = build_vocab([s["tokens"] for img in data.split("train")
                                  for s in img["sentences"]], 1)
    table = SentenceTable(data, wordtoix, "train")
    a = table.sample(50, np.random.default_rng(7))
    b = table.sample(50, np.random.default_rng(7))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert a.words.shape == (50, a.lengths.max()) and a.feats.shape == (50, 3)
    assert (a.words[np.arange(a.words.shape[1]) >= a.lengths[:, None]] == 0).all()
    np.testing.assert_array_equal(a.feats, data.features[a.image_ids])
    assert set(a.image_ids) <= {img["imgid"] for img in data.split("train")}
    # each sentence belongs to its image
    for imgid, sentid in zip(a.image_ids, a.sent_ids):
        assert sentid in [s["sentid"] for s in data.images[imgid]["sentences"]]


def test_sampling_picks_images_uniformly_then_sentences(tmp_path):
    images = [{"imgid": 0, "split": "train", "sentences": [{"tokens": ["a"]}] * 9},
              {"imgid": 1, "split": "train", "sentences": [{"tokens": ["b"]}]}]
    data = load_dataset(_write_dataset(str(tmp_path / "t"), images=images,
                                       feats=np.ones((2, 2), np.float32)))
    batch = SentenceTable(data, {"#START#": 0, "a": 1, "b": 2}, "train").sample(
        4000, np.random.default_rng(0))
    assert abs(np.mean(batch.image_ids == 1) - 0.5) < 0.03  # not 1 in 10


def test_evaluation_batches_cover_every_sentence_once_in_order(tmp_path):
    data = load_dataset(_write_dataset(str(tmp_path / "tiny")))
    table = SentenceTable(data, {"#START#": 0, "a": 1}, "train")
    batches = list(table.iter_batches(3))
    ids = np.concatenate([b.sent_ids for b in batches])
    np.testing.assert_array_equal(ids, np.arange(8))
    limited = np.concatenate([b.image_ids for b in table.iter_batches(3, max_images=2)])
    np.testing.assert_array_equal(limited, [0, 0, 1, 1])
