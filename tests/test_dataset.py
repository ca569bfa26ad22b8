"""neuraltalk.data.dataset: Karpathy's dataset.json with its feature file, and its errors."""
import json
import os

import h5py
import numpy as np
import pytest

from neuraltalk.data.dataset import load_dataset
from neuraltalk.errors import NeuralTalkError

SENTENCES = {
    "train": [["a", "dog", "runs"], ["a", "dog", "sits"], ["the", "cat"], ["a", "cat", "runs"]],
    "val": [["a", "dog"]],
    "test": [["the", "dog", "runs", "fast"]],
    "restval": [["a", "bird"]],
}


def karpathy_images():
    """Seven images (train 4, val 1, test 1, restval 1), two sentences each."""
    images, sentid = [], 0
    for split, sents in SENTENCES.items():
        for tokens in sents:
            imgid = len(images)
            images.append({"filename": "%d.jpg" % imgid, "imgid": imgid, "split": split,
                           "sentids": [sentid, sentid + 1], "sentences": [
                               {"tokens": tokens, "raw": " ".join(tokens), "imgid": imgid,
                                "sentid": sentid},
                               {"tokens": tokens[::-1], "raw": "", "imgid": imgid,
                                "sentid": sentid + 1}]})
            sentid += 2
    return images


def write_dataset(folder, images=None, feats=None, feature_file="vgg_feats.npy"):
    """A dataset folder: dataset.json plus an .npy feature file (row i = [3i, 3i+1, 3i+2])."""
    os.makedirs(folder, exist_ok=True)
    images = karpathy_images() if images is None else images
    with open(os.path.join(folder, "dataset.json"), "w") as f:
        json.dump({"dataset": "tiny", "images": images}, f)
    if feats is None:
        feats = np.arange(len(images) * 3, dtype=np.float32).reshape(len(images), 3)
    if feature_file:
        np.save(os.path.join(folder, feature_file), feats)
    return str(folder)


def load_error(folder, **kwargs):
    with pytest.raises(NeuralTalkError) as e:
        load_dataset(str(folder), **kwargs)
    return str(e.value)


# ---- loading -----------------------------------------------------------------------------

def test_a_name_is_looked_up_under_data_root_and_a_path_is_used_as_is(tmp_path):
    write_dataset(tmp_path / "tiny")
    by_name = load_dataset("tiny", data_root=str(tmp_path))
    by_path = load_dataset(str(tmp_path / "tiny"), data_root=str(tmp_path / "elsewhere"))
    assert by_name.folder == by_path.folder == str(tmp_path / "tiny")
    assert len(by_name.images) == len(by_path.images) == 7
    assert by_name.name == "tiny" and by_name.feature_width == 3 and by_name.cnn is None


def test_images_are_indexed_by_imgid_whatever_their_order_in_the_file(tmp_path):
    images = karpathy_images()[::-1]
    data = load_dataset(write_dataset(tmp_path / "t", images=images))
    assert [img["imgid"] for img in data.images] == list(range(7))
    assert data.images[2]["filename"] == "2.jpg"


def test_splits_in_imgid_order_and_features_by_imgid(tmp_path):
    data = load_dataset(write_dataset(tmp_path / "t"))
    assert [img["imgid"] for img in data.split("train")] == [0, 1, 2, 3]
    assert [img["imgid"] for img in data.split("val")] == [4]
    assert [img["imgid"] for img in data.split("test")] == [5]
    assert [img["imgid"] for img in data.split("restval")] == [6]
    np.testing.assert_array_equal(data.features[np.array([5, 0])], [[15, 16, 17], [0, 1, 2]])
    assert data.features[np.array([5, 0])].dtype == np.float32


def test_fold_restval_puts_restval_into_train(tmp_path):
    folder = write_dataset(tmp_path / "t")
    folded = load_dataset(folder, fold_restval=True)
    assert [img["imgid"] for img in folded.split("train")] == [0, 1, 2, 3, 6]
    assert len(folded.split("restval")) == 1
    assert len(load_dataset(folder).split("train")) == 4


def test_cnn_is_read_from_features_json_beside_the_features(tmp_path):
    folder = write_dataset(tmp_path / "t")
    with open(os.path.join(folder, "features.json"), "w") as f:
        json.dump({"cnn": "efficientnet-lite0"}, f)
    assert load_dataset(folder).cnn == "efficientnet-lite0"


