"""The alignment model trained through driver.py on the demo dataset, then evaluated,
aligned by the MRF, and turned into a region-caption dataset that trains a generator."""
import json
import os

import numpy as np
import pytest

import driver
import eval_sentence_predictions
from neuraltalk import mrf as mrf_command, region_captions as region_captions_command
from neuraltalk.alignment import region_captions
from neuraltalk.demo import extractor
from neuraltalk.train.checkpoint import save_checkpoint
from neuraltalk.data.dataset import load_dataset


@pytest.fixture(scope="module")
def alignment_checkpoint(shapes_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("cv")
    assert driver.main(["--dataset", "shapes", "--data_root", shapes_root, "--model", "brnn",
                        "--checkpoint_output_directory", str(out),
                        "--worker_status_output_directory", str(out / "status"),
                        "--embedding_size", "64", "--word_vector_size", "32",
                        "--max_iters", "60", "--eval_max_images", "50",
                        "--eval_period", "1000"]) == 0
    from neuraltalk.train.runs import best_checkpoint
    return best_checkpoint(str(out))


@pytest.mark.slow  # trains the alignment model for 60 iterations
def test_driver_trains_the_alignment_model_and_eval_writes_retrieval_json(alignment_checkpoint,
                                                                         shapes_root, tmp_path,
                                                                         capsys):
    assert eval_sentence_predictions.main([alignment_checkpoint, "--out", str(tmp_path),
                                           "--data_root", shapes_root]) == 0
    result = json.load(open(tmp_path / "retrieval.json"))
    assert set(result) == {"i2t", "t2i"}
    assert set(result["t2i"]) == {"R@1", "R@5", "R@10", "medr"}
    # 60 iterations already beat chance (R@10 of 10/300) by far
    assert result["t2i"]["R@10"] > 0.2 and result["i2t"]["R@10"] > 0.2
    assert "image search" in capsys.readouterr().out


@pytest.mark.slow  # trains the alignment model for 60 iterations
def test_retrieval_leaves_out_test_images_without_sentences_with_a_note(alignment_checkpoint,
                                                                        shapes_root, tmp_path,
                                                                        capsys):
    from neuraltalk.train.checkpoint import load_checkpoint
    source = os.path.join(shapes_root, "shapes")
    folder = tmp_path / "unsure"
    folder.mkdir()
    blob = json.load(open(os.path.join(source, "dataset.json")))
    test = [img for img in blob["images"] if img["split"] == "test"]
    for img in test[:3]:
        img["sentences"], img["sentids"] = [], []
    (folder / "dataset.json").write_text(json.dumps(blob))
    for name in ("vgg_feats.npy", "features.json", "regions.h5"):
        os.symlink(os.path.join(source, name), folder / name)
    checkpoint = load_checkpoint(alignment_checkpoint)
    checkpoint["params"] = dict(checkpoint["params"], dataset=str(folder))
    save_checkpoint(str(tmp_path / "ckpt.p"), checkpoint)
    assert eval_sentence_predictions.main([str(tmp_path / "ckpt.p"), "--out", str(tmp_path),
                                           "--max_images", "20"]) == 0
    out = capsys.readouterr().out
    assert "3 test images have no sentences: left out" in out
    assert "retrieval on 20 images" in out


@pytest.mark.slow  # trains the alignment model for 60 iterations
def test_mrf_command_writes_snippets_and_reports_accuracy(alignment_checkpoint, shapes_root,
                                                          tmp_path, capsys):
    assert mrf_command.main([alignment_checkpoint, "--out", str(tmp_path), "--max_images", "20",
                     "--data_root", shapes_root]) == 0
    images = json.load(open(tmp_path / "snippets.json"))
    assert len(images) == 20
    for image in images:
        assert len(image["sentences"]) == 5
        assert all(len(s["assignment"]) == len(s["tokens"]) for s in image["sentences"])
        assert [r["region"] for r in image["regions"]] == list(range(len(image["boxes"])))
        # every snippet of every sentence is listed under its region
        listed = sorted(t for r in image["regions"] for t in r["snippets"])
        assert listed == sorted(t for s in image["sentences"] for _, t in s["snippets"])
    page = open(tmp_path / "snippets.html").read()
    assert page.count("<img") == 20
    assert page.count("border:2px solid") == sum(len(i["boxes"]) - 1 for i in images)
    out = capsys.readouterr().out
    accuracy = float(out.split("snippet-region accuracy")[1].split(":")[1].split()[0])
    # chance: each word that names an object sent to one of its image's regions at random
    chance = np.mean([1 / len(image["boxes"]) for image in images
                      for s in image["sentences"] for r in s["token_region"] if r > 0])
    # the 60 iterations reach 0.636 on these 20 images (0.77 on all 300), chance 0.30
    assert accuracy > 0.5 and accuracy > chance + 0.2, (accuracy, chance)


@pytest.mark.slow  # trains the alignment model for 60 iterations
def test_region_dataset_trains_a_generator(alignment_checkpoint, shapes_root, tmp_path):
    from neuraltalk.train.checkpoint import load_checkpoint
    out = str(tmp_path / "regions")
    images = region_captions.build(load_checkpoint(alignment_checkpoint), out,
                                   data_root=shapes_root, min_words=1)
    data = load_dataset(out)
    assert len(data.images) == len(images) > 0
    assert all(img["region"] >= 1 and "objects" in img for img in images)
    assert data.feature_width == extractor.FEATURE_WIDTH
    cv = tmp_path / "cv"
    assert driver.main(["--dataset", out, "--checkpoint_output_directory", str(cv),
                        "--worker_status_output_directory", str(cv / "status"),
                        "--hidden_size", "32", "--image_encoding_size", "32",
                        "--word_encoding_size", "32", "--max_iters", "5",
                        "--word_count_threshold", "1"]) == 0
    from neuraltalk.train.runs import best_checkpoint
    generator = best_checkpoint(str(cv))
    # the captioner captions every region of the source dataset's test images
    assert region_captions_command.main([generator, "--out", str(tmp_path / "captions"),
                                 "--max_images", "10", "--data_root", shapes_root]) == 0
    items = json.load(open(tmp_path / "captions" / "region_captions.json"))
    source = load_dataset("shapes", data_root=shapes_root)
    assert [i["imgid"] for i in items] == [img["imgid"] for img in source.split("test")[:10]]
    for item in items:
        objects = source.images[item["imgid"]]["objects"]
        assert [e["region"] for e in item["regions"]] == list(range(1, len(objects) + 1))
        assert all(isinstance(e["caption"], str) and "correct" in e for e in item["regions"])
    page = open(tmp_path / "captions" / "region_captions.html").read()
    assert page.count("<img") == 10 and page.count("border:2px solid") == \
        sum(len(i["regions"]) for i in items)


@pytest.mark.slow  # trains the alignment model for 60 iterations
def test_captioning_regions_with_an_alignment_checkpoint_is_a_clear_error(alignment_checkpoint,
                                                                          shapes_root):
    from neuraltalk.train.checkpoint import load_checkpoint
    from neuraltalk.errors import NeuralTalkError
    with pytest.raises(NeuralTalkError, match="needs a generator checkpoint"):
        region_captions.caption_regions(load_checkpoint(alignment_checkpoint),
                                        data_root=shapes_root)


@pytest.mark.slow
def test_building_again_into_the_same_folder_needs_overwrite(alignment_checkpoint, shapes_root,
                                                             tmp_path, capsys):
    out = str(tmp_path / "regions")
    argv = [alignment_checkpoint, "--out", out, "--data_root", shapes_root]
    assert region_captions_command.main(argv) == 0
    first = open(os.path.join(out, "dataset.json")).read()
    assert region_captions_command.main(argv) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert region_captions_command.main(argv + ["--overwrite", "--beta", "100"]) == 0
    assert open(os.path.join(out, "dataset.json")).read() != first


# ---- refused before any work: checkpoints that only need to say what they are -----------

def fake_checkpoint(tmp_path, **params):
    path = str(tmp_path / "fake.p")
    save_checkpoint(path, {"model": {"We": np.zeros((3, 2))}, "params": params})
    return path


def source_dataset(tmp_path):
    """A dataset folder with its files, to check they survive."""
    folder = tmp_path / "source"
    folder.mkdir()
    for name in ("dataset.json", "vgg_feats.npy", "features.json"):
        (folder / name).write_text("source " + name)
    return folder


def _error(capsys, argv):
    assert region_captions_command.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    return err


def test_an_existing_dataset_in_out_is_refused_without_overwrite(tmp_path, capsys):
    source = source_dataset(tmp_path)
    out = tmp_path / "regions"
    out.mkdir()
    (out / "dataset.json").write_text("an older region dataset")
    err = _error(capsys, [fake_checkpoint(tmp_path, model="brnn", dataset=str(source)),
                          "--out", str(out)])
    assert str(out / "dataset.json") in err and "--overwrite" in err
    assert (out / "dataset.json").read_text() == "an older region dataset"


def test_the_dataset_being_read_is_never_the_output_even_with_overwrite(tmp_path, capsys):
    source = source_dataset(tmp_path)
    os.symlink(source, tmp_path / "alias")  # the same folder under another name
    err = _error(capsys, [fake_checkpoint(tmp_path, model="brnn", dataset=str(source)),
                          "--out", str(tmp_path / "alias"), "--overwrite"])
    assert "is the dataset the regions come from" in err
    for name in ("dataset.json", "vgg_feats.npy", "features.json"):
        assert (source / name).read_text() == "source " + name


def test_a_feature_file_that_would_shadow_the_region_features_is_refused(tmp_path, capsys):
    source = source_dataset(tmp_path)
    out = tmp_path / "regions"
    out.mkdir()
    (out / "vgg_feats.mat").write_text("read before vgg_feats.npy")
    err = _error(capsys, [fake_checkpoint(tmp_path, model="brnn", dataset=str(source)),
                          "--out", str(out), "--overwrite"])
    assert "vgg_feats.mat" in err and "remove it" in err


@pytest.mark.parametrize("model", ["brnn", "generator"])
def test_an_out_that_is_a_file_is_one_clear_error(tmp_path, capsys, model):
    (tmp_path / "taken").write_text("a file")
    err = _error(capsys, [fake_checkpoint(tmp_path, model=model, dataset="x"),
                          "--out", str(tmp_path / "taken")])
    assert "taken is a file, not a folder" in err
    assert (tmp_path / "taken").read_text() == "a file"


@pytest.mark.parametrize("value", ["0", "-3"])
def test_max_images_must_be_positive_or_minus_one(tmp_path, capsys, value):
    err = _error(capsys, [fake_checkpoint(tmp_path, model="generator", dataset="x"),
                          "--max_images", value, "--out", str(tmp_path / "o")])
    assert "--max_images %s: must be positive, or -1 for all" % value in err


@pytest.mark.parametrize("value", ["nan", "-1", "inf"])
def test_beta_must_be_a_finite_non_negative_number(tmp_path, capsys, value):
    err = _error(capsys, [fake_checkpoint(tmp_path, model="brnn", dataset="x"),
                          "--beta", value, "--out", str(tmp_path / "o")])
    assert "--beta %s" % value in err and "finite number >= 0" in err
    assert not (tmp_path / "o").exists()
