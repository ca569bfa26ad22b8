import json
import os

import h5py
import numpy as np
import pytest
from PIL import Image

from neuraltalk.demo import checker, extractor
from neuraltalk.demo import dataset as demo_dataset
from neuraltalk.demo import scenes as demo_scenes
from neuraltalk.data.dataset import load_dataset
from neuraltalk.errors import NeuralTalkError


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("small") / "shapes")
    demo_dataset.ensure_shapes(folder, seed=3, n_images=200)
    return folder


def _images(folder):
    return json.load(open(os.path.join(folder, "dataset.json")))["images"]


def test_same_seed_gives_the_same_dataset(small, tmp_path):
    again = str(tmp_path / "shapes")
    demo_dataset.ensure_shapes(again, seed=3, n_images=200)
    for name in ("dataset.json", "vgg_feats.npy", "features.json"):
        assert open(os.path.join(small, name), "rb").read() == \
            open(os.path.join(again, name), "rb").read()
    with h5py.File(os.path.join(small, "regions.h5")) as a, \
            h5py.File(os.path.join(again, "regions.h5")) as b:
        for key in ("feats", "boxes", "counts"):
            np.testing.assert_array_equal(a[key][:], b[key][:])
    for name in ("00000.png", "00199.png"):
        np.testing.assert_array_equal(np.asarray(Image.open(os.path.join(small, "images", name))),
                                      np.asarray(Image.open(os.path.join(again, "images", name))))


def test_another_seed_gives_other_scenes(small, tmp_path):
    other = str(tmp_path / "shapes")
    demo_dataset.ensure_shapes(other, seed=4, n_images=200)
    assert [img["objects"] for img in _images(other)] != [img["objects"] for img in _images(small)]


def test_an_existing_dataset_is_left_alone(small, capsys):
    before = os.path.getmtime(os.path.join(small, "dataset.json"))
    demo_dataset.ensure_shapes(small, seed=99, n_images=10)
    assert os.path.getmtime(os.path.join(small, "dataset.json")) == before
    assert capsys.readouterr().out == ""


def test_generation_prints_one_summary_line(tmp_path, capsys):
    demo_dataset.ensure_shapes(str(tmp_path / "shapes"), n_images=30)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    assert "30 images, 150 sentences" in lines[0]
    assert "%d-d features" % extractor.FEATURE_WIDTH in lines[0]


def test_loads_as_a_karpathy_dataset_with_three_splits(small):
    data = load_dataset(small)
    assert len(data.images) == 200 and data.feature_width == extractor.feature_width()
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
            assert checker.caption_is_correct(s["tokens"], img["objects"]), s["tokens"]


def test_an_before_vowels_a_before_consonants(small):
    pairs = [(w, s["tokens"][j + 1]) for img in _images(small) for s in img["sentences"]
             for j, w in enumerate(s["tokens"][:-1]) if w in ("a", "an")]
    assert ("an", "orange") in pairs
    assert all((w == "an") == (following[0] in "aeiou") for w, following in pairs)


def test_token_region_points_at_the_object_a_word_names(small):
    checked = 0
    for img in _images(small):
        for s in img["sentences"]:
            assert len(s["token_region"]) == len(s["tokens"])
            for word, region in zip(s["tokens"], s["token_region"]):
                if region > 0:
                    obj = img["objects"][region - 1]
                    if word in demo_scenes.COLORS:
                        assert word == obj["color"]
                        checked += 1
                    elif word in demo_scenes.CANONICAL_SHAPE:
                        assert demo_scenes.CANONICAL_SHAPE[word] == obj["shape"]
                        checked += 1
    assert checked > 500


def test_boxes_are_inside_the_image_and_fit_the_drawn_pixels(small):
    for img in _images(small):
        pixels = np.asarray(Image.open(os.path.join(small, "images", img["filename"]))).astype(int)
        assert pixels.shape == (demo_scenes.SIZE, demo_scenes.SIZE, 3)
        painted = np.zeros(pixels.shape[:2], bool)
        for obj in img["objects"]:
            x0, y0, x1, y1 = obj["box"]
            assert 0 <= x0 < x1 <= demo_scenes.SIZE and 0 <= y0 < y1 <= demo_scenes.SIZE
            mine = np.abs(pixels - demo_scenes.COLORS[obj["color"]]).sum(-1) == 0
            ys, xs = np.nonzero(mine[y0:y1, x0:x1])
            # the shape reaches every side of its box (squares are drawn 1 px inside it)
            assert xs.min() <= 1 and xs.max() >= x1 - x0 - 2, obj
            assert ys.min() <= 1 and ys.max() >= y1 - y0 - 2, obj
            assert mine[y0:y1, x0:x1].mean() > 0.4  # and fills a good part of it
            painted[y0:y1, x0:x1] |= mine[y0:y1, x0:x1]
        # no pixel of any object colour lies outside the boxes
        object_coloured = np.zeros_like(painted)
        for rgb in demo_scenes.COLORS.values():
            object_coloured |= np.abs(pixels - rgb).sum(-1) == 0
        np.testing.assert_array_equal(object_coloured, painted)


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


