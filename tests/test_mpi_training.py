"""Data-parallel training (neuraltalk/train/data_parallel.py) under mpirun, and its maths
without it: the ranks' costs and gradients sum to one process's, the same dropout masks
whatever rank holds a sentence, the same parameters after training, checkpoints that
survive a killed rank and resume with another number of ranks.

Float32 training turns round-off into differences that adaptive solvers amplify: RMSprop's
and Adam's first steps are about lr * sign(g), so a gradient entry that is a cancelling sum
near 0 moves by a step whose size depends on its last bits. The decomposition itself is
checked exactly in float64 (`test_the_ranks_costs_and_gradients_sum_to_one_process`); the
trained parameters are compared by max |difference| over the whole model / max |parameter|."""
import glob
import os
import signal
import threading
import time

import numpy as np
import pytest

import driver
from neuraltalk import models
from neuraltalk.data.dataset import load_dataset
from neuraltalk.layers.packed import layout
from neuraltalk.parallel import shard_range
from neuraltalk.train import data_parallel
from neuraltalk.train.checkpoint import load_checkpoint, model_as

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DRIVER = os.path.join(ROOT, "driver.py")
SMALL = ["--hidden_size", "32", "--image_encoding_size", "32", "--word_encoding_size", "32",
         "--batch_size", "20", "--eval_max_images", "20", "--eval_period", "1000"]
ALIGNMENT = ["--model", "brnn", "--embedding_size", "32", "--word_vector_size", "16",
             "--finetune_word_vectors", "1", "--batch_size", "20", "--eval_max_images", "20",
             "--eval_period", "1000"]
# plain momentum: no lr * sign(g) steps on round-off (see the module docstring); these
# rates move the parameters by some 5% of their largest entry in 30 iterations
MOMENTUM = ["--solver", "vanilla", "--momentum", "0.9", "--learning_rate", "1e-3"]
GENERATOR_RATES = {"rnn": "0.05", "lrcn": "0.05", "mrnn": "0.01", "attention": "0.005"}


def _flags(shapes_root, out, *flags):
    return ["--dataset", "shapes", "--data_root", shapes_root,
            "--checkpoint_output_directory", str(out),
            "--worker_status_output_directory", str(out / "status")] + list(flags)


def _one_process(shapes_root, out, *flags):
    assert driver.main(_flags(shapes_root, out, *flags)) == 0


def _ranks(mpirun, n, shapes_root, out, *flags):
    result = mpirun(n, ["python", DRIVER] + _flags(shapes_root, out, *flags))
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _last(folder):
    (path,) = glob.glob(os.path.join(str(folder), "model_checkpoint_*_last.p"))
    return load_checkpoint(path)


def max_relative_difference(a, b):
    """max |a - b| over every parameter / max |b| over every parameter."""
    diff = max(float(np.abs(a[k].astype(np.float64) - b[k]).max()) for k in b)
    return diff / max(float(np.abs(b[k]).max()) for k in b)


def _assert_same_training(a, b, tolerance=1e-5):
    assert sorted(a) == sorted(b)  # the same checkpoint keys
    assert a["it"] == b["it"] and sorted(a["model"]) == sorted(b["model"])
    assert sorted(a["solver_cache"]) == sorted(b["solver_cache"])
    assert a["rng_state"] == b["rng_state"]  # the same random stream: resumable either way
    assert max_relative_difference(a["model"], b["model"]) < tolerance


# --- the maths, without mpirun: ranks as threads --------------------------------------

class ThreadWorld:
    """Rank `rank` of `size` threads, with the collectives of neuraltalk.parallel.World
    that data_parallel uses (sums in rank order, as a deterministic Allreduce)."""

    def __init__(self, rank, size, shared):
        self.rank, self.size, self.shared = rank, size, shared
        self.is_root = rank == 0

    def share(self, count):
        return shard_range(count, self.rank, self.size)

    def allgather(self, value):
        self.shared["slots"][self.rank] = value
        self.shared["barrier"].wait()
        every = list(self.shared["slots"])
        self.shared["barrier"].wait()
        return every

    def allreduce_sum(self, buffer):
        every = self.allgather(buffer.copy())
        buffer[...] = sum(every[1:], every[0])
        return buffer


