"""The training loop behind driver.py, for every kind of model (see neuraltalk/models/task.py).

It follows NeuralTalk's driver: sample a batch, take a solver step, print a progress
line, evaluate on the validation split every `eval_period` epochs, keep the best model
as `cv/model_checkpoint_<dataset>_<host>_<fappend>_<perplexity>.p` (self-critical
training, train/scst.py: the best validation CIDEr-D, `..._cider_d<value>.p`), write a status JSON
now and then, and abort when the cost explodes (its moving average past twice the
first batch's cost, or not finite). Under `mpirun -n K` the K ranks train one model
data-parallel (train/data_parallel.py); rank 0 alone prints and writes files, and every
validation compares a checksum of the ranks' parameters. Unlike NeuralTalk the checkpoint also
holds the solver cache, the random state and the iteration, so `--init_model_from`
resumes exactly, and Ctrl-C or SIGTERM writes an `_interrupted` checkpoint before exiting.

Files a run leaves: its best checkpoint only (each new best replaces the previous one
this run wrote; `--keep_all_checkpoints 1` keeps them all, as NeuralTalk did), the state
it ended in as `..._last.p`, and, beside the status JSON, `monitor.html` plotting every
run of the status folder (neuraltalk/monitor.py). Everything that can be checked before
the first iteration is: the output folder, the vocabulary, the feature rows.
"""
import datetime
import json
import math
import os
import signal
import socket
import tempfile
import threading
import time
from contextlib import ExitStack, redirect_stdout

import numpy as np

from neuraltalk import models
from neuraltalk.train import solvers
from neuraltalk.atomic import atomic_write_text
from neuraltalk.train.checkpoint import load_checkpoint, model_as, save_checkpoint
from neuraltalk.data.dataset import load_dataset
from neuraltalk.errors import NeuralTalkError
from neuraltalk.parallel import world
from neuraltalk.train import data_parallel

# when driver.py imported this module, about when the process started: a temporary
# file older than that is no save of this run (see remove_stale_temporaries)
PROCESS_START = time.time()


def dataset_label(params):
    """The dataset's name as it goes into checkpoint file names (a path's last folder)."""
    return os.path.basename(os.path.normpath(params["dataset"]))


def checkpoint_path(params, host, score):
    """NeuralTalk's `model_checkpoint_<dataset>_<host>_<fappend>_<perplexity %.2f>.p`; a
    model validated by another score says which: `..._<name><value %.3f>.p`."""
    value = ("%.2f" % score["value"] if score["name"] == "perplexity"
             else "%s%.3f" % (score["name"], score["value"]))
    filename = "model_checkpoint_%s_%s_%s_%s.p" % (
        dataset_label(params), host, params["fappend"], value)
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
    path = params["init_model_from"]
    checkpoint = load_checkpoint(path)
    check_checkpoint(checkpoint, path)
    saved = checkpoint["params"]
    if saved.get("model", "generator") != params["model"]:
        raise NeuralTalkError(
            "--init_model_from %s holds a %s model but --model is %s"
            % (path, saved.get("model", "generator"), params["model"]))
    overridden = []
    for key in models.architecture_flags(saved):  # they fix the parameters' shapes
        if key in saved:
            if key in params and params[key] != saved[key]:
                overridden.append("--%s %s (the checkpoint has %s)" % (key, params[key], saved[key]))
            params[key] = saved[key]
    if overridden:
        print("resuming %s: its architecture replaces %s" % (path, ", ".join(overridden)))
    return checkpoint


def check_checkpoint(checkpoint, path):
    """Refuse a checkpoint that cannot be resumed, naming the file and the key."""
    def refuse(what):
        raise NeuralTalkError("--init_model_from %s %s: it cannot be resumed; give a "
                              "checkpoint written by driver.py" % (path, what))
    for key, kind in (("params", dict), ("model", dict), ("wordtoix", dict),
                      ("ixtoword", dict)):
        if key not in checkpoint:
            refuse("lacks %r" % key)
        if not isinstance(checkpoint[key], kind):
            refuse("holds a %s under %r, not a dict" % (type(checkpoint[key]).__name__, key))
    for where in ("model", "solver_cache"):
        for key, value in checkpoint.get(where, {}).items():
            # a NumPy scalar too: Adam's step count t is one
            if (not isinstance(value, (np.ndarray, np.number))
                    or np.asarray(value).dtype.kind not in "fiu"):
                refuse("holds a %s under %s[%r], not an array of numbers"
                       % (type(value).__name__, where, key))
    perplexity = checkpoint.get("perplexity")
    if perplexity is not None and not isinstance(perplexity, (int, float, np.number)):
        refuse("holds a %s as its perplexity" % type(perplexity).__name__)
    if not isinstance(checkpoint.get("it", 0), (int, np.integer)):
        refuse("holds a %s as its iteration" % type(checkpoint["it"]).__name__)


