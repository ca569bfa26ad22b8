"""Data-parallel scaling: measured on this machine, then modelled for K machines.

Measured (each measurement a fresh process, one BLAS thread a rank, float32, batch 100,
Flickr8k-like caption lengths, mean 11.5 words):
  1. LSTM training at the Flickr8k config (D=4096, E=H=256, V=2538): sentences/s of a full
     step (forward, backward, Allreduce, solver update) with 1 process and with
     `mpirun -n 2`; the bytes allreduced per iteration and the time of that Allreduce
     (localhost: shared memory, not a network).
  2. One process, for the model: the step's compute and the solver update (every rank
     applies the whole update, so it does not shrink with K) of the LSTM at Flickr8k and
     COCO sizes (V=10000, E=H=512) and of the alignment model at h=1000 (R=20 regions of
     D=4096, 300-d word vectors kept fixed, as the paper's preset).
  3. Feature extraction (bench/scaling_features.py): images/s of EfficientNet-Lite0 with
     1 and 2 ranks; its CPU seconds an image model the sharded extraction of COCO, whose
     only communication is rank 0 gathering the features once.

Model of K machines on a network of bandwidth `--gbit` Gbit/s and latency `--latency_us`
per message (ring collectives, as Open MPI uses for large buffers):
  allreduce(n bytes)  = 2 (K-1)/K * n / bandwidth + 2 (K-1) * latency
  allgather(n bytes)  =   (K-1)/K * n / bandwidth +   (K-1) * latency  (n: the whole result)
  step(K) = (compute - update) / K + update + allreduce(gradients)
            [+ alignment model: allgather(s_t of the batch's words) + allreduce(their ds)
               + allgather(S)]
  speed-up(K) = step(1) / step(K); communication dominates once it exceeds the compute
  share (compute - update) / K.
Usage: python bench/scaling.py [--repeats N] [--gbit 10] [--latency_us 50]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from neuraltalk.data.batches import Batch  # noqa: E402
from neuraltalk.models import GENERATORS, brnn  # noqa: E402
from neuraltalk.parallel import world  # noqa: E402

from neuraltalk.train import data_parallel, solvers  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scaling_features  # noqa: E402

BATCH = 100
CONFIGS = {
    "lstm-flickr8k": dict(kind="lstm", D=4096, E=256, H=256, V=2538),
    "lstm-coco": dict(kind="lstm", D=4096, E=512, H=512, V=10000),
    "brnn-h1000": dict(kind="brnn", D=4096, R=20, h=1000, w=300, V=2538),
}
KS = (2, 4, 8, 16, 32, 64)
COCO_IMAGES = 123287


def sentence_lengths(rng, n):
    """Caption lengths like Flickr8k's (mean 11.5 words, sd ~3.8, 3 to 35)."""
    return np.clip(np.round(rng.gamma(9.0, 11.5 / 9.0, size=n)), 3, 35).astype(np.int32)


def make_setup(name, rng):
    """(params, model, batch, update keys, regularized) of a configuration."""
    c = CONFIGS[name]
    lengths = sentence_lengths(rng, BATCH)
    words = np.zeros((BATCH, lengths.max()), np.int32)
    for b, n in enumerate(lengths):  # once, to build the synthetic batch
        words[b, :n] = rng.integers(1, c["V"], size=n)
    ids = np.arange(BATCH, dtype=np.int64)
    if c["kind"] == "lstm":
        params = {"model": "generator", "generator": "lstm", "word_encoding_size": c["E"],
                  "image_encoding_size": c["E"], "hidden_size": c["H"], "tanhC_version": 0,
                  "drop_prob_encoder": 0.5, "drop_prob_decoder": 0.5, "regc": 1e-8,
                  "solver": "rmsprop", "learning_rate": 1e-3, "grad_clip": 5,
                  "decay_rate": 0.999, "smooth_eps": 1e-8}
        model = GENERATORS["lstm"].init(params, c["D"], c["V"], rng)
        feats = rng.random((BATCH, c["D"]), dtype=np.float32)
        return params, model, Batch(feats, words, lengths, ids, ids), sorted(model)
    params = {"model": "brnn", "embedding_size": c["h"], "word_vector_size": c["w"],
              "score": "max", "margin": 1.0, "regc": 1e-8, "solver": "adam",
              "learning_rate": 1e-3, "grad_clip": 5, "adam_beta1": 0.9, "adam_beta2": 0.999,
              "smooth_eps": 1e-8}
    model = brnn.init(params, c["D"], c["V"], rng)
    regions = rng.random((BATCH, c["R"], c["D"]), dtype=np.float32)
    batch = Batch(None, words, lengths, ids, ids, regions, np.full(BATCH, c["R"]))
    return params, model, batch, sorted(k for k in model if k != "Ww")  # word vectors fixed


