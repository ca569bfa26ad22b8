"""Training time per epoch of the alignment model (--model brnn) at Flickr8k and COCO size,
at the default sizes and at --preset paper's, on whole-image features (R = 1) or regions.

An epoch is every training sentence once in batches of 100 (as driver.py counts it):
Flickr8k 30,000 sentences (6,000 images), COCO 566,747 (113,287 images with restval).
Its time = iterations x the median time of a full step (loss, gradients, Adam update of
every parameter but the frozen word vectors) + one validation over the val split
(Flickr8k 1,000 images x 5,000 sentences; COCO 5,000 x 25,000, or --coco_val_images).
Synthetic data of the real sizes: 4096-d post-ReLU features, sentence lengths like
Flickr8k's (mean 11.5 words), V = 2538 (Flickr8k) or 10000 (COCO), float32. The last
column is the float32 matrix-multiply rate measured around each row, GFLOP/s the rate
the step reaches (2 x its multiply-adds, see step_macs): on a shared machine, compare
them with a quiet machine's to read the times.
Usage: python bench/alignment_speed.py [--repeats N] [--regions 1] [--sizes default,paper]
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from neuraltalk.data.batches import Batch  # noqa: E402
from neuraltalk.metrics.retrieval import ranks  # noqa: E402
from neuraltalk.models import brnn  # noqa: E402
from neuraltalk.train import solvers  # noqa: E402

DATASETS = {"flickr8k": dict(sentences=30000, val_images=1000, V=2538),
            "coco": dict(sentences=566747, val_images=5000, V=10000)}
D, BATCH = 4096, 100


def sentence_lengths(rng, n):
    """Caption lengths like Flickr8k's (mean 11.5 words, sd ~3.8, 3 to 35)."""
    return np.clip(np.round(rng.gamma(9.0, 11.5 / 9.0, size=n)), 3, 35).astype(np.int32)


def sentences(rng, n, V):
    lengths = sentence_lengths(rng, n)
    words = rng.integers(1, V, size=(n, int(lengths.max()))).astype(np.int32)
    words[np.arange(words.shape[1]) >= lengths[:, None]] = 0
    return words, lengths


def region_feats(rng, n, R):
    return np.maximum(rng.standard_normal(size=(n, R, D), dtype=np.float32), 0)


def sizes(name):
    if name == "paper":
        return dict(brnn.PRESETS["paper"])
    return {"embedding_size": 256, "word_vector_size": 300, "finetune_word_vectors": 0}


def step_macs(params, R, n_words, K=BATCH):
    """Multiply-adds of one step: K images of R regions, n_words words in K sentences."""
    h, w = params["embedding_size"], params["word_vector_size"]
    regions = 2 * K * R * D * h  # v = feats Wm (eq. 1), dWm; no gradient of the features
    words = (3 if params["finetune_word_vectors"] else 2) * n_words * w * h  # We, dWe (dx)
    recurrences = 2 * 3 * n_words * h * h  # Wf and Wb: forward, dW, dh
    output = 3 * n_words * h * h  # Wd
    scores = 3 * K * R * h * n_words  # v . s_t for every pair, dv, ds
    return regions + words + recurrences + output + scores


def step_seconds(params, V, R, repeats, rng):
    """Median seconds of one training step on a batch of BATCH pairs, and the mean
    multiply-adds of its steps."""
    model = brnn.init(params, D, V, rng)
    keys = [k for k in model if k != "Ww" or params["finetune_word_vectors"]]
    cache = {}
    times, macs = [], []
    for _ in range(repeats + 1):  # the first step allocates the solver's state
        words, lengths = sentences(rng, BATCH, V)
        macs.append(step_macs(params, R, int(lengths.sum())))
        batch = Batch(None, words, lengths, None, None, region_feats(rng, BATCH, R),
                      np.full(BATCH, R))
        t0 = time.perf_counter()
        _, grads = brnn.loss(model, batch, params)
        solvers.update(model, {k: grads[k] for k in keys}, cache, params)
        times.append(time.perf_counter() - t0)
    return float(np.median(times[1:])), float(np.mean(macs)), model


def validation_seconds(model, params, n_images, V, R, rng):
    """One validation: the (n_images, 5 n_images) score matrix and the ranks both ways."""
    feats = region_feats(rng, n_images, R)
    words, lengths = sentences(rng, 5 * n_images, V)
    t0 = time.perf_counter()
    S = brnn.score_matrix(model, params, feats, np.full(n_images, R), words, lengths)
    ranks(S, np.repeat(np.arange(n_images), 5))
    return time.perf_counter() - t0


def sgemm_rate(rng, n=1536, repeats=3):
    """GFLOP/s of a float32 n x n matrix product now: the machine's rate under the same
    load as the steps (on a shared machine, scale the times by it)."""
    a = rng.random((n, n), dtype=np.float32)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ a
        times.append(time.perf_counter() - t0)
    return 2 * n ** 3 / np.median(times) / 1e9


def fmt(seconds):
    return "%dm%02ds" % (seconds // 60, seconds % 60) if seconds >= 60 else "%.1fs" % seconds


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--regions", type=int, default=1, help="regions per image (paper: 20)")
    p.add_argument("--sizes", default="default,paper")
    p.add_argument("--datasets", default="flickr8k,coco")
    p.add_argument("--coco_val_images", type=int, default=5000,
                   help="COCO validation images (driver.py's --eval_max_images)")
    args = p.parse_args()
    rng = np.random.default_rng(0)
    print("R = %d region%s per image, D = %d, batch %d, Adam, float32; load average %s"
          % (args.regions, "" if args.regions == 1 else "s", D, BATCH,
             " ".join("%.1f" % x for x in os.getloadavg())))
    print("%-9s %-8s %5s %5s %10s %9s %7s %11s %10s %11s %8s" % (
        "dataset", "sizes", "h", "x_t", "step", "GFLOP/s", "iters", "train", "validate",
        "epoch", "sgemm"))
    for dataset in args.datasets.split(","):
        data = DATASETS[dataset]
        val_images = args.coco_val_images if dataset == "coco" else data["val_images"]
        for size in args.sizes.split(","):
            params = dict(sizes(size), score="max", margin=1.0, regc=1e-8, solver="adam",
                          learning_rate=1e-3, adam_beta1=0.9, adam_beta2=0.999,
                          smooth_eps=1e-8, grad_clip=5)
            rate = sgemm_rate(rng)
            step, macs, model = step_seconds(params, data["V"], args.regions, args.repeats,
                                             rng)
            iters = int(np.ceil(data["sentences"] / BATCH))
            val = validation_seconds(model, params, val_images, data["V"], args.regions, rng)
            rate = (rate + sgemm_rate(rng)) / 2
            print("%-9s %-8s %5d %5d %8.1fms %9.1f %7d %11s %10s %11s %5.1f GF" % (
                dataset, size, params["embedding_size"], params["word_vector_size"],
                step * 1e3, 2 * macs / step / 1e9, iters, fmt(iters * step), fmt(val),
                fmt(iters * step + val), rate), flush=True)


if __name__ == "__main__":
    main()
