"""The alignment model trained through driver.py on the demo dataset, then evaluated,
aligned by the MRF, and turned into a region-caption dataset that trains a generator."""
import glob
import json

import pytest

import driver
import eval_sentence_predictions
from neuraltalk import mrf, region_captions
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
    (path,) = glob.glob(str(out / "model_checkpoint_*[0-9].p"))  # the best, not _last
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
    assert "snippet-region accuracy" in capsys.readouterr().out


def test_region_dataset_trains_a_generator(alignment_checkpoint, shapes_root, tmp_path):
    from neuraltalk.checkpoint import load_checkpoint
    out = str(tmp_path / "regions")
    images = region_captions.build(load_checkpoint(alignment_checkpoint), out,
                                   data_root=shapes_root, min_words=1)
    data = load_dataset(out)
    assert len(data.images) == len(images) > 0
    assert all(img["region"] >= 1 and "objects" in img for img in images)
    assert data.feature_width == 342
    cv = tmp_path / "cv"
    assert driver.main(["--dataset", out, "--checkpoint_output_directory", str(cv),
                        "--worker_status_output_directory", str(cv / "status"),
                        "--hidden_size", "32", "--image_encoding_size", "32",
                        "--word_encoding_size", "32", "--max_iters", "5",
                        "--word_count_threshold", "1"]) == 0
    (generator,) = glob.glob(str(cv / "model_checkpoint_regions_*.p"))
    # the captioner captions every region of the source dataset's test images
    assert region_captions.main([generator, "--out", str(tmp_path / "captions"),
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


def test_captioning_regions_with_an_alignment_checkpoint_is_a_clear_error(alignment_checkpoint,
                                                                          shapes_root):
    from neuraltalk.checkpoint import load_checkpoint
    from neuraltalk.errors import NeuralTalkError
    with pytest.raises(NeuralTalkError, match="needs a generator checkpoint"):
        region_captions.caption_regions(load_checkpoint(alignment_checkpoint),
                                        data_root=shapes_root)
