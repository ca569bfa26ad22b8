"""predict_on_images.py end to end on the example photos, and its errors."""
import json
import os
import shutil

import numpy as np
import pytest

import predict_on_images
from neuraltalk.train.checkpoint import load_checkpoint, save_checkpoint
from neuraltalk.train.runs import best_checkpoint


@pytest.fixture
def photo_folder(example_images, tmp_path):
    """The example photos (linked, not copied), tasks.txt and vgg_feats.mat in tmp_path."""
    for name in ("tasks.txt", "vgg_feats.mat"):
        shutil.copy(os.path.join(example_images, name), tmp_path / name)
    for name in open(os.path.join(example_images, "tasks.txt")).read().split():
        os.symlink(os.path.join(example_images, name), tmp_path / name)
    return tmp_path


@pytest.mark.parametrize("beam_size", [1, 7])
def test_neuraltalk_checkpoint_gives_neuraltalk_captions(photo_folder, neuraltalk_checkpoint_dir,
                                                         beam_size):
    ckpt = os.path.join(neuraltalk_checkpoint_dir, "neuraltalk_lstm.p")
    assert predict_on_images.main([ckpt, "-r", str(photo_folder),
                                   "--beam_size", str(beam_size)]) == 0
    got = json.load(open(photo_folder / "result_struct.json"))
    expected = json.load(open(os.path.join(neuraltalk_checkpoint_dir,
                                           "expected_beam%d.json" % beam_size)))
    assert [b["img_path"] for b in got["imgblobs"]] == [b["img_path"] for b in expected["imgblobs"]]
    for g, e in zip(got["imgblobs"], expected["imgblobs"]):
        assert g["candidate"]["text"] == e["candidate"]["text"]
        assert g["candidate"]["logprob"] == pytest.approx(e["candidate"]["logprob"], abs=1e-9)
    assert got["checkpoint_params"]["generator"] == "lstm"
    page = open(photo_folder / "result.html").read()
    assert page.count("<img") == 16 and expected["imgblobs"][0]["candidate"]["text"] in page


def _error(capsys, argv):
    assert predict_on_images.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    return err


def test_missing_tasks_file(photo_folder, neuraltalk_checkpoint_dir, capsys):
    os.remove(photo_folder / "tasks.txt")
    err = _error(capsys, [os.path.join(neuraltalk_checkpoint_dir, "neuraltalk_lstm.p"),
                          "-r", str(photo_folder)])
    assert "tasks.txt does not exist" in err


def test_missing_feature_file(photo_folder, neuraltalk_checkpoint_dir, capsys):
    os.remove(photo_folder / "vgg_feats.mat")
    err = _error(capsys, [os.path.join(neuraltalk_checkpoint_dir, "neuraltalk_lstm.p"),
                          "-r", str(photo_folder)])
    assert "no feature file" in err and "vgg_feats.mat" in err


def test_listed_image_that_is_absent(photo_folder, neuraltalk_checkpoint_dir, capsys):
    with open(photo_folder / "tasks.txt", "a") as f:
        f.write("nothere.jpg\n")
    err = _error(capsys, [os.path.join(neuraltalk_checkpoint_dir, "neuraltalk_lstm.p"),
                          "-r", str(photo_folder)])
    assert "nothere.jpg" in err


def test_feature_width_that_does_not_fit_the_checkpoint(photo_folder, neuraltalk_checkpoint_dir,
                                                        capsys):
    os.remove(photo_folder / "vgg_feats.mat")
    np.save(photo_folder / "vgg_feats.npy", np.ones((16, 1280), np.float32))
    err = _error(capsys, [os.path.join(neuraltalk_checkpoint_dir, "neuraltalk_lstm.p"),
                          "-r", str(photo_folder)])
    assert "1280-d" in err and "4096-d" in err