def remove_stale_temporaries(folder, before):
    """Delete our own half-written files (`.tmp-*`, from save_checkpoint and
    atomic_write_text) that a killed run left in `folder`, if older than `before`
    (a time.time()): a run writing into the same folder right now keeps its own."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    removed = []
    for name in sorted(names):
        path = os.path.join(folder, name)
        if not name.startswith(".tmp-") or os.path.islink(path) or not os.path.isfile(path):
            continue
        try:
            if os.path.getmtime(path) < before:
                os.remove(path)
                removed.append(name)
        except OSError:
            continue  # gone already, or not ours to remove
    if removed:
        print("removed %d stale temporary file%s a killed run left in %s: %s"
              % (len(removed), "" if len(removed) == 1 else "s", folder, ", ".join(removed)))


def check_output_folder(folder, flag):
    """Make `folder` if needed and prove it writable now, not at the first save after an
    hour of training. Writing a probe file is the only test that holds for root too."""
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise NeuralTalkError("%s %s is a file, not a folder: give a folder to write into"
                              % (flag, folder))
    try:
        os.makedirs(folder, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".tmp-", dir=folder)
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        raise NeuralTalkError("%s %s is not a folder this run can write into: %s"
                              % (flag, folder, e.strerror or e)) from None


def check_vocabulary(task, dataset, params):
    """A vocabulary of END alone, or sentences without words, train nothing."""
    if len(task.ixtoword) > 1:
        return
    n_tokens = sum(len(s["tokens"]) for img in dataset.split("train") for s in img["sentences"])
    json_path = os.path.join(dataset.folder, "dataset.json")
    if n_tokens == 0:
        raise NeuralTalkError("%s: every sentence of the train split has an empty token "
                              "list: there is nothing to learn" % json_path)
    raise NeuralTalkError("no word occurs --word_count_threshold %d times in the train "
                          "sentences of %s: the vocabulary would be empty; lower the threshold"
                          % (params["word_count_threshold"], json_path))


def check_features(dataset, chunk_rows=4096):
    """Every feature row of the train and val images is finite: a NaN is found now, not
    when a batch samples it hours in. Chunks keep the memory bounded."""
    imgids = np.array(sorted({img["imgid"] for split in ("train", "val")
                              for img in dataset.split(split)}), dtype=np.int64)
    for start in range(0, len(imgids), chunk_rows):
        chunk = imgids[start:start + chunk_rows]
        try:
            dataset.features[chunk]
        except NeuralTalkError as e:
            raise NeuralTalkError("%s (checked before training)" % e) from None


class Terminated(KeyboardInterrupt):
    """SIGTERM, as a cluster scheduler sends before killing a job: handled as Ctrl-C."""


def _raise_terminated(signum, frame):
    raise Terminated()


def run(params):
    """Train as `params` (every driver flag) says. Returns the process exit code: 0, 1 when
    training went wrong (the cost exploded, NaN parameters, --min_ppl_or_abort), 130 after
    Ctrl-C and 143 (128 + SIGTERM) after SIGTERM, both with an `_interrupted` checkpoint."""
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    ranks = world()
    try:
        with ExitStack() as quiet:
            if not ranks.is_root:  # rank 0 speaks for the job; errors still go to stderr
                quiet.enter_context(redirect_stdout(quiet.enter_context(open(os.devnull, "w"))))
            return _run(params)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run(params):
    ranks = world()
    rng = np.random.default_rng(params["seed"])
    checkpoint = None
    if params["init_model_from"] and ranks.size > 1:
        # rank 0 reads it (it is where rank 0 wrote it) and sends it with the architecture
        # flags it fixes; if rank 0 fails, its exit ends the job
        checkpoint, resumed = ranks.bcast((resume_from(params), params) if ranks.is_root
                                          else None)
        params.update(resumed)
    elif params["init_model_from"]:
        checkpoint = resume_from(params)
    if params["do_grad_check"] and ranks.size > 1:
        raise NeuralTalkError("--do_grad_check 1 runs in one process: start it without mpirun")
    if not params["do_grad_check"] and ranks.is_root:
        for flag in ("checkpoint_output_directory", "worker_status_output_directory"):
            remove_stale_temporaries(params[flag], PROCESS_START)
        check_output_folder(params["checkpoint_output_directory"],
                            "--checkpoint_output_directory")
    dataset = load_dataset(params["dataset"], data_root=params["data_root"],
                           fold_restval=bool(params["fold_restval"]),
                           features_path=params["features"] or None)
    params["cnn"] = dataset.cnn
    vocab = (checkpoint["wordtoix"], checkpoint["ixtoword"]) if checkpoint else None
    if params.get("scst"):
        from neuraltalk.train import scst
        task = scst.make_task(params, dataset, rng, vocab=vocab)
    else:
        task = models.make_task(params, dataset, rng, vocab=vocab)
    check_vocabulary(task, dataset, params)
    if ranks.size > 1:
        task, nbytes = data_parallel.distribute(task, params, ranks, dataset)
        print(data_parallel.shares_line(ranks, params["batch_size"], nbytes))
    if task.check_features is not None:
        task.check_features()
    else:
        check_features(dataset)
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
        if bool(checkpoint["params"].get("scst")) != bool(params.get("scst")):
            # a new stage (cross-entropy -> SCST or back) starts its own run from the
            # weights: iteration 0, a fresh solver state, the random state of --seed
            print("starting %s from the weights of %s" % (
                "self-critical training" if params.get("scst") else "cross-entropy training",
                params["init_model_from"]))
        else:
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

    # the resumed checkpoint's score is the one to beat only on the same dataset; one
    # written before the first validation has none
    same_data = checkpoint and (os.path.basename(os.path.normpath(
        str(checkpoint["params"].get("dataset", "")))) == dataset_label(params))
    state = {
        "best_score": resumed_score(checkpoint) if same_data else None,
        "best_path": None,  # the best checkpoint this run wrote: the only one it may remove
        "val_score": None,  # {"name", "value", "lower_is_better"} of the last validation
        "it": start_it - 1,
        "epoch": 0.0,
        "history": History(),
    }

    def write_checkpoint(path):
        if not ranks.is_root:
            return
        score = state["val_score"]
        save_checkpoint(path, {
            "it": state["it"], "epoch": state["epoch"], "model": model, "params": params,
            # NeuralTalk's key holds a perplexity or nothing; every score under its name
            "perplexity": score["value"] if score and score["name"] == "perplexity" else None,
            "val_score": score, "wordtoix": task.wordtoix,
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
            if not np.isfinite(total_cost) or (task.watch_cost and
                                               smooth_cost > 2 * total_cost0):
                print("aborting: the cost is exploding (%.4f, smoothed %.4f, it started at "
                      "%.4f). Lower --learning_rate or run --do_grad_check 1."
                      % (total_cost, smooth_cost, total_cost0))
                return 1
            bad = first_nonfinite(model)
            if bad:
                print("aborting at iteration %d: the update left NaN or infinite values in %s; "
                      "the last good checkpoint is kept. Lower --learning_rate or "
                      "--grad_clip." % (it, bad))
                return 1
            state["history"].add_cost(it, total_cost, smooth_cost)

            now = time.time()
            if now - last_status > 60 and ranks.is_root:
                last_status = now
                write_status(params, host, state, it, max_iters, dt, smooth_ppl2)

            is_last = it + 1 == max_iters
            if ((it + 1) % eval_period_iters == 0 and it < max_iters - 5) or is_last:
                if ranks.size > 1:
                    data_parallel.check_in_step(ranks, model, it)
                # on several ranks, every rank takes part and learns the score (see
                # data_parallel.distribute), so all decide alike
                result = task.validate(model)
                score = {k: result[k] for k in ("name", "value", "lower_is_better")}
                score["value"] = float(score["value"])
                state["val_score"] = score
                state["history"].add_validation(it, score["value"])
                print("validation: %s" % result["summary"], flush=True)
                if ranks.is_root:
                    write_status(params, host, state, it, max_iters, dt, smooth_ppl2)
                # both flags are refused by driver.py for models not validated by perplexity
                if 0 < params["min_ppl_or_abort"] < score["value"]:
                    print("aborting: validation perplexity %.2f is above --min_ppl_or_abort %.2f"
                          % (score["value"], params["min_ppl_or_abort"]))
                    return 1
                threshold = params["write_checkpoint_ppl_threshold"]
                if better(score, state["best_score"]) and (threshold < 0 or
                                                           score["value"] < threshold):
                    state["best_score"] = score
                    path = checkpoint_path(params, host, score)
                    write_checkpoint(path)
                    previous = state["best_path"]
                    if (previous and previous != path and not params["keep_all_checkpoints"]
                            and ranks.is_root):
                        remove_quietly(previous)
                    state["best_path"] = path
    except KeyboardInterrupt as e:
        print("\n%s at iteration %d; writing a last checkpoint"
              % ("terminated (SIGTERM)" if isinstance(e, Terminated) else "interrupted",
                 state["it"]))
        write_checkpoint(named_checkpoint_path(params, host, "interrupted"))
        return 143 if isinstance(e, Terminated) else 130
    # the state the run ended in, whether or not its validation beat the best
    write_checkpoint(named_checkpoint_path(params, host, "last"))
    return 0


def better(score, best):
    """Does the validation `score` beat `best` (None: nothing to beat)?"""
    if best is None or best["name"] != score["name"]:
        return True
    if score["lower_is_better"]:
        return score["value"] < best["value"]
    return score["value"] > best["value"]


def resumed_score(checkpoint):
    """The validation score a resumed checkpoint reached, or None: `val_score`, or
    NeuralTalk's `perplexity` in checkpoints that have only that."""
    if not checkpoint:
        return None
    score = checkpoint.get("val_score")
    if isinstance(score, dict) and {"name", "value", "lower_is_better"} <= set(score):
        return score
    if checkpoint.get("perplexity") is not None and models.is_generator(checkpoint["params"]):
        return {"name": "perplexity", "value": float(checkpoint["perplexity"]),
                "lower_is_better": True}
    return None