def test_region_features_are_the_extractor_on_each_box(small):
    images = _images(small)[:30]
    pixels = np.stack([np.asarray(Image.open(os.path.join(small, "images", img["filename"])))
                       for img in images])
    with h5py.File(os.path.join(small, "regions.h5"), "r") as f:
        feats, boxes, counts = f["feats"][:30], f["boxes"][:30], f["counts"][:30]
    for r in range(boxes.shape[1]):
        has = np.flatnonzero(counts > r)
        expected = extractor.extract_features(pixels[has], boxes[has, r])
        np.testing.assert_allclose(feats[has, r], expected, rtol=1e-5, atol=1e-6)


def test_extract_features_shape_scale_and_chunking():
    rng = np.random.default_rng(0)
    pixels = np.stack([demo_scenes.render(demo_scenes.random_scene(rng), rng) for _ in range(25)])
    feats = extractor.extract_features(pixels)
    assert feats.shape == (25, extractor.FEATURE_WIDTH) and feats.dtype == np.float32
    assert np.isfinite(feats).all() and 0.01 < np.abs(feats).mean() < 1 and np.abs(feats).max() < 20
    np.testing.assert_allclose(extractor.extract_features(pixels, chunk=7), feats, rtol=1e-6)
    assert extractor.extract_features(pixels[:0]).shape == (0, extractor.FEATURE_WIDTH)


def _probe_accuracy(x_train, y_train, x_test, y_test, classes):
    """Ridge-regression one-vs-all linear probe."""
    x = np.c_[x_train, np.ones(len(x_train))]
    targets = (np.array(y_train)[:, None] == np.arange(classes)).astype(float)
    w = np.linalg.solve(x.T @ x + 0.1 * np.eye(x.shape[1]), x.T @ targets)
    return np.mean((np.c_[x_test, np.ones(len(x_test))] @ w).argmax(1) == np.array(y_test))


def test_a_linear_probe_reads_colour_shape_size_and_position_of_one_object():
    rng = np.random.default_rng(1)
    scenes = [demo_scenes.random_scene(rng, n=1) for _ in range(1500)]
    feats = extractor.extract_features(np.stack([demo_scenes.render(s, rng) for s in scenes]))
    objects = [s[0] for s in scenes]
    train, test = slice(0, 1200), slice(1200, None)
    for attr, values in (("color", list(demo_scenes.COLORS)), ("shape", demo_scenes.SHAPES),
                         ("size", ["small", "large"])):
        label = np.array([values.index(o[attr]) for o in objects])
        acc = _probe_accuracy(feats[train], label[train], feats[test], label[test], len(values))
        assert acc >= 0.95, (attr, acc)
    centre = np.array([[(o["box"][0] + o["box"][2]) / 2, (o["box"][1] + o["box"][3]) / 2]
                       for o in objects])
    x = np.c_[feats, np.ones(len(feats))]
    w = np.linalg.solve(x[train].T @ x[train] + 0.1 * np.eye(x.shape[1]),
                        x[train].T @ centre[train])
    error = np.abs(x[test] @ w - centre[test]).mean()
    assert error < 4.0, error  # pixels; guessing the mean centre is off by about 12


@pytest.mark.slow
def test_colour_shape_and_size_are_linearly_recoverable(tmp_path):
    folder = str(tmp_path / "shapes")
    demo_dataset.ensure_shapes(folder)  # the real demo dataset
    images = _images(folder)
    feats = np.load(os.path.join(folder, "vgg_feats.npy"))
    single = [i for i, img in enumerate(images) if len(img["objects"]) == 1]
    train = [i for i in single if images[i]["split"] == "train"]
    test = [i for i in single if images[i]["split"] != "train"]
    for attr, values in (("color", list(demo_scenes.COLORS)), ("shape", demo_scenes.SHAPES),
                         ("size", ["small", "large"])):
        label = [values.index(images[i]["objects"][0][attr]) for i in range(len(images))]
        acc = _probe_accuracy(feats[train], [label[i] for i in train],
                              feats[test], [label[i] for i in test], len(values))
        assert acc >= 0.95, (attr, acc)
    with h5py.File(os.path.join(folder, "regions.h5"), "r") as f:
        region_feats, counts = f["feats"][:], f["counts"][:]
    rows = [(n, r) for n in range(len(images)) for r in range(1, counts[n])]
    for attr, values in (("color", list(demo_scenes.COLORS)), ("shape", demo_scenes.SHAPES),
                         ("size", ["small", "large"])):
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
    assert checker.caption_is_correct(tokens, objects) is ok


