"""The alignment model on the data people have: whole-image features (R = 1) when there
is no regions.h5, regions.h5 made from plain photos by `--regions multicrop`, and the
paper's sizes as `--preset paper`."""
import json
import os

import numpy as np
import pytest

import driver
import eval_sentence_predictions
from neuraltalk import mrf as mrf_command, region_captions as region_captions_command
from neuraltalk.alignment import mrf
from neuraltalk.data.batches import Batch
from neuraltalk.data.dataset import load_dataset
from neuraltalk.data.regions import WHOLE_IMAGE, WholeImageRegions, load_regions, save_regions
from neuraltalk.demo import extractor
from neuraltalk.errors import NeuralTalkError
from neuraltalk.models import brnn
from neuraltalk.train.checkpoint import load_checkpoint
from neuraltalk.train.runs import best_checkpoint


# ---- R = 1: the score is a plain dot product ------------------------------------------------

def _one_region_batch(seed, kind):
    rng = np.random.default_rng(seed)
    params = {"embedding_size": 6, "word_vector_size": 5, "score": kind, "margin": 1.0}
    model = brnn.init(params, 7, 10, rng, dtype=np.float64)
    for k in model:
        model[k] = rng.normal(scale=0.7, size=model[k].shape)
    feats = rng.normal(size=(4, 7))
    lengths = np.array([5, 2, 3, 1])
    words = rng.integers(1, 10, size=(4, 5)) * (np.arange(5) < lengths[:, None])
    batch = Batch(feats, words, lengths, None, None, feats[:, None, :], np.ones(4, np.int64))
    return params, model, batch


@pytest.mark.parametrize("kind", ["max", "defrag"])
def test_one_region_scores_are_the_plain_dot_products_of_image_and_words(kind):
    params, model, batch = _one_region_batch(0, kind)
    v = batch.feats @ model["Wm"] + model["bm"][0]  # eq. 1, one vector per image
    sentences, _ = brnn.sentence_vectors(model, batch.words, batch.lengths)
    expected = np.zeros((4, 4))
    for l, n in enumerate(batch.lengths):
        s = sentences.s[sentences.starts[l]:sentences.starts[l] + n]  # (n, h)
        if kind == "max":  # the max over one region is that region: v_k . sum_t s_t
            expected[:, l] = v @ s.sum(0)
        else:  # DeFrag: sum_t max(0, v_k . s_t)
            expected[:, l] = np.maximum(v @ s.T, 0).sum(1)
    cost, _ = brnn.loss(model, batch, params, return_scores=True)
    np.testing.assert_allclose(cost["S"], expected, rtol=1e-12)
    S = brnn.score_matrix(model, params, batch.regions, batch.region_counts, batch.words,
                          batch.lengths)
    np.testing.assert_allclose(S, expected, rtol=1e-5)


def test_whole_image_regions_are_the_feature_rows(shapes_root):
    dataset = load_dataset("shapes", data_root=shapes_root)
    regions = WholeImageRegions(dataset.features)
    assert len(regions) == len(dataset.images) and regions.max_regions == 1
    assert regions.width == dataset.feature_width and regions.boxes is None
    feats, counts = regions.rows([7, 2, 7])
    assert feats.shape == (3, 1, dataset.feature_width) and counts.tolist() == [1, 1, 1]
    np.testing.assert_array_equal(feats[:, 0], dataset.features[[7, 2, 7]])


def _task_params(**overrides):
    import argparse
    parser = argparse.ArgumentParser()
    brnn.add_arguments(parser)
    params = vars(parser.parse_args([]))
    params.update({"word_count_threshold": 5, "eval_max_images": 30, "regc": 1e-8,
                   "embedding_size": 16, "word_vector_size": 8}, **overrides)
    return params


def test_regions_whole_image_ignores_an_existing_regions_file(shapes_root, capsys):
    dataset = load_dataset("shapes", data_root=shapes_root)
    assert os.path.exists(os.path.join(dataset.folder, "regions.h5"))
    params = _task_params(regions=WHOLE_IMAGE)
    task = brnn.make_task(params, dataset, np.random.default_rng(0))
    batch = task.sample_batch(10, np.random.default_rng(1))
    assert batch.regions.shape == (10, 1, dataset.feature_width)
    np.testing.assert_array_equal(batch.regions[:, 0], batch.feats)
    assert params["regions"] == WHOLE_IMAGE and "no region features" not in capsys.readouterr().out