def named_checkpoint_path(params, host, name):
    """`model_checkpoint_<dataset>_<host>_<fappend>_<name>.p` (name: last, interrupted)."""
    filename = "model_checkpoint_%s_%s_%s_%s.p" % (
        dataset_label(params), host, params["fappend"], name)
    return os.path.join(params["checkpoint_output_directory"], filename)


def remove_quietly(path):
    try:
        os.remove(path)
    except OSError:
        pass  # already gone: nothing to keep tidy


def first_nonfinite(model):
    """The name of the first parameter holding NaN or inf, or None. A float64 sum is
    finite iff every entry is, and costs no (N, D) mask."""
    for name in sorted(model):
        if not np.isfinite(np.sum(model[name], dtype=np.float64)):
            return name
    return None


class History:
    """Training cost and validation points for the monitor page, kept small: when the
    cost points pass MAX_POINTS every other one is dropped and the stride doubles."""
    MAX_POINTS = 2000

    def __init__(self):
        self.costs = []  # [iteration, cost, smoothed cost]
        self.validations = []  # [iteration, perplexity or score]
        self.stride = 1

    def add_cost(self, it, cost, smooth):
        if it % self.stride:
            return
        self.costs.append([it, float(cost), float(smooth)])
        if len(self.costs) > self.MAX_POINTS:
            self.costs = self.costs[::2]
            self.stride *= 2

    def add_validation(self, it, value):
        self.validations.append([it, float(value)])