def run_ranks(size, function):
    shared = {"slots": [None] * size, "barrier": threading.Barrier(size, timeout=60)}
    results = [None] * size

    def work(rank):
        results[rank] = function(ThreadWorld(rank, size, shared))
    threads = [threading.Thread(target=work, args=(r,)) for r in range(size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_a_slice_takes_the_mask_rows_of_its_own_sentences():
    rng = np.random.default_rng(0)
    lengths = rng.integers(0, 7, size=11)
    words = rng.integers(1, 9, size=(11, 7))
    lay = layout(words, lengths)
    B, N = len(lengths), len(lay.inputs)
    # every row says which batch sentence and which step it is
    code_rows = (1000 * lay.order[lay.sentence] + lay.step).astype(np.float64)
    code_images = 1000.0 * lay.order
    masks = (np.concatenate([code_images, code_rows]), (code_rows[:, None], code_images), None)
    for start, stop in [(0, 4), (4, 8), (8, 11), (3, 4)]:
        own = layout(words[start:stop], lengths[start:stop])
        own = own._replace(order=own.order + start)
        both, (rows, images), none = data_parallel.rows_of_slice(masks, lay, own)
        want_rows = 1000 * own.order[own.sentence] + own.step
        np.testing.assert_array_equal(rows[:, 0], want_rows)
        np.testing.assert_array_equal(images, 1000 * own.order)
        np.testing.assert_array_equal(both, np.concatenate([1000 * own.order, want_rows]))
        assert none is None and len(rows) == len(own.inputs) < N + 1 and len(images) <= B


def _task(shapes_root, flags):
    parser = driver.build_parser()
    params = driver.parse_flags(parser, ["--dataset", "shapes", "--data_root", shapes_root,
                                         "--regc", "0.01"] + flags)
    for key, value in dict(models.module_of(params).DEFAULTS, learning_rate=1e-3).items():
        if params.get(key) is None:
            params[key] = value
    dataset = load_dataset("shapes", data_root=shapes_root)
    params["cnn"] = dataset.cnn
    return params, models.make_task(params, dataset, np.random.default_rng(0)), dataset


@pytest.mark.parametrize("flags", [
    ["--generator", "lstm"], ["--generator", "rnn"], ["--generator", "mrnn"],
    ["--generator", "lrcn"], ["--generator", "attention", "--att_lambda", "1"],
    ["--model", "brnn", "--embedding_size", "16", "--word_vector_size", "8",
     "--finetune_word_vectors", "1"]], ids=lambda f: f[1])
def test_the_ranks_costs_and_gradients_sum_to_one_process(shapes_root, flags):
    """3 ranks (uneven slices of 20), dropout on, L2 on, float64: what one process gets."""
    size = ["--hidden_size", "16", "--image_encoding_size", "16", "--word_encoding_size", "16"]
    params, task, _ = _task(shapes_root, flags + (size if flags[0] == "--generator" else []))
    model = model_as(task.model, np.float64)
    batch = task.sample_batch(20, np.random.default_rng(1))
    cost, grads = task.cost(model, batch, np.random.default_rng(2))

    def rank(world):
        parallel_task, nbytes = data_parallel.distribute(task._replace(model=model), params,
                                                         world)
        assert nbytes >= sum(model[k].nbytes for k in task.update_keys)
        return parallel_task.cost(model, batch, np.random.default_rng(2))
    for rank_cost, rank_grads in run_ranks(3, rank):
        assert rank_cost["total_cost"] == pytest.approx(cost["total_cost"], rel=1e-12)
        assert rank_cost["reg_cost"] == pytest.approx(cost["reg_cost"], rel=1e-12)
        assert sorted(rank_grads) == sorted(task.update_keys)
        for key in rank_grads:
            np.testing.assert_allclose(rank_grads[key], grads[key], rtol=1e-10,
                                       atol=1e-12 * np.abs(grads[key]).max())


@pytest.mark.parametrize("generator", ["lstm", "attention"])
def test_the_ranks_validation_perplexity_is_one_process_s(shapes_root, generator):
    params, task, dataset = _task(shapes_root, [
        "--generator", generator, "--hidden_size", "16", "--image_encoding_size", "16",
        "--word_encoding_size", "16", "--eval_max_images", "25", "--eval_batch_size", "7"])
    want = task.validate(task.model)

    def rank(world):
        return data_parallel.distribute(task, params, world, dataset)[0].validate(task.model)
    for got in run_ranks(3, rank):  # 125 sentences in 18 batches of 7: 6 a rank
        assert got["value"] == pytest.approx(want["value"], rel=1e-12)
        assert got["summary"] == want["summary"]


def test_a_batch_smaller_than_the_ranks_is_refused():
    with pytest.raises(data_parallel.NeuralTalkError,
                       match="--batch_size 2 is smaller than the 3 ranks"):
        data_parallel.check_share(2, ThreadWorld(0, 3, {}))


def test_diverged_parameters_are_found_by_the_checksum():
    def rank(world):
        model = {"W": np.full((3, 2), 1.0 + (world.rank == 2) * 1e-6, np.float32)}
        try:
            data_parallel.check_in_step(world, model, 7)
        except data_parallel.ParametersDiverged as e:
            return str(e)
    messages = run_ranks(3, rank)
    assert len(set(messages)) == 1 and "iteration 7" in messages[0]
    assert "rank 2 differ" in messages[0]


# --- under mpirun -------------------------------------------------------------------

@pytest.mark.parametrize("dropout", ["0.5", "0"])
def test_two_ranks_train_the_same_lstm_as_one_process(mpirun, shapes_root, tmp_path, dropout):
    flags = SMALL + ["--max_iters", "30", "--drop_prob_encoder", dropout,
                     "--drop_prob_decoder", dropout]
    _one_process(shapes_root, tmp_path / "one", *flags)
    result = _ranks(mpirun, 2, shapes_root, tmp_path / "two", *flags)
    _assert_same_training(_last(tmp_path / "two"), _last(tmp_path / "one"))
    # rank 0 alone speaks: one start line, one line per iteration
    assert result.stdout.count("data-parallel training on 2 ranks") == 1
    assert "split 10/10" in result.stdout
    assert result.stdout.count("29/30 batch done") == 1
    assert len(glob.glob(str(tmp_path / "two" / "*.p"))) == 2  # best and last, written once


def test_two_ranks_train_the_same_alignment_model_as_one_process(mpirun, shapes_root,
                                                                 tmp_path):
    flags = ALIGNMENT + MOMENTUM + ["--max_iters", "30"]
    _one_process(shapes_root, tmp_path / "one", *flags)
    _ranks(mpirun, 2, shapes_root, tmp_path / "two", *flags)
    _assert_same_training(_last(tmp_path / "two"), _last(tmp_path / "one"))


@pytest.mark.slow
@pytest.mark.parametrize("generator", ["rnn", "mrnn", "lrcn", "attention"])
def test_two_ranks_train_the_same_generator_as_one_process(mpirun, shapes_root, tmp_path,
                                                           generator):
    flags = SMALL + ["--generator", generator, "--max_iters", "30", "--solver", "vanilla",
                     "--momentum", "0.9", "--learning_rate", GENERATOR_RATES[generator]]
    _one_process(shapes_root, tmp_path / "one", *flags)
    _ranks(mpirun, 2, shapes_root, tmp_path / "two", *flags)
    _assert_same_training(_last(tmp_path / "two"), _last(tmp_path / "one"))


def test_a_checkpoint_of_two_ranks_resumes_on_three(mpirun, shapes_root, tmp_path):
    _ranks(mpirun, 2, shapes_root, tmp_path / "first", *SMALL, "--max_iters", "15")
    (path,) = glob.glob(str(tmp_path / "first" / "*_last.p"))
    result = _ranks(mpirun, 3, shapes_root, tmp_path / "resumed", *SMALL, "--max_iters", "30",
                    "--init_model_from", path)
    assert "resuming from" in result.stdout and "split 7/7/6" in result.stdout
    _one_process(shapes_root, tmp_path / "straight", *SMALL, "--max_iters", "30")
    _assert_same_training(_last(tmp_path / "resumed"), _last(tmp_path / "straight"))


def _pid_of_rank(marker, rank):
    """The pid of the process whose environment holds `marker` and is MPI rank `rank`."""
    want = {marker.encode(), b"OMPI_COMM_WORLD_RANK=%d" % rank}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/environ" % pid, "rb") as f:
                environ = set(f.read().split(b"\0"))
        except OSError:
            continue
        if want <= environ:
            return int(pid)
    return None


def test_a_killed_rank_leaves_every_checkpoint_loadable(mpirun, shapes_root, tmp_path):
    if not os.path.isdir("/proc/self"):
        pytest.skip("finding a rank's pid reads /proc")
    out = tmp_path / "run"
    marker = "NEURALTALK_TEST_RUN=%d" % os.getpid()
    env = dict(os.environ, NEURALTALK_TEST_RUN=str(os.getpid()))
    # a validation (and usually a better checkpoint) every 6 iterations, no end in sight
    flags = SMALL[:-2] + ["--eval_period", "0.01", "--max_iters", "100000",
                          "--keep_all_checkpoints", "1"]
    finished = {}
    job = threading.Thread(target=lambda: finished.update(result=mpirun(
        2, ["python", DRIVER] + _flags(shapes_root, out, *flags), env=env, timeout=120)))
    job.start()
    deadline = time.time() + 90
    while len(glob.glob(str(out / "model_checkpoint_*.p"))) < 2 and time.time() < deadline:
        time.sleep(0.2)
    pid = _pid_of_rank(marker, 1)
    assert pid is not None, "rank 1 not found"
    os.kill(pid, signal.SIGKILL)
    job.join(120)
    assert not job.is_alive()
    assert finished["result"].returncode != 0  # the job ended, it did not hang
    paths = glob.glob(str(out / "*.p"))
    assert len(paths) >= 2
    for path in paths:
        checkpoint = load_checkpoint(path)
        assert sorted(checkpoint["model"]) == ["WLSTM", "Wd", "We", "Ws", "bd", "be"]


# rank 1's solver nudges one parameter: the ranks no longer hold the same model
DIVERGING_RANK = """
import os, sys
sys.argv[0] = {driver!r}
sys.path.insert(0, os.path.dirname({driver!r}))
import driver
from neuraltalk.train import solvers
update = solvers.update
def nudged(model, grads, cache, params):
    update(model, grads, cache, params)
    if os.environ.get("OMPI_COMM_WORLD_RANK") == "1":
        model["bd"][0, 0] += 1e-4
solvers.update = nudged
sys.exit(driver.main(sys.argv[1:]))
"""


def test_ranks_whose_parameters_differ_stop_with_one_error(mpirun, shapes_root, tmp_path):
    script = tmp_path / "diverge.py"
    script.write_text(DIVERGING_RANK.format(driver=DRIVER))
    flags = SMALL[:-2] + ["--eval_period", "0.01", "--max_iters", "100"]
    result = mpirun(2, ["python", str(script)] + _flags(shapes_root, tmp_path / "run", *flags))
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: at iteration 5 the parameters of rank 1 differ from rank 0's: "
                      "the ranks no longer train the same model (different code, data or "
                      "numerical libraries on some machines?); the last good checkpoint is "
                      "kept"]
    assert "6/100 batch done" not in result.stdout