# ---- a Flickr8k-format folder: dataset.json and vgg_feats.mat only --------------------------

@pytest.fixture(scope="module")
def flickr_format(shapes_root, tmp_path_factory):
    """shapes' dataset.json and its whole-image features as vgg_feats.mat (D x N), nothing
    else: what Karpathy's Flickr8k / Flickr30k / COCO archives hold."""
    from neuraltalk.data.feature_files import save_features_mat
    folder = tmp_path_factory.mktemp("flickr_format") / "shapes8k"
    folder.mkdir()
    source = os.path.join(shapes_root, "shapes")
    with open(os.path.join(source, "dataset.json")) as f:
        (folder / "dataset.json").write_text(f.read())
    save_features_mat(str(folder / "vgg_feats.mat"), np.load(os.path.join(source,
                                                                          "vgg_feats.npy")))
    assert sorted(os.listdir(folder)) == ["dataset.json", "vgg_feats.mat"]
    return folder


@pytest.fixture(scope="module")
def whole_image_run(flickr_format, tmp_path_factory):
    """driver.py --model brnn on the folder: (exit code, stdout, the run's folder)."""
    import contextlib
    import io
    out = tmp_path_factory.mktemp("cv")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = driver.main(["--dataset", str(flickr_format), "--model", "brnn",
                            "--checkpoint_output_directory", str(out),
                            "--worker_status_output_directory", str(out / "status"),
                            "--embedding_size", "32", "--word_vector_size", "16",
                            "--max_iters", "30", "--eval_max_images", "50",
                            "--eval_period", "1000"])
    return code, printed.getvalue(), out


def test_the_alignment_model_trains_on_whole_images_and_validates_by_recall(whole_image_run):
    code, out, folder = whole_image_run
    assert code == 0
    assert out.count("no region features") == 1
    assert "each image's feature vector its only region (R = 1)" in out
    c = load_checkpoint(best_checkpoint(str(folder)))
    assert c["params"]["regions"] == WHOLE_IMAGE
    assert c["val_score"]["name"] == "recall_sum" and c["val_score"]["value"] > 0
    assert c["model"]["Wm"].shape == (extractor.FEATURE_WIDTH, 32)