def test_features_path_overrides_the_search_and_width_comes_from_the_file(tmp_path):
    folder = write_dataset(tmp_path / "t")
    other = str(tmp_path / "wide.h5")
    with h5py.File(other, "w") as f:
        f["feats"] = np.ones((7, 11), np.float32)
    data = load_dataset(folder, features_path=other)
    assert data.feature_width == 11 and data.features.shape == (7, 11)


def test_feature_files_are_searched_mat_then_npy_then_h5(tmp_path):
    folder = write_dataset(tmp_path / "t", feature_file=None)
    with h5py.File(os.path.join(folder, "vgg_feats.h5"), "w") as f:
        f["feats"] = np.ones((7, 5), np.float32)
    assert load_dataset(folder).feature_width == 5
    np.save(os.path.join(folder, "vgg_feats.npy"), np.ones((7, 4), np.float32))
    assert load_dataset(folder).feature_width == 4


def test_shapes_is_generated_when_its_folder_is_missing(tmp_path, monkeypatch):
    import neuraltalk.demo.dataset
    calls = []

    def fake_ensure_shapes(folder, seed=0):
        calls.append(folder)
        write_dataset(folder)

    monkeypatch.setattr(neuraltalk.demo.dataset, "ensure_shapes", fake_ensure_shapes)
    data = load_dataset("shapes", data_root=str(tmp_path))
    assert calls == [os.path.join(str(tmp_path), "shapes")]
    assert len(data.images) == 7
    load_dataset("shapes", data_root=str(tmp_path))
    assert len(calls) == 1  # present now: not generated again


@pytest.mark.slow
def test_the_real_demo_dataset_loads(shapes_root):
    data = load_dataset("shapes", data_root=shapes_root)
    assert data.cnn == "shapes-extractor" and data.features.shape[0] == len(data.images)
    assert all(len(data.split(s)) > 0 for s in ("train", "val", "test"))


# ---- errors ------------------------------------------------------------------------------

def test_missing_folder_says_how_to_get_the_datasets(tmp_path):
    msg = load_error("flickr8k", data_root=str(tmp_path))
    assert os.path.join(str(tmp_path), "flickr8k", "dataset.json") + " does not exist" in msg
    assert "there is no folder" in msg
    assert "Flickr8k, Flickr30k or COCO" in msg and "--dataset shapes" in msg


def test_folder_without_dataset_json(tmp_path):
    (tmp_path / "mine").mkdir()
    msg = load_error(tmp_path / "mine")
    assert os.path.join(str(tmp_path / "mine"), "dataset.json") + " does not exist" in msg
    assert "no folder" not in msg


def test_folder_without_a_feature_file(tmp_path):
    msg = load_error(write_dataset(tmp_path / "t", feature_file=None))
    assert "no feature file in" in msg and "vgg_feats.mat, vgg_feats.npy, vgg_feats.h5" in msg


def test_invalid_json_gives_the_file_line_and_column(tmp_path):
    folder = write_dataset(tmp_path / "t")
    with open(os.path.join(folder, "dataset.json"), "w") as f:
        f.write('{"images": [\n  {"imgid": 0,,}]}')
    msg = load_error(folder)
    assert msg.startswith(os.path.join(folder, "dataset.json") + " is not valid JSON")
    assert "line 2, column 15" in msg


def test_not_karpathy_format(tmp_path):
    folder = write_dataset(tmp_path / "t")
    with open(os.path.join(folder, "dataset.json"), "w") as f:
        json.dump([1, 2], f)
    assert "expected an object with a list under \"images\"" in load_error(folder)


@pytest.mark.parametrize("key", ["imgid", "split", "sentences"])
def test_missing_image_key_names_the_image_and_the_key(tmp_path, key):
    images = karpathy_images()
    del images[3][key]
    msg = load_error(write_dataset(tmp_path / "t", images=images))
    assert msg.endswith("dataset.json: image 3 has no %r" % key)


def test_missing_tokens_names_the_sentence_and_the_image(tmp_path):
    images = karpathy_images()
    del images[2]["sentences"][1]["tokens"]
    assert "sentence 1 of image 2 has no 'tokens'" in load_error(
        write_dataset(tmp_path / "t", images=images))


@pytest.mark.parametrize("imgid", [7, -1, "0", 1.0])
def test_imgid_outside_the_feature_rows(tmp_path, imgid):
    images = karpathy_images()
    images[6]["imgid"] = imgid
    msg = load_error(write_dataset(tmp_path / "t", images=images))
    assert "image 6 has imgid %r, outside 0..6" % imgid in msg and "feature rows" in msg


