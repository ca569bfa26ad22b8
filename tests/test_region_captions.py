"""The alignment model trained through driver.py on the demo dataset, then evaluated,
aligned by the MRF, and turned into a region-caption dataset that trains a generator."""
import glob
import json

import pytest

import driver
import eval_sentence_predictions
from neuraltalk import mrf, region_captions, shapes
from neuraltalk.dataset import load_dataset

pytestmark = pytest.mark.slow  # trains the alignment model for 60 iterations


@pytest.fixture(scope="module")
def alignment_checkpoint(shapes_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("cv")
    assert driver.main(["--dataset", "shapes", "--data_root", shapes_root, "--model", "brnn",
                        "--checkpoint_output_directory", str(out),
                        "--worker_status_output_directory", str(out / "status"),
                        "--embedding_size", "64", "--word_vector_size", "32",
                        "--max_iters", "60", "--eval_max_images", "50",
                        "--eval_period", "1000"]) == 0
    (path,) = glob.glob(str(out / "model_checkpoint_*.p"))
    return path


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


def test_mrf_command_writes_snippets_and_reports_accuracy(alignment_checkpoint, shapes_root,
                                                          tmp_path, capsys):
    assert mrf.main([alignment_checkpoint, "--out", str(tmp_path), "--max_images", "20",
                     "--data_root", shapes_root]) == 0
    items = json.load(open(tmp_path / "snippets.json"))
    assert len(items) == 100  # 20 images x 5 sentences
    assert all(len(i["assignment"]) == len(i["tokens"]) for i in items)
    page = open(tmp_path / "snippets.html").read()
    assert page.count("<img") == 100 and "border:2px solid" in page
    assert "snippet-region accuracy" in capsys.readouterr().out


def test_region_dataset_trains_a_generator(alignment_checkpoint, shapes_root, tmp_path):
    from neuraltalk.checkpoint import load_checkpoint
    out = str(tmp_path / "regions")
    images = region_captions.build(load_checkpoint(alignment_checkpoint), out,
                                   data_root=shapes_root, min_words=1)
    data = load_dataset(out)
    assert len(data.images) == len(images) > 0
    assert all(img["region"] >= 1 and "objects" in img for img in images)
    assert data.feature_width == shapes.FEATURE_WIDTH
    cv = tmp_path / "cv"
    assert driver.main(["--dataset", out, "--checkpoint_output_directory", str(cv),
                        "--worker_status_output_directory", str(cv / "status"),
                        "--hidden_size", "32", "--image_encoding_size", "32",
                        "--word_encoding_size", "32", "--max_iters", "5",
                        "--word_count_threshold", "1"]) == 0
    assert glob.glob(str(cv / "model_checkpoint_regions_*.p"))