def task_label(params):
    if models.is_generator(params):
        return "the %s generator" % params["generator"]
    return "the %s alignment model" % params["model"]


def progress_line(it, max_iters, dt, smooth_dt, epoch, cost, smooth_ppl2):
    parts = ["%d/%d batch done in %.3fs. at epoch %.2f." % (it, max_iters, dt, epoch),
             "loss cost = %f, reg cost = %f" % (cost.get("loss_cost", cost["total_cost"]),
                                                cost.get("reg_cost", 0.0))]
    if cost.get("ppl2") is not None:
        parts[-1] += ", ppl2 = %.2f (smooth %.2f)" % (cost["ppl2"], smooth_ppl2)
    if cost.get("reward") is not None:  # self-critical training (train/scst.py)
        parts[-1] += (", reward = %.4f, greedy reward = %.4f, advantage = %+.4f, %.0f samples/s"
                      % (cost["reward"], cost["greedy_reward"], cost["advantage"],
                         cost["samples"] / max(dt, 1e-9)))
    parts.append("ETA %s" % format_seconds((max_iters - it - 1) * smooth_dt))
    return " ".join(parts)


def write_status(params, host, state, it, max_iters, dt, smooth_ppl2):
    """NeuralTalk's worker status JSON, one per run
    (`<status dir>/<host>_<dataset>_<fappend>_status.json`), with the cost and validation
    history that the monitor page (neuraltalk/monitor.py), rewritten here too, plots."""
    from neuraltalk.train.monitor import write_monitor
    run = "%s_%s_%s" % (host, dataset_label(params), params["fappend"])
    score = state["val_score"]
    status = {
        "time": datetime.datetime.now().isoformat(),
        "run": run,
        "iter": [it, max_iters],
        "epoch": [state["epoch"], params["max_epochs"]],
        "time_per_batch": dt,
        "smooth_train_ppl2": smooth_ppl2,
        "val_ppl2": score["value"] if score and score["name"] == "perplexity" else None,
        "val_label": "validation " + (score["name"].replace("_", " ") if score else "score"),
        "cost_history": state["history"].costs,
        "val_history": state["history"].validations,
        "hostname": host,
        "params": params,
    }
    folder = params["worker_status_output_directory"]
    path = os.path.join(folder, run + "_status.json")
    try:
        atomic_write_text(path, json.dumps(status, indent=1, default=str))
        write_monitor(folder)
    except OSError as e:  # a status file is a convenience: say so and go on training
        print("could not write the status file %s: %s" % (path, e.strerror))


def grad_check(task, rng, params):
    """`--do_grad_check 1`: check the gradients on a real batch in float64, exit 0 or 1."""
    from neuraltalk.train.gradcheck import check_task_gradients
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