def test_an_interrupted_generation_leaves_no_half_dataset(tmp_path, monkeypatch):
    def boom(*args):
        raise KeyboardInterrupt
    monkeypatch.setattr(demo_dataset, "region_features", boom)
    with pytest.raises(KeyboardInterrupt):
        demo_dataset.ensure_shapes(str(tmp_path / "shapes"), n_images=20)
    assert os.listdir(tmp_path) == []


def test_an_unwritable_place_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(NeuralTalkError, match="choose a writable --data_root"):
        demo_dataset.ensure_shapes(str(blocker / "shapes"), n_images=5)


# ---- the folder the demo is generated into -----------------------------------------------

def test_a_generated_dataset_carries_the_generators_marker(small):
    assert os.path.isfile(os.path.join(small, demo_dataset.MARKER))


def test_a_foreign_folder_named_shapes_is_refused_and_left_intact(tmp_path):
    folder = tmp_path / "x" / "shapes"
    folder.mkdir(parents=True)
    (folder / "thesis.tex").write_text("years of work")
    with pytest.raises(NeuralTalkError) as e:
        demo_dataset.ensure_shapes(str(folder), n_images=5)
    assert str(folder) in str(e.value) and "not made by the demo generator" in str(e.value)
    assert os.listdir(folder) == ["thesis.tex"]
    assert (folder / "thesis.tex").read_text() == "years of work"
    assert os.listdir(tmp_path / "x") == ["shapes"]  # no temporary left beside it


def test_driver_on_a_foreign_shapes_folder_exits_2_and_keeps_its_files(tmp_path, capsys):
    import driver
    folder = tmp_path / "x" / "shapes"
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("mine")
    assert driver.main(["--dataset", str(folder), "--max_iters", "1",
                        "--checkpoint_output_directory", str(tmp_path / "cv"),
                        "--worker_status_output_directory", str(tmp_path / "status")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err and str(folder) in err
    assert os.listdir(folder) == ["notes.txt"] and (folder / "notes.txt").read_text() == "mine"


def test_an_empty_folder_is_generated_into(tmp_path):
    folder = tmp_path / "shapes"
    folder.mkdir()
    demo_dataset.ensure_shapes(str(folder), n_images=5)
    assert len(_images(str(folder))) == 5


def test_the_generators_own_folder_without_dataset_json_is_generated_again(tmp_path):
    folder = str(tmp_path / "shapes")
    demo_dataset.ensure_shapes(folder, n_images=5)
    os.remove(os.path.join(folder, "dataset.json"))
    demo_dataset.ensure_shapes(folder, n_images=6)
    assert len(_images(folder)) == 6


def test_a_user_file_in_the_generators_folder_is_not_deleted(tmp_path):
    folder = tmp_path / "shapes"
    demo_dataset.ensure_shapes(str(folder), n_images=5)
    os.remove(folder / "dataset.json")
    (folder / "mine.txt").write_text("keep me")
    with pytest.raises(NeuralTalkError, match="mine.txt"):
        demo_dataset.ensure_shapes(str(folder), n_images=5)
    assert (folder / "mine.txt").read_text() == "keep me"


def test_a_folder_generated_in_an_older_format_is_generated_again(tmp_path, capsys):
    folder = str(tmp_path / "shapes")
    demo_dataset.ensure_shapes(folder, n_images=5)
    with open(os.path.join(folder, demo_dataset.MARKER), "w") as f:  # the first markers'
        f.write("written by neuraltalk.demo.dataset.ensure_shapes: this folder may be "
                "regenerated\n")
    np.save(os.path.join(folder, "vgg_feats.npy"), np.zeros((5, 390), np.float32))
    capsys.readouterr()
    demo_dataset.ensure_shapes(folder, n_images=6)
    out = capsys.readouterr().out.splitlines()
    assert "older neuraltalk (demo format 1, now %d)" % demo_dataset.FORMAT in out[0]
    assert len(_images(folder)) == 6
    assert np.load(os.path.join(folder, "vgg_feats.npy")).shape == (6, extractor.FEATURE_WIDTH)
    assert demo_dataset.marker_format(folder) == demo_dataset.FORMAT


def test_a_users_own_dataset_named_shapes_is_never_regenerated(tmp_path, capsys):
    folder = tmp_path / "shapes"
    folder.mkdir()
    (folder / "dataset.json").write_text('{"images": []}')
    demo_dataset.ensure_shapes(str(folder), n_images=5)
    assert os.listdir(folder) == ["dataset.json"] and capsys.readouterr().out == ""
