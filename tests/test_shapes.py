import json
import os

import h5py
import numpy as np
import pytest
from PIL import Image

from neuraltalk import shapes
from neuraltalk.dataset import load_dataset


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("small") / "shapes")
    shapes.ensure_shapes(folder, seed=3, n_images=200)
    return folder


def _images(folder):
    return json.load(open(os.path.join(folder, "dataset.json")))["images"]


def test_same_seed_gives_the_same_dataset(small, tmp_path):
    again = str(tmp_path / "shapes")
    shapes.ensure_shapes(again, seed=3, n_images=200)
    for name in ("dataset.json", "vgg_feats.npy"):
        assert open(os.path.join(small, name), "rb").read() == \
            open(os.path.join(again, name), "rb").read()


def test_loads_as_a_karpathy_dataset_with_three_splits(small):
    data = load_dataset(small)
    assert len(data.images) == 200 and data.feature_width == shapes.feature_width()
    assert data.cnn == "shapes-extractor"
    assert [len(data.split(s)) for s in ("train", "val", "test")] == [160, 20, 20]


def test_five_different_captions_per_image(small):
    for img in _images(small):
        tokens = [tuple(s["tokens"]) for s in img["sentences"]]
        assert len(tokens) == 5 and len(set(tokens)) == 5
        assert img["sentids"] == [s["sentid"] for s in img["sentences"]]


def test_every_caption_is_true_to_its_objects(small):
    for img in _images(small):
        for s in img["sentences"]:
            assert shapes.caption_is_correct(s["tokens"], img["objects"]), s["tokens"]


def test_token_region_points_at_the_object_a_word_names(small):
    checked = 0
    for img in _images(small):
        for s in img["sentences"]:
            assert len(s["token_region"]) == len(s["tokens"])
            for word, region in zip(s["tokens"], s["token_region"]):
                if region > 0:
                    obj = img["objects"][region - 1]
                    if word in shapes.COLORS:
                        assert word == obj["color"]
                        checked += 1
                    elif word in shapes.CANONICAL_SHAPE:
                        assert shapes.CANONICAL_SHAPE[word] == obj["shape"]
                        checked += 1
    assert checked > 500


def test_boxes_hold_the_drawn_pixels(small):
    for img in _images(small)[:40]:
        pixels = np.asarray(Image.open(os.path.join(small, "images", img["filename"])))
        for obj in img["objects"]:
            x0, y0, x1, y1 = obj["box"]
            assert 0 <= x0 < x1 <= shapes.SIZE and 0 <= y0 < y1 <= shapes.SIZE
            colour = np.array(shapes.COLORS[obj["color"]])
            inside = np.abs(pixels[y0:y1, x0:x1].astype(int) - colour).sum(-1) < 30
            assert inside.mean() > 0.3  # the shape fills a good part of its box


def test_regions_file_layout(small):
    images = _images(small)
    with h5py.File(os.path.join(small, "regions.h5"), "r") as f:
        feats, boxes, counts = f["feats"][:], f["boxes"][:], f["counts"][:]
    whole = np.load(os.path.join(small, "vgg_feats.npy"))
    assert feats.shape == (200, 4, whole.shape[1]) and boxes.shape == (200, 4, 4)
    np.testing.assert_array_equal(counts, [1 + len(img["objects"]) for img in images])
    np.testing.assert_array_equal(feats[:, 0], whole)
    np.testing.assert_array_equal(boxes[:, 0], [[0, 0, 64, 64]] * 200)
    for n, img in enumerate(images):
        for i, obj in enumerate(img["objects"]):
            assert list(boxes[n, 1 + i]) == obj["box"]
        assert not feats[n, counts[n]:].any()


def _probe_accuracy(x_train, y_train, x_test, y_test, classes):
    """Ridge-regression one-vs-all linear probe."""
    x = np.c_[x_train, np.ones(len(x_train))]
    targets = (np.array(y_train)[:, None] == np.arange(classes)).astype(float)
    w = np.linalg.solve(x.T @ x + 0.1 * np.eye(x.shape[1]), x.T @ targets)
    return np.mean((np.c_[x_test, np.ones(len(x_test))] @ w).argmax(1) == np.array(y_test))


@pytest.mark.slow
def test_colour_shape_and_size_are_linearly_recoverable(tmp_path):
    folder = str(tmp_path / "shapes")
    shapes.ensure_shapes(folder)  # the real demo dataset
    images = _images(folder)
    feats = np.load(os.path.join(folder, "vgg_feats.npy"))
    single = [i for i, img in enumerate(images) if len(img["objects"]) == 1]
    train = [i for i in single if images[i]["split"] == "train"]
    test = [i for i in single if images[i]["split"] != "train"]
    for attr, values in (("color", list(shapes.COLORS)), ("shape", shapes.SHAPES),
                         ("size", ["small", "large"])):
        label = [values.index(images[i]["objects"][0][attr]) for i in range(len(images))]
        acc = _probe_accuracy(feats[train], [label[i] for i in train],
                              feats[test], [label[i] for i in test], len(values))
        assert acc >= 0.95, (attr, acc)
    with h5py.File(os.path.join(folder, "regions.h5"), "r") as f:
        region_feats, counts = f["feats"][:], f["counts"][:]
    rows = [(n, r) for n in range(len(images)) for r in range(1, counts[n])]
    for attr, values in (("color", list(shapes.COLORS)), ("shape", shapes.SHAPES)):
        split = {True: [], False: []}
        for n, r in rows:
            split[images[n]["split"] == "train"].append(
                (region_feats[n, r], values.index(images[n]["objects"][r - 1][attr])))
        acc = _probe_accuracy(np.array([x for x, _ in split[True]]), [y for _, y in split[True]],
                              np.array([x for x, _ in split[False]]),
                              [y for _, y in split[False]], len(values))
        assert acc >= 0.95, ("region", attr, acc)


@pytest.mark.parametrize("tokens, ok", [
    (["a", "red", "circle"], True),
    (["a", "big", "red", "ball"], True),
    (["a", "blue", "circle"], False),        # wrong colour
    (["a", "red", "square"], False),         # wrong shape
    (["a", "red", "thing"], False),          # no shape named
    (["two", "red", "circles"], True),
    (["a", "red", "square", "and", "a", "green", "circle"], False),  # colours swapped
])
def test_caption_is_correct(tokens, ok):
    objects = [{"color": "red", "shape": "circle", "size": "large", "box": [0, 0, 9, 9]},
               {"color": "green", "shape": "square", "size": "small", "box": [20, 20, 29, 29]}]
    assert shapes.caption_is_correct(tokens, objects) is ok


def test_an_interrupted_generation_leaves_no_half_dataset(tmp_path, monkeypatch):
    def boom(*args):
        raise KeyboardInterrupt
    monkeypatch.setattr(shapes, "extract_features", boom)
    with pytest.raises(KeyboardInterrupt):
        shapes.ensure_shapes(str(tmp_path / "shapes"), n_images=20)
    assert os.listdir(tmp_path) == []
