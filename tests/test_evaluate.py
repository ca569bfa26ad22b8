"""eval_sentence_predictions.py end to end on the demo dataset."""
import glob
import json

import pytest

import driver
import eval_sentence_predictions
from neuraltalk.metrics import COCO_KEYS


@pytest.fixture(scope="module")
def trained(shapes_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("cv")
    assert driver.main(["--dataset", "shapes", "--data_root", shapes_root,
                        "--checkpoint_output_directory", str(out),
                        "--worker_status_output_directory", str(out / "status"),
                        "--hidden_size", "64", "--image_encoding_size", "64",
                        "--word_encoding_size", "64", "--max_iters", "60",
                        "--eval_max_images", "20", "--eval_period", "1000"]) == 0
    (path,) = glob.glob(str(out / "model_checkpoint_*[0-9].p"))  # the best, not _last
    return path


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
