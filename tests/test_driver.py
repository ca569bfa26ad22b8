"""driver.py end to end on the demo dataset: checkpoints, resuming, bad flags."""
import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import driver
from neuraltalk.demo import extractor
from neuraltalk.train.checkpoint import load_checkpoint

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
    from neuraltalk.models import rnn
    right = rnn.loss

    def wrong(*args, **kwargs):
        cost, grads = right(*args, **kwargs)
        grads["Whh"] = grads["Whh"] * 1.01
        return cost, grads
    monkeypatch.setattr(rnn, "loss", wrong)
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


def _child_run(shapes_root, out):
    import signal
    return subprocess.Popen(
        [sys.executable, "-u", "driver.py", "--dataset", "shapes", "--data_root", shapes_root,
         "--checkpoint_output_directory", str(out), "--worker_status_output_directory",
         str(out / "status"), "--hidden_size", "32", "--image_encoding_size", "32",
         "--word_encoding_size", "32", "--batch_size", "20", "--max_iters", "100000"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def test_sigterm_writes_an_interrupted_checkpoint_and_exits_143(shapes_root, tmp_path):
    import signal
    proc = _child_run(shapes_root, tmp_path)
    for line in proc.stdout:
        if "3/100000 batch done" in line:
            break
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err  # 128 + SIGTERM, as a shell reports it
    assert "Traceback" not in err
    (path,) = _checkpoints(tmp_path)
    assert path.endswith("_interrupted.p") and load_checkpoint(path)["it"] >= 3


def test_stale_temporary_files_of_a_killed_run_are_removed_at_start(shapes_root, tmp_path,
                                                                    capsys):
    import time
    stale = tmp_path / ".tmp-abc123.p"
    stale.write_bytes(b"half a pickle")
    an_hour_ago = time.time() - 3600
    os.utime(stale, (an_hour_ago, an_hour_ago))
    fresh = tmp_path / ".tmp-xyz789.p"  # newer than this process: maybe another run's
    fresh.write_bytes(b"being written")
    folder = tmp_path / ".tmp-folder"
    folder.mkdir()
    os.utime(folder, (an_hour_ago, an_hour_ago))
    mine = tmp_path / "notes.tmp-1.p"
    mine.write_text("the user's")
    os.utime(mine, (an_hour_ago, an_hour_ago))
    assert _train(shapes_root, tmp_path, "--max_iters", "1") == 0
    assert not stale.exists()
    assert fresh.exists() and folder.is_dir() and mine.exists()
    assert "removed 1 stale temporary file a killed run left in %s: .tmp-abc123.p" % tmp_path \
        in capsys.readouterr().out


@pytest.mark.parametrize("flags, message", [
    (["-l", "nan"], "--learning_rate must be a finite number, not nan"),
    (["--eval_period", "nan"], "--eval_period must be a finite number"),
    (["--max_epochs", "nan"], "--max_epochs must be a finite number"),
    (["--max_epochs", "inf"], "--max_epochs must be a finite number"),
    (["--max_epochs", "0"], "--max_epochs must be positive"),
    (["--decay_rate", "2"], "--decay_rate must be in [0, 1)"),
    (["--seed", "-1"], "--seed must not be negative"),
    (["--embedding_size", "0"], "--embedding_size must be positive"),
    (["--word_vector_size", "0"], "--word_vector_size must be positive"),
    (["--beta", "nan"], "--beta must be a finite number"),
    (["--grad_clip", "nan"], "--grad_clip must be a finite number"),
    (["--momentum", "1"], "--momentum must be in [0, 1)"),
    (["--momentum", "-0.5"], "--momentum must be in [0, 1)"),
    (["--regc", "-1"], "--regc must not be negative"),
    (["--smooth_eps", "0"], "--smooth_eps must be positive"),
    (["--eval_max_images", "0"], "--eval_max_images must be positive, or -1 for all"),
    (["--fappend", "runs/a"], "--fappend goes into checkpoint file names"),
])
def test_meaningless_numeric_and_name_flags_are_refused(flags, message, capsys):
    with pytest.raises(SystemExit) as e:
        driver.main(flags)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_a_checkpoint_folder_that_is_a_file_fails_before_training(shapes_root, tmp_path,
                                                                 capsys):
    target = tmp_path / "cv"
    target.write_text("not a folder")
    assert _train(shapes_root, tmp_path, "--max_iters", "3",
                  "--checkpoint_output_directory", str(target)) == 2
    out, err = capsys.readouterr()
    assert "--checkpoint_output_directory %s is a file" % target in err
    assert "batch done" not in out


def test_a_checkpoint_folder_under_a_file_fails_before_training(shapes_root, tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert _train(shapes_root, tmp_path, "--max_iters", "3",
                  "--checkpoint_output_directory", str(tmp_path / "file" / "cv")) == 2
    out, err = capsys.readouterr()
    assert "is not a folder this run can write into" in err and "batch done" not in out


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root writes into read-only folders; the folder-under-a-file "
                           "test covers the same check")
def test_a_read_only_checkpoint_folder_fails_before_training(shapes_root, tmp_path, capsys):
    folder = tmp_path / "cv"
    folder.mkdir()
    folder.chmod(0o555)
    assert _train(shapes_root, tmp_path, "--max_iters", "3",
                  "--checkpoint_output_directory", str(folder)) == 2
    assert "is not a folder this run can write into" in capsys.readouterr().err


def _copy_shapes(shapes_root, dest, edit_images=None, edit_feats=None):
    import shutil
    src = os.path.join(shapes_root, "shapes")
    dest.mkdir()
    blob = json.load(open(os.path.join(src, "dataset.json")))
    if edit_images:
        edit_images(blob["images"])
    json.dump(blob, open(dest / "dataset.json", "w"))
    feats = np.load(os.path.join(src, "vgg_feats.npy"))
    if edit_feats:
        edit_feats(feats, blob["images"])
    np.save(dest / "vgg_feats.npy", feats)
    shutil.copy(os.path.join(src, "regions.h5"), dest / "regions.h5")
    return str(dest)


def test_a_nan_feature_row_of_a_val_image_is_found_before_training(shapes_root, tmp_path,
                                                                  capsys):
    found = {}

    def poison(feats, images):
        val = sorted(img["imgid"] for img in images if img["split"] == "val")
        found["imgid"] = val[-1]
        feats[val[-1], 3] = np.nan
    dataset = _copy_shapes(shapes_root, tmp_path / "poisoned", edit_feats=poison)
    assert _train(shapes_root, tmp_path, "--dataset", dataset, "--max_iters", "3") == 2
    out, err = capsys.readouterr()
    assert "vgg_feats.npy holds NaN or infinite values (rows %d)" % found["imgid"] in err
    assert "batch done" not in out


def test_an_empty_vocabulary_is_refused_before_training(shapes_root, tmp_path, capsys):
    assert _train(shapes_root, tmp_path, "--word_count_threshold", "100000",
                  "--max_iters", "3") == 2
    out, err = capsys.readouterr()
    assert "no word occurs --word_count_threshold 100000 times" in err
    assert "batch done" not in out and not _checkpoints(tmp_path)


def test_training_sentences_without_tokens_are_refused(shapes_root, tmp_path, capsys):
    def empty(images):
        for img in images:
            for s in img["sentences"]:
                s["tokens"] = []
    dataset = _copy_shapes(shapes_root, tmp_path / "empty", edit_images=empty)
    assert _train(shapes_root, tmp_path, "--dataset", dataset, "--max_iters", "3") == 2
    assert "every sentence of the train split has an empty token list" in capsys.readouterr().err


def test_nan_parameters_stop_the_run_and_keep_the_last_good_checkpoint(shapes_root, tmp_path,
                                                                       capsys, monkeypatch):
    from neuraltalk.train import solvers
    right = solvers.update
    calls = []

    def poisoned(model, grads, cache, params):
        right(model, grads, cache, params)
        calls.append(1)
        if len(calls) == 8:
            model["Wd"][0, 0] = np.nan
    monkeypatch.setattr(solvers, "update", poisoned)
    # validation (and a best checkpoint) after iteration 4 of 20, NaN at iteration 7
    code = _train(shapes_root, tmp_path, "--max_iters", "20", "--eval_period",
                  str(5 * 20 / 12000))
    assert code == 1
    assert "the update left NaN or infinite values in Wd" in capsys.readouterr().out
    (path,) = _checkpoints(tmp_path)
    c = load_checkpoint(path)
    assert c["it"] == 4 and all(np.isfinite(v).all() for v in c["model"].values())


def test_resuming_from_a_checkpoint_written_before_any_validation(shapes_root, tmp_path):
    from neuraltalk.train.checkpoint import save_checkpoint
    assert _train(shapes_root, tmp_path / "a", "--max_iters", "2") == 0
    c = load_checkpoint(_last(tmp_path / "a"))
    c["perplexity"] = None  # as in an _interrupted.p written before the first validation
    save_checkpoint(str(tmp_path / "interrupted.p"), c)
    assert _train(shapes_root, tmp_path / "b", "--max_iters", "4",
                  "--init_model_from", str(tmp_path / "interrupted.p")) == 0
    assert load_checkpoint(_last(tmp_path / "b"))["it"] == 3


def test_a_resumed_run_that_never_beats_the_stored_perplexity_still_saves_its_end(
        shapes_root, tmp_path):
    from neuraltalk.train.checkpoint import save_checkpoint
    assert _train(shapes_root, tmp_path / "a", "--max_iters", "2") == 0
    c = load_checkpoint(_last(tmp_path / "a"))
    c["perplexity"] = 1.0  # unbeatable
    c["val_score"] = dict(c["val_score"], value=1.0)
    save_checkpoint(str(tmp_path / "good.p"), c)
    assert _train(shapes_root, tmp_path / "b", "--max_iters", "4",
                  "--init_model_from", str(tmp_path / "good.p")) == 0
    assert [os.path.basename(p)[-7:] for p in _checkpoints(tmp_path / "b")] == ["_last.p"]
    assert load_checkpoint(_last(tmp_path / "b"))["it"] == 3


@pytest.mark.parametrize("damage, message", [
    (lambda c: c.pop("wordtoix"), "lacks 'wordtoix'"),
    (lambda c: c["model"].update(We=[[0.0]]), "holds a list under model['We']"),
    (lambda c: c["model"].update(Ws="weights"), "holds a str under model['Ws']"),
    (lambda c: c.update(ixtoword=["."]), "holds a list under 'ixtoword', not a dict"),
])
def test_a_damaged_checkpoint_is_one_clear_error(shapes_root, tmp_path, capsys, damage, message):
    from neuraltalk.train.checkpoint import save_checkpoint
    assert _train(shapes_root, tmp_path / "a", "--max_iters", "1") == 0
    c = load_checkpoint(_last(tmp_path / "a"))
    damage(c)
    bad = str(tmp_path / "bad.p")
    save_checkpoint(bad, c)
    capsys.readouterr()
    assert _train(shapes_root, tmp_path / "b", "--init_model_from", bad) == 2
    err = capsys.readouterr().err
    assert "--init_model_from %s %s" % (bad, message) in err


def test_a_missing_model_parameter_is_one_clear_error(shapes_root, tmp_path, capsys):
    from neuraltalk.train.checkpoint import save_checkpoint
    assert _train(shapes_root, tmp_path / "a", "--max_iters", "1") == 0
    c = load_checkpoint(_last(tmp_path / "a"))
    del c["model"]["We"]
    bad = str(tmp_path / "bad.p")
    save_checkpoint(bad, c)
    assert _train(shapes_root, tmp_path / "b", "--init_model_from", bad) == 2
    assert "--init_model_from %s lacks parameters ['We']" % bad in capsys.readouterr().err


def _improving_run(shapes_root, out, *flags):
    # validations after iterations 9, 19 and 29 (the last): perplexity falls each time
    return _train(shapes_root, out, "--max_iters", "30", "--eval_period", str(10 * 20 / 12000),
                  *flags)


def test_only_the_runs_best_and_last_checkpoints_are_kept(shapes_root, tmp_path, capsys):
    assert _improving_run(shapes_root, tmp_path) == 0
    assert capsys.readouterr().out.count("saved checkpoint in") == 4  # 3 bests + last
    best, last = _checkpoints(tmp_path)
    assert last.endswith("_last.p") and load_checkpoint(best)["it"] == 29


def test_keep_all_checkpoints_keeps_every_improvement(shapes_root, tmp_path):
    assert _improving_run(shapes_root, tmp_path, "--keep_all_checkpoints", "1") == 0
    assert len(_checkpoints(tmp_path)) == 4


def test_a_checkpoint_this_run_did_not_write_is_never_removed(shapes_root, tmp_path):
    import socket
    other = tmp_path / ("model_checkpoint_shapes_%s_baseline_99.00.p" % socket.gethostname())
    other.write_bytes(b"an earlier run's")
    assert _improving_run(shapes_root, tmp_path) == 0
    assert other.read_bytes() == b"an earlier run's"
    assert len(_checkpoints(tmp_path)) == 3


def test_status_json_keeps_the_history_the_monitor_page_plots(shapes_root, tmp_path):
    assert _improving_run(shapes_root, tmp_path, "--fappend", "one") == 0
    assert _improving_run(shapes_root, tmp_path, "--fappend", "two") == 0
    statuses = sorted(glob.glob(str(tmp_path / "status" / "*_status.json")))
    assert len(statuses) == 2
    status = json.load(open(statuses[0]))
    assert [p[0] for p in status["cost_history"]] == list(range(30))
    assert [p[0] for p in status["val_history"]] == [9, 19, 29]
    page = open(tmp_path / "status" / "monitor.html").read()
    assert page.count('class="smooth"') == 2 and "_shapes_two" in page


def test_a_nan_region_feature_is_found_before_training_the_alignment_model(shapes_root,
                                                                         tmp_path, capsys):
    import h5py
    dataset = _copy_shapes(shapes_root, tmp_path / "poisoned")
    images = json.load(open(os.path.join(dataset, "dataset.json")))["images"]
    imgid = min(img["imgid"] for img in images if img["split"] == "val")
    with h5py.File(os.path.join(dataset, "regions.h5"), "r+") as f:
        f["feats"][imgid, 0, 0] = np.nan
    assert _train(shapes_root, tmp_path, "--dataset", dataset, "--model", "brnn",
                  "--embedding_size", "16", "--word_vector_size", "16", "--max_iters", "3") == 2
    out, err = capsys.readouterr()
    assert "regions.h5 holds NaN or infinite region features for imgid %d" % imgid in err
    assert "batch done" not in out


# ---- validation thresholds: --min_ppl_or_abort, --write_checkpoint_ppl_threshold -----------

def _validated_at_iteration_4(shapes_root, out, *flags):
    # 20 iterations of 20 sentences, a validation after iteration 4 (and at the end)
    return _train(shapes_root, out, "--max_iters", "20", "--eval_period", str(5 * 20 / 12000),
                  *flags)


def test_an_unreachable_min_ppl_or_abort_stops_at_the_first_validation(shapes_root, tmp_path,
                                                                      capsys):
    assert _validated_at_iteration_4(shapes_root, tmp_path, "--min_ppl_or_abort", "1.0") == 1
    out = capsys.readouterr().out
    assert "is above --min_ppl_or_abort 1.00" in out and "aborting: validation perplexity" in out
    assert "4/20 batch done" in out and "5/20 batch done" not in out
    assert not [p for p in _checkpoints(tmp_path) if not p.endswith("_last.p")]


def test_a_reachable_min_ppl_or_abort_lets_the_run_finish(shapes_root, tmp_path, capsys):
    assert _validated_at_iteration_4(shapes_root, tmp_path, "--min_ppl_or_abort", "1e9") == 0
    assert "min_ppl_or_abort" not in capsys.readouterr().out
    best, last = _checkpoints(tmp_path)
    assert last.endswith("_last.p") and load_checkpoint(best)["it"] == 19


def test_no_best_checkpoint_above_write_checkpoint_ppl_threshold(shapes_root, tmp_path):
    assert _validated_at_iteration_4(shapes_root, tmp_path,
                                     "--write_checkpoint_ppl_threshold", "1.0") == 0
    (last,) = _checkpoints(tmp_path)  # perplexity is never below 1: only the run's end
    assert last.endswith("_last.p") and load_checkpoint(last)["it"] == 19


def test_a_best_checkpoint_below_write_checkpoint_ppl_threshold(shapes_root, tmp_path):
    assert _validated_at_iteration_4(shapes_root, tmp_path,
                                     "--write_checkpoint_ppl_threshold", "1e9") == 0
    best, last = _checkpoints(tmp_path)
    assert load_checkpoint(best)["perplexity"] < 1e9 and last.endswith("_last.p")


@pytest.mark.parametrize("flag", ["--min_ppl_or_abort", "--write_checkpoint_ppl_threshold"])
def test_perplexity_thresholds_are_refused_for_the_alignment_model(flag, capsys):
    with pytest.raises(SystemExit) as e:
        driver.main(["--model", "brnn", flag, "10"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "%s is about a caption generator's validation perplexity" % flag in err
    assert "--model brnn validates by retrieval recall" in err


# ---- resuming: mismatches, and the alignment model ------------------------------------------

BRNN = ["--model", "brnn", "--embedding_size", "16", "--word_vector_size", "16"]


def test_a_generator_checkpoint_resumed_as_the_alignment_model_is_refused(shapes_root,
                                                                         tmp_path, capsys):
    assert _train(shapes_root, tmp_path / "a", "--max_iters", "1") == 0
    ckpt = _last(tmp_path / "a")
    capsys.readouterr()
    assert _train(shapes_root, tmp_path / "b", "--init_model_from", ckpt, *BRNN) == 2
    out, err = capsys.readouterr()
    assert "--init_model_from %s holds a generator model but --model is brnn" % ckpt in err
    assert "batch done" not in out and not (tmp_path / "b").exists()


def test_a_parameter_that_does_not_fit_the_dataset_is_refused_on_resuming(shapes_root,
                                                                        tmp_path, capsys):
    # the checkpoint was trained on the demo's features; this dataset has 100-d ones
    narrow = tmp_path / "narrow"
    narrow.mkdir()
    source = os.path.join(shapes_root, "shapes")
    os.symlink(os.path.join(source, "dataset.json"), narrow / "dataset.json")
    np.save(narrow / "vgg_feats.npy", np.load(os.path.join(source, "vgg_feats.npy"))[:, :100])
    assert _train(shapes_root, tmp_path / "a", "--max_iters", "1") == 0
    ckpt = _last(tmp_path / "a")
    capsys.readouterr()
    assert _train(shapes_root, tmp_path / "b", "--dataset", str(narrow),
                  "--init_model_from", ckpt) == 2
    out, err = capsys.readouterr()
    assert "--init_model_from %s: parameter We has shape (%d, 32), this dataset needs " \
           "(100, 32)" % (ckpt, extractor.FEATURE_WIDTH) in err
    assert "batch done" not in out


def test_resuming_the_alignment_model_continues_exactly_as_an_uninterrupted_run(shapes_root,
                                                                               tmp_path):
    first, resumed, straight = tmp_path / "first", tmp_path / "resumed", tmp_path / "straight"
    assert _train(shapes_root, first, "--max_iters", "4", *BRNN) == 0
    ckpt = _last(first)
    # the architecture comes from the checkpoint, not from the command line
    assert _train(shapes_root, resumed, "--max_iters", "8", "--init_model_from", ckpt,
                  "--model", "brnn", "--embedding_size", "64") == 0
    assert _train(shapes_root, straight, "--max_iters", "8", *BRNN) == 0
    a = load_checkpoint(_last(resumed))
    b = load_checkpoint(_last(straight))
    assert a["it"] == b["it"] == 7 and a["model"]["Wm"].shape == (extractor.FEATURE_WIDTH, 16)
    assert set(a["solver_cache"]) == set(b["solver_cache"])
    for key in b["model"]:
        np.testing.assert_array_equal(a["model"][key], b["model"][key])
    for key in b["solver_cache"]:
        np.testing.assert_array_equal(a["solver_cache"][key], b["solver_cache"][key])
    assert a["val_score"] == b["val_score"]


# ---- --word_vectors: frozen unless --finetune_word_vectors 1 --------------------------------

def _word2vec_text(shapes_root, path, dim=16):
    """A small word2vec text file (header line, then "word v1 .. v_dim") with a vector for
    every token of the demo and for END ('.'); returns {word: float32 vector}."""
    blob = json.load(open(os.path.join(shapes_root, "shapes", "dataset.json")))
    words = sorted({w for img in blob["images"] for s in img["sentences"] for w in s["tokens"]})
    words.append(".")
    rng = np.random.default_rng(5)
    lines, vectors = ["%d %d" % (len(words), dim)], {}
    for w in words:
        text = ["%.6f" % x for x in rng.normal(size=dim)]
        lines.append(" ".join([w] + text))
        vectors[w] = np.array(text, dtype=np.float32)
    path.write_text("\n".join(lines) + "\n")
    return vectors


def _word_vector_table(checkpoint, vectors):
    ixtoword = checkpoint["ixtoword"]
    return np.stack([vectors[ixtoword[ix]] for ix in range(len(ixtoword))])


@pytest.mark.parametrize("finetune", [0, 1])
def test_word_vectors_stay_as_word2vec_gave_them_unless_finetuned(shapes_root, tmp_path,
                                                                  capsys, finetune):
    vectors = _word2vec_text(shapes_root, tmp_path / "vectors.txt")
    assert _train(shapes_root, tmp_path / "cv", "--max_iters", "3", *BRNN,
                  "--word_vectors", str(tmp_path / "vectors.txt"),
                  "--finetune_word_vectors", str(finetune)) == 0
    c = load_checkpoint(_last(tmp_path / "cv"))
    V = len(c["ixtoword"])
    assert "word vectors: %d of %d vocabulary words found" % (V, V) in capsys.readouterr().out
    table = _word_vector_table(c, vectors)
    solver_state = {k for k in c["solver_cache"] if k.startswith("Ww_")}  # Adam's Ww_m, Ww_v
    if finetune:
        assert not np.array_equal(c["model"]["Ww"], table) and solver_state
    else:
        np.testing.assert_array_equal(c["model"]["Ww"], table)
        assert not solver_state
