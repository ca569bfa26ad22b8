"""The training loop behind driver.py, for every kind of model (see neuraltalk/tasks.py).

It follows NeuralTalk's driver: sample a batch, take a solver step, print a progress
line, evaluate on the validation split every `eval_period` epochs, keep the best model
as `cv/model_checkpoint_<dataset>_<host>_<fappend>_<perplexity>.p`, write a status JSON
now and then, and abort when the cost explodes (its moving average past twice the
first batch's cost, or not finite). Unlike NeuralTalk the checkpoint also
holds the solver cache, the random state and the iteration, so `--init_model_from`
resumes exactly, and Ctrl-C writes a last checkpoint before exiting.
"""
import datetime
import json
import math
import os
import socket
import time

import numpy as np

from neuraltalk import solvers
from neuraltalk.checkpoint import atomic_write_text, load_checkpoint, model_as, save_checkpoint
from neuraltalk.dataset import load_dataset
from neuraltalk.errors import NeuralTalkError

# Flags that fix the shape of a model: when resuming they come from the checkpoint.
ARCHITECTURE_FLAGS = (
    "model", "generator", "image_encoding_size", "word_encoding_size", "hidden_size",
    "tanhC_version", "rnn_relu_encoders", "rnn_feed_once", "word_count_threshold",
    "embedding_size", "word_vector_size", "score",
)


def make_task(params, dataset, rng, vocab=None):
    """The Task of `params['model']`: a caption generator or the alignment model."""
    if params["model"] == "brnn":
        from neuraltalk import alignment
        return alignment.make_task(params, dataset, rng, vocab=vocab)
    from neuraltalk import generators
    return generators.make_task(params, dataset, rng, vocab=vocab)


def dataset_label(params):
    """The dataset's name as it goes into checkpoint file names (a path's last folder)."""
    return os.path.basename(os.path.normpath(params["dataset"]))


def checkpoint_path(params, host, perplexity):
    filename = "model_checkpoint_%s_%s_%s_%.2f.p" % (
        dataset_label(params), host, params["fappend"], perplexity)
    return os.path.join(params["checkpoint_output_directory"], filename)


