"""Training speed of the caption generators: sentences per second of a full step
(forward, backward, solver update), float32, batch 100, mean sentence length 11.5.

Configurations: A) D=4096, E=H=256, V=2538 (Flickr8k defaults); B) D=4096, E=H=512,
V=10000 (COCO size); both generators. In the same run it measures this machine's
float32 matrix-multiply rate (a large square sgemm) and prints the fraction of it the
training step reaches, counting the multiply-adds the step performs (2 FLOPs each).
Usage: python bench/train_speed.py [--repeats N]
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from neuraltalk import generators, solvers  # noqa: E402
from neuraltalk.batches import Batch  # noqa: E402

CONFIGS = {"A": dict(D=4096, E=256, H=256, V=2538), "B": dict(D=4096, E=512, H=512, V=10000)}


def sentence_lengths(rng, n):
    """Caption lengths like Flickr8k's: mostly 6 to 20 words, mean 11.5."""
    lengths = np.clip(np.round(rng.gamma(9.0, 11.5 / 9.0, size=n)), 3, 35).astype(np.int32)
    return lengths


def make_batch(rng, B, D, V):
    lengths = sentence_lengths(rng, B)
    words = np.zeros((B, lengths.max()), np.int32)
    for b, n in enumerate(lengths):
        words[b, :n] = rng.integers(1, V, size=n)
    feats = np.maximum(rng.normal(size=(B, D)), 0).astype(np.float32)
    return Batch(feats, words, lengths, np.arange(B), np.arange(B))


def step_macs(generator, batch, D, E, H, V):
    """Multiply-adds of one training step as the code performs them: the input
    projections and weight gradients over the padded (steps x batch) block, the
    recurrent products over the sentences still running at each step only."""
    B, T = batch.words.shape
    N = int((batch.lengths + 1).sum())
    decoder = 3 * N * H * V  # forward, dWd, dH
    if generator == "lstm":
        S = T + 2
        running = sum(int((batch.lengths >= t - 1).sum()) for t in range(1, S))
        image = 2 * B * D * E  # forward and dWe
        inputs = 3 * B * S * E * 4 * H  # forward, dWLSTM, dX
        recurrent = 2 * running * H * 4 * H + B * (S - 1) * H * 4 * H  # forward, dH; dWLSTM
    else:
        S = T + 1
        running = sum(int((batch.lengths >= t).sum()) for t in range(1, S))
        image = 2 * B * D * H
        inputs = 3 * B * S * E * H
        recurrent = 2 * running * H * H + B * (S - 1) * H * H
    return decoder + image + inputs + recurrent


def sgemm_rate(n=2048, repeats=5):
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    b = np.random.default_rng(1).random((n, n), dtype=np.float32)
    a @ b
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * n ** 3 / np.median(times)


def measure(generator, cfg, repeats):
    rng = np.random.default_rng(0)
    params = {"generator": generator, "image_encoding_size": cfg["E"] if generator == "lstm"
              else cfg["H"], "word_encoding_size": cfg["E"], "hidden_size": cfg["H"],
              "tanhC_version": 0, "rnn_relu_encoders": 0, "rnn_feed_once": 0,
              "drop_prob_encoder": 0.5, "drop_prob_decoder": 0.5, "regc": 1e-8,
              "solver": "rmsprop", "learning_rate": 1e-3, "decay_rate": 0.999,
              "smooth_eps": 1e-8, "grad_clip": 5}
    model = generators.init_model(params, cfg["D"], cfg["V"], np.zeros(cfg["V"]), rng)
    cache = {}
    batches = [make_batch(rng, 100, cfg["D"], cfg["V"]) for _ in range(repeats + 2)]
    times, macs = [], []
    for i, batch in enumerate(batches):
        t0 = time.perf_counter()
        _, grads = generators.batch_cost(model, batch, params, rng)
        solvers.update(model, grads, cache, params)
        if i >= 2:  # warm-up
            times.append(time.perf_counter() - t0)
            macs.append(step_macs(generator, batch, **cfg))
    t = np.median(times)
    return 100 / t, 2 * np.median(macs) / t, np.mean([b.lengths.mean() for b in batches])


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeats", type=int, default=15)
    args = p.parse_args()
    peak = sgemm_rate()
    print("float32 matrix multiply (2048^3 sgemm, median): %.1f GFLOP/s" % (peak / 1e9))
    print("%-6s %-5s %12s %10s %10s  %s" % ("config", "gen", "sentences/s", "GFLOP/s",
                                            "of sgemm", "mean length"))
    for name, cfg in CONFIGS.items():
        for generator in ("lstm", "rnn"):
            rate, flops, mean_len = measure(generator, cfg, args.repeats)
            print("%-6s %-5s %12.0f %10.1f %9.2f   %.1f" % (name, generator, rate, flops / 1e9,
                                                          flops / peak, mean_len))
    print("sgemm again at the end: %.1f GFLOP/s" % (sgemm_rate() / 1e9))


if __name__ == "__main__":
    main()