def test_retrieval_on_whole_images_writes_retrieval_json(whole_image_run, tmp_path, capsys):
    _, _, folder = whole_image_run
    assert eval_sentence_predictions.main([str(folder), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "whole-image alignment (R = 1)" in out and "retrieval on 300 images" in out
    result = json.load(open(tmp_path / "retrieval.json"))
    assert set(result) == {"i2t", "t2i"}
    # 30 iterations beat chance (R@10 of 10 in 300 images, 0.033) several times over
    assert result["i2t"]["R@10"] > 0.1 and result["t2i"]["R@10"] > 0.1
    assert 1 <= result["t2i"]["medr"] <= 300


def test_the_mrf_refuses_a_whole_image_model(whole_image_run, tmp_path, capsys):
    _, _, folder = whole_image_run
    assert mrf_command.main([best_checkpoint(str(folder)), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "trained on whole images (R = 1" in err and "--regions multicrop" in err
    assert not os.listdir(tmp_path)


def test_region_captions_refuse_a_whole_image_model(whole_image_run, tmp_path, capsys):
    _, _, folder = whole_image_run
    out = tmp_path / "regions"
    assert region_captions_command.main([best_checkpoint(str(folder)), "--out", str(out)]) == 2
    assert "no regions to align words to" in capsys.readouterr().err
    assert not out.exists()


def test_a_regions_file_with_only_whole_images_is_refused_by_the_mrf(tmp_path):
    save_regions(str(tmp_path / "regions.h5"), np.ones((3, 2, 4)), np.zeros((3, 2, 4)),
                 np.array([1, 1, 1]))
    regions = load_regions(str(tmp_path))
    with pytest.raises(NeuralTalkError, match="no test image has a region besides the whole"):
        mrf.check_several_regions(regions, [0, 1, 2], "test")
    save_regions(str(tmp_path / "regions.h5"), np.ones((3, 2, 4)), np.zeros((3, 2, 4)),
                 np.array([1, 2, 1]))
    mrf.check_several_regions(load_regions(str(tmp_path)), [0, 1, 2], "test")


def test_a_missing_regions_file_given_by_flag_is_still_an_error(shapes_root, tmp_path):
    dataset = load_dataset("shapes", data_root=shapes_root)
    with pytest.raises(NeuralTalkError, match="nothere.h5 do not exist.*--regions multicrop"):
        brnn.make_task(_task_params(regions=str(tmp_path / "nothere.h5")), dataset,
                       np.random.default_rng(0))


# ---- --regions multicrop ---------------------------------------------------------------------

def test_multicrop_boxes_are_the_corners_and_centre_at_two_scales():
    from neuraltalk.cnn.extract import multicrop_boxes
    assert multicrop_boxes(64, 48) == [
        [0, 0, 32, 24], [32, 0, 64, 24], [0, 24, 32, 48], [32, 24, 64, 48], [16, 12, 48, 36],
        [0, 0, 48, 36], [16, 0, 64, 36], [0, 12, 48, 48], [16, 12, 64, 48], [8, 6, 56, 42]]
    assert all(0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1 for x0, y0, x1, y1 in multicrop_boxes(1, 1))


@pytest.fixture
def plain_photos(shapes_root, tmp_path):
    """Four demo PNGs in a folder of their own, one of them not square."""
    from PIL import Image
    folder = tmp_path / "photos"
    folder.mkdir()
    images = os.path.join(shapes_root, "shapes", "images")
    for n in range(3):
        os.symlink(os.path.join(images, "%05d.png" % n), folder / ("%05d.png" % n))
    with Image.open(os.path.join(images, "00003.png")) as im:
        im.crop((0, 0, 64, 40)).save(folder / "wide.png")
    return folder


def test_multicrop_writes_the_whole_image_and_its_crops_through_the_same_cnn(plain_photos):
    import scipy.io
    from PIL import Image
    from neuraltalk import features
    from neuraltalk.cnn import extract
    from neuraltalk.demo import extractor
    assert features.main([str(plain_photos), "--cnn", "shapes-extractor",
                         "--regions", "multicrop"]) == 0
    names = open(plain_photos / "tasks.txt").read().split()
    whole = scipy.io.loadmat(str(plain_photos / "vgg_feats.mat"))["feats"].T
    regions = load_regions(str(plain_photos), n_images=4)
    assert regions.counts.tolist() == [11] * 4 and regions.width == extractor.FEATURE_WIDTH
    cnn = extract.Extractor("shapes-extractor")
    for n, name in enumerate(names):
        with Image.open(plain_photos / name) as im:
            img = im.convert("RGB")
        w, h = img.size
        assert regions.boxes[n].tolist() == [[0, 0, w, h]] + extract.multicrop_boxes(w, h)
        feats = regions.rows([n])[0][0]
        # region 0 is the whole image: the feature vector vgg_feats.mat holds
        np.testing.assert_allclose(feats[0], whole[n], rtol=1e-6, atol=1e-7)
        for r in (1, 5, 10):  # a crop's row is the CNN's features of that crop
            crop = img.crop(tuple(regions.boxes[n, r]))
            np.testing.assert_allclose(feats[r], cnn.features([crop])[0], rtol=1e-6, atol=1e-7)


def test_multicrop_regions_train_the_alignment_model_and_feed_the_mrf(shapes_root, tmp_path):
    """A dataset folder of demo images with regions.h5 from multicrop only (no boxes)."""
    folder = tmp_path / "mini"
    folder.mkdir()
    blob = json.load(open(os.path.join(shapes_root, "shapes", "dataset.json")))
    images = [img for img in blob["images"] if img["imgid"] < 300][:10]  # test
    images += [img for img in blob["images"] if 300 <= img["imgid"] < 600][:10]  # val
    images += [img for img in blob["images"] if img["imgid"] >= 600][:30]  # train
    for n, img in enumerate(images):
        img["imgid"] = n
        img["filepath"] = os.path.join(shapes_root, "shapes", "images")
    json.dump({"dataset": "mini", "images": images}, open(folder / "dataset.json", "w"))
    from neuraltalk import features
    assert features.main([str(folder), "--cnn", "shapes-extractor", "--regions",
                         "multicrop"]) == 0
    cv = tmp_path / "cv"
    assert driver.main(["--dataset", str(folder), "--model", "brnn",
                        "--checkpoint_output_directory", str(cv),
                        "--worker_status_output_directory", str(cv / "status"),
                        "--embedding_size", "16", "--word_vector_size", "8",
                        "--word_count_threshold", "1", "--max_iters", "3",
                        "--batch_size", "20"]) == 0
    assert load_checkpoint(best_checkpoint(str(cv)))["params"]["regions"] == ""
    assert mrf_command.main([best_checkpoint(str(cv)), "--out", str(tmp_path / "mrf"),
                     "--max_images", "3"]) == 0
    snippets = json.load(open(tmp_path / "mrf" / "snippets.json"))
    assert len(snippets) == 3 and all(len(i["boxes"]) == 11 for i in snippets)


# ---- grid regions: the cells plus the whole image --------------------------------------------

def test_a_grid_gets_the_whole_image_as_region_0_for_the_alignment_model(tmp_path, capsys):
    from neuraltalk.data.regions import GridWithWholeImage, alignment_regions
    rng = np.random.default_rng(0)
    cells = rng.normal(size=(3, 4, 5)).astype(np.float32)  # 3 images, a 2 x 2 grid, 5-d
    boxes = np.array([[[0, 0, 8, 8], [8, 0, 16, 8], [0, 8, 8, 16], [8, 8, 16, 16]]] * 3)
    save_regions(str(tmp_path / "regions.h5"), cells, boxes, np.full(3, 4), grid=True)
    grid = load_regions(str(tmp_path), 3)
    assert grid.grid and grid.max_regions == 4  # the attention model reads the cells alone
    regions = alignment_regions(grid)
    assert isinstance(regions, GridWithWholeImage) and "grid of CNN cells" in capsys.readouterr().out
    feats, counts = regions.rows([2, 0])
    assert feats.shape == (2, 5, 5) and counts.tolist() == [5, 5]
    np.testing.assert_allclose(feats[:, 0], cells[[2, 0]].mean(1), rtol=1e-6)  # the whole image
    np.testing.assert_array_equal(feats[:, 1:], cells[[2, 0]])
    assert regions.boxes[0].tolist() == [[0, 0, 16, 16]] + boxes[0].tolist()
    plain = tmp_path / "plain"
    plain.mkdir()
    save_regions(str(plain / "regions.h5"), cells, boxes, np.full(3, 4))
    assert alignment_regions(load_regions(str(plain), 3)).max_regions == 4  # boxes: unchanged


# ---- --preset paper -------------------------------------------------------------------------

def _flags(*argv):
    return driver.parse_flags(driver.build_parser(), list(argv))


def test_preset_paper_gives_the_papers_sizes(capsys):
    params = _flags("--model", "brnn", "--preset", "paper")
    assert (params["embedding_size"], params["word_vector_size"],
            params["finetune_word_vectors"]) == (1000, 300, 0)
    assert "--preset paper: --embedding_size 1000" in capsys.readouterr().out
    default = _flags("--model", "brnn")
    assert default["embedding_size"] == 256 and default["preset"] is None


def test_flags_given_win_over_the_preset():
    params = _flags("--model", "brnn", "--preset", "paper", "--embedding_size", "256",
                    "--finetune_word_vectors", "1")
    assert (params["embedding_size"], params["word_vector_size"],
            params["finetune_word_vectors"]) == (256, 300, 1)


def test_a_preset_the_model_does_not_have_is_refused(capsys):
    with pytest.raises(SystemExit) as e:
        _flags("--preset", "paper")  # --model generator
    assert e.value.code == 2
    assert "--preset paper is not a preset of --model generator --generator lstm (it is one " \
           "of --model brnn)" in capsys.readouterr().err
