"""Training speed of the alignment model (--model brnn) at the paper's size: image-sentence
pairs per second of a full step (ranking cost, gradients, Adam update of every parameter
but the frozen word vectors), h = 1000, 300-d word vectors, 20 regions of 4096-d per image,
batch 100 pairs, V = 2538, sentence lengths like Flickr8k's (mean 11.5 words), float32.

GFLOP/s counts the step's multiply-adds (bench/alignment_speed.py's step_macs, 2 FLOPs
each); "of sgemm" divides it by a float32 1536^3 matrix product timed in blocks
alternating with the steps, under the same load. With torch importable the same step runs
in PyTorch on the same batches, in blocks alternating with ours (bench/alternate.py; see
bench/torch_side.py), same thread count, and the row prints its pairs/s and the ratio.
All figures are medians. The default run also
prints how the figure moves with the batch (25, 50, 100, 200) and the vocabulary (2.5k,
10k, 25k: the word vectors are fixed, so it should not move); --quick skips that.
Usage: python bench/align_speed.py [--repeats N] [--quick]
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from neuraltalk.data.batches import Batch  # noqa: E402
from neuraltalk.models import brnn  # noqa: E402
from neuraltalk.train import solvers  # noqa: E402
from alignment_speed import region_feats, sentences, step_macs  # noqa: E402
import torch_side  # noqa: E402
from alternate import METHOD, alternate, timed_calls  # noqa: E402

D, R, V = 4096, 20, 2538
ROUNDS = 2  # blocks of steps per side (see alternate.py)


def measure(repeats, K=100, V=V, sgemm_n=1536):
    """(pairs/s, step s, GFLOP/s, sgemm GFLOP/s, PyTorch pairs/s or None), medians."""
    rng = np.random.default_rng(0)
    params = dict(brnn.PRESETS["paper"], score="max", margin=1.0, regc=1e-8, solver="adam",
                  learning_rate=1e-3, adam_beta1=0.9, adam_beta2=0.999, smooth_eps=1e-8,
                  grad_clip=5)
    model = brnn.init(params, D, V, rng)
    keys = [k for k in model if k != "Ww"]
    ref = None
    if torch_side.available():
        torch_side.setup()
        ref = torch_side.BRNNTrainer(D, params["embedding_size"], params["word_vector_size"], V)
    a = rng.random((sgemm_n, sgemm_n), dtype=np.float32)
    cache = {}
    batches = []
    for _ in range(5):
        words, lengths = sentences(rng, K, V)
        batches.append(Batch(None, words, lengths, None, None, region_feats(rng, K, R),
                             np.full(K, R)))

    def ours(i):
        _, grads = brnn.loss(model, batches[i % len(batches)], params)
        solvers.update(model, {k: grads[k] for k in keys}, cache, params)

    sides = {"ours": ours, "sgemm": lambda i: a @ a}
    if ref is not None:  # the same batches in PyTorch
        def theirs(i):
            batch = batches[i % len(batches)]
            ref.step(batch.regions, batch.words, batch.lengths)
        sides["torch"] = theirs
    timed = alternate(sides, ROUNDS, repeats)
    times = [t for _, t in timed["ours"]]
    flops = [2 * step_macs(params, R, int(batches[i % len(batches)].lengths.sum()), K) / t
             for i, t in timed["ours"]]
    sgemm = [2 * sgemm_n ** 3 / t for _, t in timed["sgemm"]]
    torch_times = [t for _, t in timed.get("torch", ())]
    t = float(np.median(times))
    return (K / t, t, np.median(flops) / 1e9, np.median(sgemm) / 1e9,
            K / np.median(torch_times) if torch_times else None)


HEADER = "%-10s %8s %9s %9s %13s %9s %10s %6s" % (
    "row", "pairs/s", "step ms", "GFLOP/s", "sgemm GFLOP/s", "of sgemm", "PyTorch/s", "ratio")


def row(name, rate, t, flops, peak, torch_rate):
    ref = "%10.0f %5.2fx" % (torch_rate, rate / torch_rate) if torch_rate else "%10s %6s" % ("-", "-")
    return "%-10s %8.0f %9.1f %9.1f %13.1f %9.2f %s" % (name, rate, 1e3 * t, flops, peak,
                                                        flops / peak, ref)


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5, help="timed steps per row (default 5)")
    p.add_argument("--quick", action="store_true", help="the batch-100 row only")
    args = p.parse_args()
    print("BRNN h=1000, word vectors 300 (fixed), R=%d regions of %d-d, Adam, float32; "
          "medians of %d steps, %s; %d BLAS threads; load average %s; PyTorch: %s" % (
              R, D, timed_calls(ROUNDS, args.repeats), METHOD % ROUNDS,
              torch_side.blas_threads(),
              " ".join("%.1f" % x for x in os.getloadavg()),
              torch_side.torch.__version__ if torch_side.available() else "not installed"))
    print(HEADER)
    print(row("batch 100", *measure(args.repeats)), flush=True)
    if args.quick:
        return
    print("growth: with the batch (V = %d), then with the vocabulary (batch 100)" % V)
    for K in (25, 50, 200):
        print(row("batch %d" % K, *measure(args.repeats, K=K)), flush=True)
    for v in (10000, 25000):
        print(row("V %.0fk" % (v / 1e3), *measure(args.repeats, V=v)), flush=True)


if __name__ == "__main__":
    main()