def test_duplicate_imgid(tmp_path):
    images = karpathy_images()
    images[5]["imgid"] = 1
    assert "imgid 1 appears twice (images 1 and 5)" in load_error(
        write_dataset(tmp_path / "t", images=images))


def test_duplicate_sentid(tmp_path):
    images = karpathy_images()
    images[4]["sentences"][0]["sentid"] = 3
    assert "sentid 3 appears twice (images 1 and 4)" in load_error(
        write_dataset(tmp_path / "t", images=images))


@pytest.mark.parametrize("token", [5, None, ["a"]])
def test_a_token_that_is_not_a_string_names_the_sentence_and_the_image(tmp_path, token):
    images = karpathy_images()
    images[2]["sentences"][1]["tokens"][1] = token
    msg = load_error(write_dataset(tmp_path / "t", images=images))
    assert msg.startswith(os.path.join(str(tmp_path / "t"), "dataset.json"))
    assert "sentence 1 of image 2: token 1 is %r, not a string" % token in msg


@pytest.mark.parametrize("sentid", ["4", 4.0, [4], True])
def test_a_sentid_that_is_not_an_integer(tmp_path, sentid):
    images = karpathy_images()
    images[2]["sentences"][0]["sentid"] = sentid
    msg = load_error(write_dataset(tmp_path / "t", images=images))
    assert msg.startswith(os.path.join(str(tmp_path / "t"), "dataset.json"))
    assert "sentence 0 of image 2 has sentid %r: sentids are integers" % sentid in msg


@pytest.mark.parametrize("sentids", [[4, "5"], "4 5", [4.5]])
def test_an_images_sentids_must_be_a_list_of_integers(tmp_path, sentids):
    images = karpathy_images()
    images[2]["sentids"] = sentids
    msg = load_error(write_dataset(tmp_path / "t", images=images))
    assert "image 2 has sentids %r: expected a list of integers" % (sentids,) in msg


@pytest.mark.parametrize("imgid", ["2", 2.0, None])
def test_a_sentences_imgid_that_is_not_an_integer(tmp_path, imgid):
    images = karpathy_images()
    images[2]["sentences"][1]["imgid"] = imgid
    msg = load_error(write_dataset(tmp_path / "t", images=images))
    assert "sentence 1 of image 2 has imgid %r: imgids are integers" % imgid in msg


def test_unknown_split_value(tmp_path):
    images = karpathy_images()
    images[0]["split"] = "training"
    assert "image 0 has split 'training'; use one of train, val, test, restval" in load_error(
        write_dataset(tmp_path / "t", images=images))


def test_an_empty_split_is_an_error_only_when_asked_for(tmp_path):
    images = [img for img in karpathy_images() if img["split"] != "val"]
    for imgid, img in enumerate(images):
        img["imgid"] = imgid
    data = load_dataset(write_dataset(tmp_path / "t", images=images))
    assert len(data.split("train")) == 4
    with pytest.raises(NeuralTalkError, match="dataset.json: the val split is empty"):
        data.split("val")
    with pytest.raises(NeuralTalkError, match="unknown split 'dev'"):
        data.split("dev")


def test_an_empty_train_split_points_at_fold_restval(tmp_path):
    images = karpathy_images()
    for img in images:
        img["split"] = "restval" if img["split"] == "train" else img["split"]
    data = load_dataset(write_dataset(tmp_path / "t", images=images))
    with pytest.raises(NeuralTalkError, match="train split is empty .*--fold_restval 1"):
        data.split("train")


def test_feature_rows_must_match_the_images(tmp_path):
    folder = write_dataset(tmp_path / "t", feats=np.ones((6, 3), np.float32))
    msg = load_error(folder)
    assert "vgg_feats.npy has 6 feature rows but" in msg and "lists 7 images" in msg
    assert "transposed" not in msg


def test_transposed_features_are_recognised(tmp_path):
    folder = write_dataset(tmp_path / "t", feats=np.ones((4096, 7), np.float32))
    assert "has 4096 feature rows" in load_error(folder)
    assert "looks transposed" in load_error(folder)


def test_invalid_features_json(tmp_path):
    folder = write_dataset(tmp_path / "t")
    with open(os.path.join(folder, "features.json"), "w") as f:
        f.write("{cnn}")
    assert "features.json is not valid JSON" in load_error(folder)