def test_feature_count_that_does_not_fit_tasks(photo_folder, neuraltalk_checkpoint_dir, capsys):
    os.remove(photo_folder / "vgg_feats.mat")
    np.save(photo_folder / "vgg_feats.npy", np.ones((15, 4096), np.float32))
    err = _error(capsys, [os.path.join(neuraltalk_checkpoint_dir, "neuraltalk_lstm.p"),
                          "-r", str(photo_folder)])
    assert "15 images" in err and "16" in err


def test_corrupt_checkpoint(photo_folder, tmp_path, capsys):
    bad = tmp_path / "bad.p"
    bad.write_bytes(b"not a pickle at all")
    err = _error(capsys, [str(bad), "-r", str(photo_folder)])
    assert "bad.p" in err


@pytest.fixture(scope="module")
def shapes_run(shapes_root, tmp_path_factory):
    """The folder of a short run on the demo dataset."""
    import driver
    cv = tmp_path_factory.mktemp("cv")
    assert driver.main(["--dataset", "shapes", "--data_root", shapes_root,
                        "--checkpoint_output_directory", str(cv),
                        "--worker_status_output_directory", str(cv / "status"),
                        "--hidden_size", "32", "--image_encoding_size", "32",
                        "--word_encoding_size", "32", "--max_iters", "3",
                        "--eval_max_images", "5"]) == 0
    return str(cv)


@pytest.fixture
def shapes_photos(shapes_root, tmp_path):
    """Two demo images and their tasks.txt, without features."""
    folder = tmp_path / "photos"
    folder.mkdir()
    images = os.path.join(shapes_root, "shapes", "images")
    for name in ("00000.png", "00001.png"):
        shutil.copy(os.path.join(images, name), folder / name)
    (folder / "tasks.txt").write_text("00000.png\n00001.png\n")
    return folder


def test_folder_without_features_is_captioned_with_the_checkpoints_cnn(shapes_run, shapes_photos,
                                                                       capsys):
    """A checkpoint records the CNN of its training features (here the demo dataset's
    extractor); a folder of raw images gets its features from it."""
    assert predict_on_images.main([best_checkpoint(shapes_run), "-r", str(shapes_photos)]) == 0
    assert "extracting features with shapes-extractor" in capsys.readouterr().out
    assert len(json.load(open(shapes_photos / "result_struct.json"))["imgblobs"]) == 2


def test_a_runs_folder_captions_with_its_best_checkpoint(shapes_run, shapes_photos, capsys):
    assert predict_on_images.main([shapes_run, "-r", str(shapes_photos)]) == 0
    assert "using %s" % best_checkpoint(shapes_run) in capsys.readouterr().out
    result = json.load(open(shapes_photos / "result_struct.json"))
    assert result["params"]["checkpoint_path"] == best_checkpoint(shapes_run)


def _checkpoint_with_cnn(shapes_run, tmp_path, cnn):
    checkpoint = load_checkpoint(best_checkpoint(shapes_run))
    checkpoint["params"] = dict(checkpoint["params"], cnn=cnn)
    save_checkpoint(str(tmp_path / "ckpt.p"), checkpoint)
    return str(tmp_path / "ckpt.p")


def test_a_cnn_that_needs_weights_is_left_to_the_features_command(shapes_run, shapes_photos,
                                                                  tmp_path, capsys):
    """predict_on_images.py has no --weights: the message names the command that has."""
    err = _error(capsys, [_checkpoint_with_cnn(shapes_run, tmp_path, "vgg16"),
                          "-r", str(shapes_photos)])
    assert "python -m neuraltalk.features %s --cnn vgg16 --weights" % shapes_photos in err
    assert "predict_on_images.py" not in err


def test_a_cnn_the_features_command_does_not_know_is_named(shapes_run, shapes_photos, tmp_path,
                                                           capsys):
    err = _error(capsys, [_checkpoint_with_cnn(shapes_run, tmp_path, "resnet152"),
                          "-r", str(shapes_photos)])
    assert "resnet152" in err and "vgg_feats.mat" in err and "--cnn" not in err
