"""m-RNN and LRCN through the scripts on the demo dataset, exactly as the LSTM goes:
--do_grad_check, exact resume, captioning with beam search, retrieval by likelihood."""
import glob
import json
import os

import numpy as np
import pytest

import driver
import eval_sentence_predictions
from neuraltalk.train.checkpoint import load_checkpoint

FLAGS = {"mrnn": ["--generator", "mrnn", "--mrnn_embedding_size", "16",
                  "--mrnn_multimodal_size", "24"],
         "lrcn": ["--generator", "lrcn", "--lrcn_variant", "2f"]}


def _train(shapes_root, out, generator, *flags):
    argv = ["--dataset", "shapes", "--data_root", shapes_root,
            "--checkpoint_output_directory", str(out),
            "--worker_status_output_directory", str(out / "status"),
            "--hidden_size", "32", "--image_encoding_size", "20", "--word_encoding_size", "32",
            "--batch_size", "20", "--eval_max_images", "20", "--eval_period", "1000"]
    return driver.main(argv + FLAGS[generator] + list(flags))


def _last(folder):
    (path,) = glob.glob(os.path.join(str(folder), "model_checkpoint_*_last.p"))
    return path


@pytest.mark.slow  # 20 to 50 s on a loaded 2-core machine: 40 entries of every parameter
@pytest.mark.parametrize("generator", sorted(FLAGS))
def test_grad_check_mode_passes_on_a_real_batch(shapes_root, tmp_path, capsys, generator):
    assert _train(shapes_root, tmp_path, generator, "--do_grad_check", "1") == 0
    assert "gradient check PASSED" in capsys.readouterr().out


@pytest.mark.parametrize("generator", sorted(FLAGS))
def test_resuming_continues_exactly_as_an_uninterrupted_run(shapes_root, tmp_path, generator):
    first, resumed, straight = tmp_path / "first", tmp_path / "resumed", tmp_path / "straight"
    assert _train(shapes_root, first, generator, "--max_iters", "3") == 0
    assert _train(shapes_root, resumed, generator, "--max_iters", "6",
                  "--init_model_from", _last(first)) == 0
    assert _train(shapes_root, straight, generator, "--max_iters", "6") == 0
    a, b = load_checkpoint(_last(resumed)), load_checkpoint(_last(straight))
    assert a["it"] == b["it"] == 5 and a["params"]["generator"] == generator
    for key in b["model"]:
        np.testing.assert_array_equal(a["model"][key], b["model"][key])


@pytest.mark.parametrize("generator", sorted(FLAGS))
def test_captions_and_retrieval_by_likelihood_from_a_checkpoint(shapes_root, tmp_path, capsys,
                                                                generator):
    assert _train(shapes_root, tmp_path, generator, "--max_iters", "20") == 0
    ckpt = _last(tmp_path)
    assert eval_sentence_predictions.main([ckpt, "--max_images", "6", "--beam_size", "3",
                                           "--out", str(tmp_path), "--no_meteor"]) == 0
    result = json.load(open(tmp_path / "result_struct.json"))
    assert result["images"] == 6 and result["checkpoint_params"]["generator"] == generator
    assert eval_sentence_predictions.main([ckpt, "--retrieval", "--max_images", "5",
                                           "--out", str(tmp_path)]) == 0
    table = json.load(open(tmp_path / "retrieval.json"))
    assert set(table) == {"i2t", "t2i"}
    for d in ("i2t", "t2i"):
        assert set(table[d]) == {"R@1", "R@5", "R@10", "medr"}
        assert 0 <= table[d]["R@1"] <= table[d]["R@5"] <= table[d]["R@10"] <= 1
    # 5 images: every image ranks within 10 (an image's 25 sentences need not)
    assert table["t2i"]["R@10"] == 1.0
    assert "retrieval by likelihood (%s) on 5 images" % generator in capsys.readouterr().out


def test_retrieval_refuses_a_meaningless_image_limit(shapes_root, tmp_path, capsys):
    assert _train(shapes_root, tmp_path, "lrcn", "--max_iters", "2") == 0
    assert eval_sentence_predictions.main([_last(tmp_path), "--retrieval",
                                           "--max_images", "0"]) == 2
    assert "--max_images 0" in capsys.readouterr().err