def format_seconds(seconds):
    seconds = int(round(seconds))
    if seconds >= 3600:
        return "%dh%02dm" % (seconds // 3600, seconds % 3600 // 60)
    if seconds >= 60:
        return "%dm%02ds" % (seconds // 60, seconds % 60)
    return "%ds" % seconds


def resume_from(params):
    """Load `--init_model_from`; its architecture flags replace the command line's."""
    checkpoint = load_checkpoint(params["init_model_from"])
    saved = checkpoint["params"]
    if saved.get("model", "generator") != params["model"]:
        raise NeuralTalkError(
            "--init_model_from %s holds a %s model but --model is %s"
            % (params["init_model_from"], saved.get("model", "generator"), params["model"]))
    for key in ARCHITECTURE_FLAGS:
        if key in saved:
            params[key] = saved[key]
    return checkpoint


def run(params):
    """Train as `params` (every driver flag) says. Returns the process exit code."""
    rng = np.random.default_rng(params["seed"])
    checkpoint = resume_from(params) if params["init_model_from"] else None
    dataset = load_dataset(params["dataset"], data_root=params["data_root"],
                           fold_restval=bool(params["fold_restval"]),
                           features_path=params["features"] or None)
    params["cnn"] = dataset.cnn
    vocab = (checkpoint["wordtoix"], checkpoint["ixtoword"]) if checkpoint else None
    task = make_task(params, dataset, rng, vocab=vocab)
    model = task.model
    cache = {}
    start_it = 0
    if checkpoint:
        saved_model = checkpoint["model"]
        missing = set(model) - set(saved_model)
        if missing:
            raise NeuralTalkError("--init_model_from %s lacks parameters %s"
                                  % (params["init_model_from"], sorted(missing)))
        for key in model:
            if np.shape(saved_model[key]) != model[key].shape:
                raise NeuralTalkError(
                    "--init_model_from %s: parameter %s has shape %s, this dataset needs %s"
                    % (params["init_model_from"], key, np.shape(saved_model[key]),
                       model[key].shape))
            model[key][...] = saved_model[key]
        cache = dict(checkpoint.get("solver_cache", {}))
        if "rng_state" in checkpoint:
            rng.bit_generator.state = checkpoint["rng_state"]
        start_it = int(checkpoint.get("it", -1)) + 1
        print("resuming from %s at iteration %d" % (params["init_model_from"], start_it))

    if params["do_grad_check"]:
        return grad_check(task, rng, params)

    host = socket.gethostname()
    batch_size = params["batch_size"]
    iters_per_epoch = max(1.0, task.epoch_size / batch_size)
    max_iters = params["max_iters"]
    if max_iters <= 0:
        max_iters = int(math.ceil(params["max_epochs"] * iters_per_epoch))
    eval_period_iters = max(1, int(params["eval_period"] * iters_per_epoch))
    print("training %s on %s: %d training pairs, %.0f iterations an epoch, %d iterations, "
          "validation every %d" % (task_label(params), dataset_label(params), task.epoch_size,
                                   iters_per_epoch, max_iters, eval_period_iters))

    state = {
        "best_score": float(checkpoint["perplexity"]) if checkpoint and "perplexity" in checkpoint
        else None,
        "val_perplexity": None,
        "it": start_it - 1,
        "epoch": 0.0,
    }

    def write_checkpoint(path):
        save_checkpoint(path, {
            "it": state["it"], "epoch": state["epoch"], "model": model, "params": params,
            "perplexity": state["val_perplexity"], "wordtoix": task.wordtoix,
            "ixtoword": task.ixtoword, "solver_cache": cache,
            "rng_state": rng.bit_generator.state,
        })
        print("saved checkpoint in %s" % path)

    smooth_ppl2 = None
    smooth_dt = None
    total_cost0 = smooth_cost = None
    last_status = 0.0
    try:
        for it in range(start_it, max_iters):
            t0 = time.time()
            batch = task.sample_batch(batch_size, rng)
            cost, grads = task.cost(model, batch, rng)
            solvers.update(model, {k: grads[k] for k in task.update_keys}, cache, params)
            dt = time.time() - t0
            state["it"] = it
            state["epoch"] = (it + 1) / iters_per_epoch
            smooth_dt = dt if smooth_dt is None else 0.9 * smooth_dt + 0.1 * dt

            ppl2 = cost.get("ppl2")
            if ppl2 is not None:
                smooth_ppl2 = ppl2 if smooth_ppl2 is None else 0.99 * smooth_ppl2 + 0.01 * ppl2
            print(progress_line(it, max_iters, dt, smooth_dt, state["epoch"], cost, smooth_ppl2),
                  flush=True)

            # NeuralTalk aborts when a batch costs twice the first; a moving average
            # lets a one-batch spike of rmsprop's first steps pass, not an explosion
            total_cost = cost["total_cost"]
            if total_cost0 is None:
                total_cost0 = smooth_cost = total_cost
            smooth_cost = 0.9 * smooth_cost + 0.1 * total_cost
            if not np.isfinite(total_cost) or smooth_cost > 2 * total_cost0:
                print("aborting: the cost is exploding (%.4f, smoothed %.4f, it started at "
                      "%.4f). Lower --learning_rate or run --do_grad_check 1."
                      % (total_cost, smooth_cost, total_cost0))
                return 1

            now = time.time()
            if now - last_status > 60:
                last_status = now
                write_status(params, host, state, it, max_iters, dt, smooth_ppl2)

            is_last = it + 1 == max_iters
            if ((it + 1) % eval_period_iters == 0 and it < max_iters - 5) or is_last:
                result = task.validate(model)
                state["val_perplexity"] = float(result["perplexity"])
                print("validation: %s" % result["summary"], flush=True)
                write_status(params, host, state, it, max_iters, dt, smooth_ppl2)
                if 0 < params["min_ppl_or_abort"] < result["perplexity"]:
                    print("aborting: validation perplexity %.2f is above --min_ppl_or_abort %.2f"
                          % (result["perplexity"], params["min_ppl_or_abort"]))
                    return 1
                threshold = params["write_checkpoint_ppl_threshold"]
                improved = state["best_score"] is None or result["score"] < state["best_score"]
                if improved and (threshold < 0 or result["perplexity"] < threshold):
                    state["best_score"] = result["score"]
                    write_checkpoint(checkpoint_path(params, host, result["perplexity"]))
    except KeyboardInterrupt:
        filename = "model_checkpoint_%s_%s_%s_interrupted.p" % (
            dataset_label(params), host, params["fappend"])
        print("\ninterrupted at iteration %d; writing a last checkpoint" % state["it"])
        write_checkpoint(os.path.join(params["checkpoint_output_directory"], filename))
        return 130
    return 0


def task_label(params):
    if params["model"] == "brnn":
        return "the alignment model (%s score)" % params.get("score", "max")
    return "the %s generator" % params["generator"]


def progress_line(it, max_iters, dt, smooth_dt, epoch, cost, smooth_ppl2):
    parts = ["%d/%d batch done in %.3fs. at epoch %.2f." % (it, max_iters, dt, epoch),
             "loss cost = %f, reg cost = %f" % (cost.get("loss_cost", cost["total_cost"]),
                                                cost.get("reg_cost", 0.0))]
    if cost.get("ppl2") is not None:
        parts[-1] += ", ppl2 = %.2f (smooth %.2f)" % (cost["ppl2"], smooth_ppl2)
    parts.append("ETA %s" % format_seconds((max_iters - it - 1) * smooth_dt))
    return " ".join(parts)


def write_status(params, host, state, it, max_iters, dt, smooth_ppl2):
    """NeuralTalk's worker status JSON, `<status dir>/<host>_status.json`."""
    status = {
        "time": datetime.datetime.now().isoformat(),
        "iter": [it, max_iters],
        "epoch": [state["epoch"], params["max_epochs"]],
        "time_per_batch": dt,
        "smooth_train_ppl2": smooth_ppl2,
        "val_ppl2": state["val_perplexity"],
        "hostname": host,
        "params": params,
    }
    path = os.path.join(params["worker_status_output_directory"], host + "_status.json")
    try:
        atomic_write_text(path, json.dumps(status, indent=1, default=str))
    except OSError as e:  # a status file is a convenience: say so and go on training
        print("could not write the status file %s: %s" % (path, e.strerror))


def grad_check(task, rng, params):
    """`--do_grad_check 1`: check the gradients on a real batch in float64, exit 0 or 1."""
    from neuraltalk.gradcheck import check_task_gradients
    batch = task.sample_batch(min(params["batch_size"], 8), rng)
    model = model_as(task.model, np.float64)
    errors, skipped = check_task_gradients(task, model, batch)
    worst = max(errors.values())
    for name in sorted(errors):
        note = " (%d entries at a kink skipped)" % skipped[name] if skipped[name] else ""
        print("%-8s worst relative error %.3e%s" % (name, errors[name], note))
    # float64 round-off on a real batch leaves ~1e-6 to 1e-5 on small entries; a wrong
    # gradient is off by far more
    ok = worst < 1e-4
    print("gradient check %s (worst %.3e, threshold 1e-4; %d entries skipped where a ReLU, "
          "max or hinge kink lies within the finite-difference step)"
          % ("PASSED" if ok else "FAILED", worst, sum(skipped.values())))
    return 0 if ok else 1
