"""Retrieval speed and memory: 1,000 test images x 5,000 sentences with h = 1000,
20 regions of 4096-d features per image and 12 words per sentence (random model).

Prints the time of the full score matrix and the recalls, and the peak resident memory.
Usage: python bench/retrieval_speed.py [--images N]
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from neuraltalk.metrics.retrieval import ranks, recall_table  # noqa: E402
from neuraltalk.models import brnn  # noqa: E402


def peak_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--images", type=int, default=1000)
    p.add_argument("--embedding_size", type=int, default=1000)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    n, R, D, T, V = args.images, 20, 4096, 12, 10000
    params = {"embedding_size": args.embedding_size, "word_vector_size": 300, "score": "max"}
    model = brnn.init(params, D, V, rng)
    feats = np.maximum(rng.standard_normal(size=(n, R, D), dtype=np.float32), 0)
    counts = np.full(n, R)
    words = rng.integers(1, V, size=(5 * n, T)).astype(np.int32)
    lengths = np.full(5 * n, T)
    before = peak_mb()
    t0 = time.perf_counter()
    S = brnn.score_matrix(model, params, feats, counts, words, lengths)
    i2t, t2i = ranks(S, np.repeat(np.arange(n), 5))
    table = recall_table(i2t, t2i)
    seconds = time.perf_counter() - t0
    print("%d images x %d sentences, h=%d, %d regions, %d words: %.1fs" % (
        n, 5 * n, args.embedding_size, R, T, seconds))
    print("peak resident memory %.0f MB (inputs alone: %.0f MB)" % (peak_mb(), before))
    print("recalls of a random model (chance level): i2t R@10 %.3f, t2i R@10 %.3f"
          % (table["i2t"]["R@10"], table["t2i"]["R@10"]))


if __name__ == "__main__":
    main()
