"""Retrieval speed and memory: 1,000 test images x 5,000 sentences with h = 1000,
20 regions of 4096-d features per image and 12 words per sentence (random model).

Prints the time of the full score matrix and the recalls, the peak resident memory, where
the time went (region embeddings, the BRNN over the sentences, the region-word products
and their max over regions, the ranks), the matrix-product work against the rate of one
large sgemm timed in the same run, and how the time grows with the split: the products
grow as images x sentences, the rest as images. --estimate_images N (default 5000) times
one chunk of sentences against N images' regions and scales the measured parts to N.

Usage: python bench/retrieval_speed.py [--images N] [--threads T] [--estimate_images N]
"""
import argparse
import os
import sys
import time

p = argparse.ArgumentParser(description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("--images", type=int, default=1000)
p.add_argument("--embedding_size", type=int, default=1000)
p.add_argument("--threads", type=int, default=2, help="BLAS threads (default 2)")
p.add_argument("--estimate_images", type=int, default=5000,
               help="estimate the time at this many images from one measured block (0: skip)")
ARGS = p.parse_args() if __name__ == "__main__" else None
if ARGS is not None:  # OpenBLAS reads its thread count when NumPy is first imported
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from neuraltalk.metrics.retrieval import ranks, recall_table  # noqa: E402
from neuraltalk.models import brnn  # noqa: E402

R, D, T, V, W = 20, 4096, 12, 10000, 300


def peak_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0


def sgemm_rate(h):
    """GFLOP/s of one large float32 product, median of 3."""
    rng = np.random.default_rng(1)
    a = rng.standard_normal((4096, h), dtype=np.float32)
    b = rng.standard_normal((h, 4096), dtype=np.float32)
    a @ b
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * 4096 * h * 4096 / np.median(times) / 1e9


class Clock:
    """Seconds spent in some of brnn's functions, while score_matrix runs."""
    NAMES = ("embed_regions", "sentence_vectors", "_per_word_scores", "image_sentence_scores")

    def __init__(self):
        self.seconds = {}
        self.saved = {}

    def __enter__(self):
        for name in self.NAMES:
            if hasattr(brnn, name):
                self.saved[name] = f = getattr(brnn, name)
                setattr(brnn, name, self.timed(name, f))
        return self

    def timed(self, name, f):
        def g(*a, **k):
            t0 = time.perf_counter()
            out = f(*a, **k)
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0
            return out
        return g

    def __exit__(self, *exc):
        for name, f in self.saved.items():
            setattr(brnn, name, f)


def main(args):
    rng = np.random.default_rng(0)
    n, h = args.images, args.embedding_size
    params = {"embedding_size": h, "word_vector_size": W, "score": "max"}
    model = brnn.init(params, D, V, rng)
    feats = np.maximum(rng.standard_normal(size=(n, R, D), dtype=np.float32), 0)
    counts = np.full(n, R)
    words = rng.integers(1, V, size=(5 * n, T)).astype(np.int32)
    lengths = np.full(5 * n, T)
    load = " ".join(open("/proc/loadavg").read().split()[:3])
    print("threads %d (load average %s)" % (args.threads, load))
    rate = sgemm_rate(h)
    before = peak_mb()
    t0 = time.perf_counter()
    with Clock() as clock:
        S = brnn.score_matrix(model, params, feats, counts, words, lengths)
    t1 = time.perf_counter()
    i2t, t2i = ranks(S, np.repeat(np.arange(n), 5))
    table = recall_table(i2t, t2i)
    seconds = time.perf_counter() - t0
    print("%d images x %d sentences, h=%d, %d regions, %d words: %.1fs" % (
        n, 5 * n, h, R, T, seconds))
    print("peak resident memory %.0f MB (inputs alone: %.0f MB)" % (peak_mb(), before))
    print("recalls of a random model (chance level): i2t R@10 %.3f, t2i R@10 %.3f"
          % (table["i2t"]["R@10"], table["t2i"]["R@10"]))
    # where the time went, and the matrix-product work of each part
    words_total = 5 * n * T
    embed = clock.seconds.get("embed_regions", 0.0)
    brnn_s = clock.seconds.get("sentence_vectors", 0.0)
    dots = clock.seconds.get("_per_word_scores", clock.seconds.get("image_sentence_scores", 0.0))
    rest = (t1 - t0) - embed - brnn_s - dots
    rank_s = seconds - (t1 - t0)
    flops = {"embed": 2.0 * n * R * D * h, "brnn": 2.0 * words_total * (W * h + 3 * h * h),
             "dots": 2.0 * n * R * h * words_total}
    print("one %d x %d x 4096 sgemm in this run: %.1f GFLOP/s" % (4096, h, rate))
    print("  %-34s %7s %9s %13s" % ("part", "seconds", "GFLOP", "share of sgemm"))
    for name, sec, fl in (("region embeddings (eq. 1)", embed, flops["embed"]),
                          ("BRNN over the sentences", brnn_s, flops["brnn"]),
                          ("region-word products, max, sums", dots, flops["dots"]),
                          ("chunking, segment sums, copies", rest, 0),
                          ("ranks and recalls", rank_s, 0)):
        share = "%.2f" % (fl / 1e9 / rate / sec) if fl and sec else ""
        print("  %-34s %7.2f %9.0f %13s" % (name, sec, fl / 1e9, share))
    total_fl = sum(flops.values())
    print("  all products: %.0f GFLOP, %.1fs at the sgemm rate (%.2f of it over the whole run)"
          % (total_fl / 1e9, total_fl / 1e9 / rate, total_fl / 1e9 / rate / seconds))
    if args.estimate_images:
        m = args.estimate_images
        # one chunk of sentences against m images' regions: the part that grows as m^2
        vm = rng.standard_normal((m * R, h), dtype=np.float32)
        chunk = brnn.CHUNK_WORDS // T
        sents, _ = brnn.sentence_vectors(model, words[:chunk], lengths[:chunk])
        t0 = time.perf_counter()
        brnn.segment_sums(brnn._per_word_scores(vm, R, np.full(m, R), sents.s, "max"), sents)
        block = time.perf_counter() - t0
        del vm
        chunks_m = -(-5 * m // chunk)
        est = {"embed": embed * m / n, "brnn": brnn_s * m / n, "dots": block * chunks_m,
               "other": rest * m / n, "ranks": rank_s * (m / n) ** 2}
        print("growth: %d images x %d sentences measured %.1fs; %d x %d estimated %.0fs "
              "(one measured chunk of %d sentences against %d images' regions: %.2fs, x %d chunks; "
              "embeddings and BRNN x %.0f, ranks x %.0f); S alone %.0f MB, features %.0f MB"
              % (n, 5 * n, seconds, m, 5 * m, sum(est.values()), chunk, m, block, chunks_m, m / n,
                 (m / n) ** 2, m * 5 * m * 4 / 2 ** 20, m * R * D * 4 / 2 ** 20))


if __name__ == "__main__":
    main(ARGS)
