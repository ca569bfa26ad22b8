"""driver.py end to end on the demo dataset: checkpoints, resuming, bad flags."""
import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import driver
from neuraltalk.checkpoint import load_checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _train(shapes_root, out, *flags):
    argv = ["--dataset", "shapes", "--data_root", shapes_root,
            "--checkpoint_output_directory", str(out),
            "--worker_status_output_directory", str(out / "status"),
            "--hidden_size", "32", "--image_encoding_size", "32", "--word_encoding_size", "32",
            "--batch_size", "20", "--eval_max_images", "20", "--eval_period", "1000"]
    return driver.main(argv + list(flags))


def _checkpoints(folder):
    return sorted(glob.glob(os.path.join(str(folder), "model_checkpoint_*.p")))


def _last(folder):
    (path,) = glob.glob(os.path.join(str(folder), "model_checkpoint_*_last.p"))
    return path


def test_short_run_writes_a_checkpoint_that_loads(shapes_root, tmp_path, capsys):
    assert _train(shapes_root, tmp_path, "--max_iters", "5") == 0
    out = capsys.readouterr().out
    assert "4/5 batch done in" in out and "ETA" in out and "ppl2 =" in out
    path, last = _checkpoints(tmp_path)
    assert last.endswith("_last.p")
    assert os.path.basename(path).startswith("model_checkpoint_shapes_")
    c = load_checkpoint(path)
    assert c["it"] == 4 and c["params"]["generator"] == "lstm"
    assert c["model"]["WLSTM"].shape == (1 + 32 + 32, 4 * 32)
    assert np.isclose(float(path.rsplit("_", 1)[1][:-2]), c["perplexity"], atol=0.01)
    assert set(c["solver_cache"]) == set(c["model"])
    status = glob.glob(str(tmp_path / "status" / "*_status.json"))
    assert status and json.load(open(status[0]))["iter"] == [4, 5]


@pytest.mark.parametrize("generator", ["lstm", "rnn"])
def test_resuming_continues_exactly_as_an_uninterrupted_run(shapes_root, tmp_path, generator):
    first, resumed, straight = tmp_path / "first", tmp_path / "resumed", tmp_path / "straight"
    assert _train(shapes_root, first, "--generator", generator, "--max_iters", "4") == 0
    ckpt = _last(first)
    assert _train(shapes_root, resumed, "--generator", generator, "--max_iters", "8",
                  "--init_model_from", ckpt) == 0
    assert _train(shapes_root, straight, "--generator", generator, "--max_iters", "8") == 0
    a = load_checkpoint(_last(resumed))
    b = load_checkpoint(_last(straight))
    assert a["it"] == b["it"] == 7
    for key in b["model"]:
        np.testing.assert_array_equal(a["model"][key], b["model"][key])


def test_grad_check_mode_passes_on_a_real_batch(shapes_root, tmp_path, capsys):
    assert _train(shapes_root, tmp_path, "--do_grad_check", "1") == 0
    out = capsys.readouterr().out
    assert "gradient check PASSED" in out and "WLSTM" in out


@pytest.mark.parametrize("flags", [["--generator", "rnn"],
                                   ["--model", "brnn", "--embedding_size", "32",
                                    "--word_vector_size", "32"]])
def test_grad_check_passes_despite_relu_kinks(shapes_root, tmp_path, capsys, flags):
    assert _train(shapes_root, tmp_path, "--do_grad_check", "1", *flags) == 0
    out = capsys.readouterr().out
    assert "gradient check PASSED" in out and "entries skipped where a ReLU" in out


def test_grad_check_fails_on_a_wrong_gradient(shapes_root, tmp_path, capsys, monkeypatch):
    from neuraltalk import generators
    right = generators.batch_cost

    def wrong(*args, **kwargs):
        cost, grads = right(*args, **kwargs)
        grads["Whh"] = grads["Whh"] * 1.01
        return cost, grads
    monkeypatch.setattr(generators, "batch_cost", wrong)
    assert _train(shapes_root, tmp_path, "--do_grad_check", "1", "--generator", "rnn") == 1
    assert "gradient check FAILED" in capsys.readouterr().out


def test_exploding_cost_aborts(shapes_root, tmp_path, capsys):
    code = _train(shapes_root, tmp_path, "--max_iters", "30", "--solver", "vanilla",
                  "--learning_rate", "1000", "--grad_clip", "1000")
    assert code == 1
    assert "cost is exploding" in capsys.readouterr().out


def test_unknown_dataset_is_one_clear_error(tmp_path):
    result = subprocess.run([sys.executable, "driver.py", "--dataset", "nosuchdataset",
                             "--data_root", str(tmp_path)], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "nosuchdataset" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("flags, message", [
    (["--solver", "sgdd"], "invalid choice: 'sgdd'"),
    (["--drop_prob_encoder", "1.5"], "--drop_prob_encoder must be in [0, 1)"),
    (["--batch_size", "0"], "--batch_size must be positive"),
])
def test_bad_flag_values_are_refused(flags, message, capsys):
    with pytest.raises(SystemExit) as e:
        driver.main(flags)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_ctrl_c_writes_a_last_checkpoint_and_exits_cleanly(shapes_root, tmp_path):
    import signal
    proc = subprocess.Popen(
        [sys.executable, "-u", "driver.py", "--dataset", "shapes", "--data_root", shapes_root,
         "--checkpoint_output_directory", str(tmp_path), "--worker_status_output_directory",
         str(tmp_path / "status"), "--hidden_size", "32", "--image_encoding_size", "32",
         "--word_encoding_size", "32", "--batch_size", "20", "--max_iters", "100000"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # as from a terminal: a shell's background job would start with SIGINT ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for line in proc.stdout:  # wait until training is under way
        if "3/100000 batch done" in line:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    (path,) = _checkpoints(tmp_path)
    assert path.endswith("_interrupted.p")
    assert load_checkpoint(path)["it"] >= 3
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".tmp")]