def worker(name, repeats):
    """One rank's measurement; rank 0 prints one JSON line."""
    ranks = world()
    rng = np.random.default_rng(0)
    params, model, batch, keys = make_setup(name, rng)
    if ranks.size > 1:
        if params["model"] == "brnn":
            cost, flat = data_parallel.alignment_cost(params, model, keys, ranks)
        else:
            cost, flat = data_parallel.generator_cost(GENERATORS["lstm"], params, model, keys,
                                                      ranks)
    else:
        module = brnn if params["model"] == "brnn" else GENERATORS["lstm"]
        cost = lambda model, batch, rng: module.loss(model, batch, params, rng)  # noqa: E731
        flat = data_parallel.FlatSum(model, keys, (), ranks)  # to count the bytes
    cache = {}
    steps, updates = [], []
    for i in range(repeats + 1):  # the first step warms up (caches, allocations)
        ranks.barrier()
        t0 = time.perf_counter()
        _, grads = cost(model, batch, rng)
        t1 = time.perf_counter()
        solvers.update(model, {k: grads[k] for k in keys}, cache, params)
        t2 = time.perf_counter()
        if i:
            steps.append(t2 - t0)
            updates.append(t2 - t1)
    reduces = []
    for _ in range(max(5, repeats)):
        ranks.barrier()  # time the collective, not the wait for the slowest rank
        t0 = time.perf_counter()
        ranks.allreduce_sum(flat.buffer)
        reduces.append(time.perf_counter() - t0)
    step = float(np.max(ranks.allgather(float(np.median(steps)))))
    if ranks.is_root:
        print(json.dumps({"name": name, "ranks": ranks.size, "step": step,
                          "update": float(np.median(updates)), "bytes": flat.nbytes,
                          "allreduce": float(np.median(reduces)) if ranks.size > 1 else 0.0,
                          "words": int(batch.lengths.sum())}), flush=True)


