"""neuraltalk.train.runs: a run's folder stands for its best checkpoint; output folders."""
import os

import numpy as np
import pytest

from neuraltalk.train.checkpoint import load_checkpoint, save_checkpoint
from neuraltalk.errors import NeuralTalkError
from neuraltalk.train.runs import best_checkpoint, checkpoint_file, output_folder


def write_checkpoints(folder, *names):
    """Small real checkpoints, each remembering its own file name."""
    for name in names:
        save_checkpoint(str(folder / name), {"model": {"Wd": np.zeros((2, 3))},
                                             "params": {"name": name}})


def test_the_lowest_perplexity_wins_over_last_and_interrupted(tmp_path):
    write_checkpoints(tmp_path, "model_checkpoint_shapes_box_baseline_12.50.p",
                      "model_checkpoint_shapes_box_baseline_9.75.p",
                      "model_checkpoint_shapes_box_baseline_10.00.p",
                      "model_checkpoint_shapes_box_baseline_last.p",
                      "model_checkpoint_shapes_box_baseline_interrupted.p")
    picked = best_checkpoint(str(tmp_path))
    assert picked == str(tmp_path / "model_checkpoint_shapes_box_baseline_9.75.p")
    assert load_checkpoint(picked)["params"]["name"] == os.path.basename(picked)


def test_perplexities_compare_as_numbers_not_as_text(tmp_path):
    write_checkpoints(tmp_path, "model_checkpoint_coco_h_x_100.00.p",
                      "model_checkpoint_coco_h_x_20.00.p", "model_checkpoint_coco_h_x_inf.p")
    assert best_checkpoint(str(tmp_path)).endswith("_20.00.p")


def test_the_alignment_models_negated_scores_count_too(tmp_path):
    write_checkpoints(tmp_path, "model_checkpoint_shapes_h_x_-1.50.p",
                      "model_checkpoint_shapes_h_x_-4.24.p", "model_checkpoint_shapes_h_x_0.10.p")
    assert best_checkpoint(str(tmp_path)).endswith("_-4.24.p")


def test_the_highest_recall_sum_of_an_alignment_run_wins(tmp_path):
    write_checkpoints(tmp_path, "model_checkpoint_shapes_h_x_recall_sum1.500.p",
                      "model_checkpoint_shapes_h_x_recall_sum4.240.p",
                      "model_checkpoint_shapes_h_x_last.p")
    assert best_checkpoint(str(tmp_path)).endswith("_recall_sum4.240.p")


def test_a_run_prefix_may_end_in_digits(tmp_path):
    write_checkpoints(tmp_path, "model_checkpoint_shapes_node_7_3.10.p",
                      "model_checkpoint_shapes_node_7_last.p")
    assert best_checkpoint(str(tmp_path)).endswith("model_checkpoint_shapes_node_7_3.10.p")


def test_checkpoints_of_several_runs_are_refused_naming_the_runs(tmp_path):
    write_checkpoints(tmp_path, "model_checkpoint_shapes_box_baseline_9.75.p",
                      "model_checkpoint_shapes_box_wide_8.00.p")
    with pytest.raises(NeuralTalkError) as e:
        best_checkpoint(str(tmp_path))
    message = str(e.value)
    assert "2 runs" in message and "shapes_box_baseline" in message
    assert "shapes_box_wide" in message and "give the checkpoint file" in message


def test_a_folder_without_checkpoints_is_a_clear_error(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing here")
    with pytest.raises(NeuralTalkError, match="holds no best checkpoint"):
        best_checkpoint(str(tmp_path))


def test_a_folder_with_only_a_last_checkpoint_points_at_it(tmp_path):
    write_checkpoints(tmp_path, "model_checkpoint_shapes_box_baseline_last.p")
    with pytest.raises(NeuralTalkError, match="model_checkpoint_shapes_box_baseline_last.p; "
                                              "give that file"):
        best_checkpoint(str(tmp_path))


def test_checkpoint_file_passes_a_file_through_and_says_which_one_a_folder_gave(tmp_path,
                                                                              capsys):
    write_checkpoints(tmp_path, "model_checkpoint_shapes_box_baseline_9.75.p")
    path = str(tmp_path / "model_checkpoint_shapes_box_baseline_9.75.p")
    assert checkpoint_file(path) == path
    assert capsys.readouterr().out == ""
    assert checkpoint_file(str(tmp_path)) == path
    assert "using %s" % path in capsys.readouterr().out


def test_output_folder_is_created_and_a_file_in_its_place_refused(tmp_path):
    assert output_folder(str(tmp_path / "a" / "b")) == str(tmp_path / "a" / "b")
    assert os.path.isdir(tmp_path / "a" / "b")
    (tmp_path / "f").write_text("a file")
    with pytest.raises(NeuralTalkError, match="--out .*f is a file, not a folder"):
        output_folder(str(tmp_path / "f"))
