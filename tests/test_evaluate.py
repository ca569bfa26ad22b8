"""eval_sentence_predictions.py end to end on the demo dataset."""
import json
import os

import pytest

import driver
import eval_sentence_predictions
from neuraltalk.train.checkpoint import load_checkpoint, save_checkpoint
from neuraltalk.metrics import COCO_KEYS
from neuraltalk.train.runs import best_checkpoint


@pytest.fixture(scope="module")
def trained(shapes_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("cv")
    assert driver.main(["--dataset", "shapes", "--data_root", shapes_root,
                        "--checkpoint_output_directory", str(out),
                        "--worker_status_output_directory", str(out / "status"),
                        "--hidden_size", "64", "--image_encoding_size", "64",
                        "--word_encoding_size", "64", "--max_iters", "60",
                        "--eval_max_images", "20", "--eval_period", "1000"]) == 0
    return best_checkpoint(str(out))


def test_writes_metrics_with_coco_keys_and_a_page(trained, tmp_path, capsys):
    assert eval_sentence_predictions.main([trained, "--max_images", "30", "--beam_size", "3",
                                           "--out", str(tmp_path), "--no_meteor"]) == 0
    result = json.load(open(tmp_path / "result_struct.json"))
    assert set(result["metrics"]) == set(COCO_KEYS) - {"METEOR"}
    assert 0 < result["metrics"]["Bleu_1"] <= 1 and result["metrics"]["CIDEr"] > 0
    assert len(result["imgblobs"]) == 30 and result["images"] == 30
    blob = result["imgblobs"][0]
    assert len(blob["references"]) == 5 and "Bleu_4" in blob["scores"]
    assert result["val_perplexity"] > 1
    assert 0 <= result["fraction_in_training_set"] <= 1
    assert 0 <= result["fraction_correct_colours_and_shapes"] <= 1
    assert result["checkpoint_params"]["dataset"] == "shapes"
    page = open(tmp_path / "result.html").read()
    assert page.count("<img") == 30 and "sortBy" in page and "Bleu_4" in page
    out = capsys.readouterr().out
    assert "CIDEr" in out and "METEOR skipped" in out


def test_unknown_split_is_refused(trained, capsys):
    with pytest.raises(SystemExit):
        eval_sentence_predictions.main([trained, "--split", "nosuch"])
    assert "invalid choice" in capsys.readouterr().err


def test_missing_checkpoint_is_one_clear_error(tmp_path, capsys):
    assert eval_sentence_predictions.main([str(tmp_path / "none.p")]) == 2
    assert "none.p" in capsys.readouterr().err


def test_a_runs_folder_is_evaluated_with_its_best_checkpoint(trained, tmp_path, capsys):
    folder = os.path.dirname(trained)
    assert eval_sentence_predictions.main([folder, "--max_images", "5", "--out", str(tmp_path),
                                           "--no_meteor"]) == 0
    assert "using %s" % trained in capsys.readouterr().out
    assert json.load(open(tmp_path / "result_struct.json"))["checkpoint_path"] == trained


def _error(capsys, argv):
    assert eval_sentence_predictions.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    return err


def test_an_out_that_is_a_file_is_one_clear_error(trained, tmp_path, capsys):
    (tmp_path / "taken").write_text("a file")
    err = _error(capsys, [trained, "--max_images", "5", "--out", str(tmp_path / "taken"),
                          "--no_meteor"])
    assert "taken is a file, not a folder" in err
    assert (tmp_path / "taken").read_text() == "a file"


@pytest.mark.parametrize("value", ["0", "-2"])
def test_max_images_must_be_positive_or_minus_one(trained, tmp_path, capsys, value):
    err = _error(capsys, [trained, "--max_images", value, "--out", str(tmp_path), "--no_meteor"])
    assert "--max_images %s: must be positive, or -1 for all" % value in err
    assert not (tmp_path / "result_struct.json").exists()


def test_test_images_without_sentences_are_skipped_with_a_note(trained, shapes_root, tmp_path,
                                                                capsys):
    """Images with no references cannot be scored: they are left out and the note says so."""
    source = os.path.join(shapes_root, "shapes")
    folder = tmp_path / "unsure"
    folder.mkdir()
    blob = json.load(open(os.path.join(source, "dataset.json")))
    test_ids = [img["imgid"] for img in blob["images"] if img["split"] == "test"]
    for img in blob["images"]:
        if img["imgid"] in test_ids[:2]:
            img["sentences"], img["sentids"] = [], []
    (folder / "dataset.json").write_text(json.dumps(blob))
    for name in ("vgg_feats.npy", "features.json"):
        os.symlink(os.path.join(source, name), folder / name)
    checkpoint = load_checkpoint(trained)
    checkpoint["params"] = dict(checkpoint["params"], dataset=str(folder))
    save_checkpoint(str(tmp_path / "ckpt.p"), checkpoint)
    assert eval_sentence_predictions.main([str(tmp_path / "ckpt.p"), "--max_images", "6",
                                           "--out", str(tmp_path), "--no_meteor"]) == 0
    result = json.load(open(tmp_path / "result_struct.json"))
    assert [b["imgid"] for b in result["imgblobs"]] == test_ids[2:8]
    assert any("2 test images have no sentences" in n for n in result["notes"])
    assert "2 test images have no sentences" in capsys.readouterr().out