def measure(name, ranks, repeats):
    """Run `worker` in a fresh process (or `mpirun -n ranks`), one BLAS thread a rank."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               MKL_NUM_THREADS="1", PYTHONPATH=ROOT)
    argv = [sys.executable, os.path.abspath(__file__), "--worker", name,
            "--repeats", str(repeats)]
    if ranks > 1:
        launcher = shutil.which("mpirun")
        if launcher is None:
            raise SystemExit("mpirun is not installed: pip install -e \".[mpi]\"")
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                   OMPI_MCA_rmaps_base_oversubscribe="1")
        argv = [launcher, "-n", str(ranks)] + argv
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads([line for line in out.splitlines() if line.startswith("{")][-1])


def ring_allreduce(nbytes, K, bandwidth, latency):
    return 2 * (K - 1) / K * nbytes / bandwidth + 2 * (K - 1) * latency


def ring_allgather(nbytes, K, bandwidth, latency):
    return (K - 1) / K * nbytes / bandwidth + (K - 1) * latency


def communication(m, K, bandwidth, latency):
    """Seconds of communication per iteration on K machines, for measurement `m`."""
    t = ring_allreduce(m["bytes"], K, bandwidth, latency)
    if m["name"].startswith("brnn"):  # the ranking cost couples the ranks' slices
        h = CONFIGS[m["name"]]["h"]
        word_vectors = m["words"] * h * 4
        t += ring_allgather(word_vectors, K, bandwidth, latency)  # s_t of every word
        t += ring_allreduce(word_vectors, K, bandwidth, latency)  # ds of every word
        t += ring_allgather(BATCH * BATCH * 4, K, bandwidth, latency)  # rows of S
    return t


def model_rows(m, bandwidth, latency):
    """(K, step seconds, speed-up, communication share) of measurement m, K in KS."""
    compute, update = m["step"] - m["update"], m["update"]
    rows = []
    for K in KS:
        comm = communication(m, K, bandwidth, latency)
        step = compute / K + update + comm
        rows.append((K, step, m["step"] / step, comm / step, comm > compute / K))
    return rows


def feature_extraction_rows(seconds_per_image, bandwidth, latency, images=COCO_IMAGES,
                            width=1280):
    """The sharded extraction of `images` images (COCO's) as print_model's table: every
    rank extracts images / K of them, then rank 0 gathers the (images x width) float32
    features once; the CNN's seconds an image as measured with one BLAS thread."""
    compute = images * seconds_per_image
    rows = []
    for K in KS:
        comm = ring_allgather(images * width * 4, K, bandwidth, latency)
        step = compute / K + comm
        rows.append((K, step, compute / step, comm / step, comm > compute / K))
    return [("features, EfficientNet-Lite0, COCO's %d images (%d-d), whole job" % (images, width),
             rows)]


def print_model(label, rows):
    print("\n%s" % label)
    print("   K   step (s)   speed-up   communication   ")
    for K, step, speedup, share, dominated in rows:
        print("%4d   %8.4f   %7.2fx   %5.1f%% of the step%s"
              % (K, step, speedup, 100 * share, "   <- communication > compute" if dominated
                 else ""))


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5, help="timed steps per measurement")
    p.add_argument("--gbit", type=float, default=10.0, help="network bandwidth, Gbit/s")
    p.add_argument("--latency_us", type=float, default=50.0,
                   help="latency per message, microseconds (TCP over 10 GbE: 20-50)")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args.worker, args.repeats)
    bandwidth, latency = args.gbit * 1e9 / 8, args.latency_us * 1e-6

    print("measured on this machine (%d cores), one BLAS thread a rank, batch %d:"
          % (os.cpu_count(), BATCH))
    one = measure("lstm-flickr8k", 1, args.repeats)
    two = measure("lstm-flickr8k", 2, args.repeats)
    for m in (one, two):
        print("  LSTM Flickr8k, %d rank%s: %.3f s a step, %.1f sentences/s"
              % (m["ranks"], "" if m["ranks"] == 1 else "s", m["step"], BATCH / m["step"]))
    print("  speed-up of 2 ranks: %.2fx" % (one["step"] / two["step"]))
    print("  allreduced per iteration: %d bytes (%.2f MB, one float32 buffer); the "
          "Allreduce of 2 ranks on localhost takes %.2f ms"
          % (two["bytes"], two["bytes"] / 1e6, 1e3 * two["allreduce"]))

    _, feature_seconds = scaling_features.feature_rows()

    measured = [one, measure("lstm-coco", 1, args.repeats),
                measure("brnn-h1000", 1, max(2, args.repeats // 2))]
    print("\none process, for the model:")
    for m in measured:
        print("  %-14s step %.3f s (solver update %.3f s), %.2f MB of gradients, %d words"
              % (m["name"], m["step"], m["update"], m["bytes"] / 1e6, m["words"]))

    print("\nexpected on K machines, %.0f Gbit/s, %.0f us a message, ring allreduce "
          "2(K-1)/K * bytes / bandwidth + 2(K-1) * latency:" % (args.gbit, args.latency_us))
    labels = {"lstm-flickr8k": "LSTM, Flickr8k sizes (D=4096, E=H=256, V=2538), batch 100",
              "lstm-coco": "LSTM, COCO sizes (D=4096, E=H=512, V=10000), batch 100",
              "brnn-h1000": "alignment model, h=1000, R=20, batch 100 (plus allgather of "
                            "s_t, allreduce of ds, allgather of S)"}
    tables = [(labels[m["name"]], model_rows(m, bandwidth, latency)) for m in measured]
    if feature_seconds is not None:
        tables += feature_extraction_rows(feature_seconds, bandwidth, latency)
    for label, rows in tables:
        print_model(label, rows)
        dominated = [K for K, _, _, _, d in rows if d]
        print("  communication dominates from K = %s" % (dominated[0] if dominated else
                                                         "beyond %d" % KS[-1]))


if __name__ == "__main__":
    main()
