"""Speed of one self-critical training step (neuraltalk/train/scst.py): images per second
of sampling K captions per image, greedy decoding, CIDEr-D rewards, the policy-gradient
backward pass and the solver update, and the share of the step each part takes.

Flickr8k configuration: D=4096, E=H=256, V=2538, 6,000 training images with 5 references
each (random words, Zipf-distributed, Flickr8k's caption lengths), K=5 samples per image,
batch 100 images (500 sampled captions), float32, Adam. The untrained model's END bias is
set so that a caption ends after 10 words on average (about 15% run to the 20-word cap),
as long as Flickr8k's; the other weights are NeuralTalk's initialisation. That model's
greedy caption is END at once (END is every step's likeliest word), so the `greedy` row
is only its first step here; a trained model's greedy decode runs the sampler's steps on
1/K of its rows. Medians over
the timed steps; on a shared machine the figures are noisy: rerun on a quiet one.
Usage: python bench/scst_speed.py [--repeats N] [--batch B] [--samples K]
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from neuraltalk.metrics.cider import document_frequencies  # noqa: E402
from neuraltalk.metrics.cider_reward import CiderD  # noqa: E402
from neuraltalk.models import captioning  # noqa: E402
from neuraltalk.train import scst, solvers  # noqa: E402

CONFIG = dict(D=4096, E=256, H=256, V=2538)
N_TRAIN, N_REFS = 6000, 5
PARTS = ("sample", "greedy", "reward", "backward", "update")


def sentence_lengths(rng, n):
    """Caption lengths like Flickr8k's (mean 11.5 words, sd ~3.8, 3 to 35)."""
    return np.clip(np.round(rng.gamma(9.0, 11.5 / 9.0, size=n)), 3, 35).astype(np.int64)


def references(rng, V):
    """N_TRAIN images of N_REFS random captions over the words 1..V-1, Zipf-distributed."""
    p = 1.0 / np.arange(1, V)
    p /= p.sum()
    lengths = sentence_lengths(rng, N_TRAIN * N_REFS)
    words = rng.choice(np.arange(1, V), size=int(lengths.sum()), p=p)
    cuts = np.split(words, np.cumsum(lengths)[:-1])
    names = ["w%d" % i for i in range(V)]
    refs = [[names[w] for w in c] for c in cuts]
    return [refs[i * N_REFS:(i + 1) * N_REFS] for i in range(N_TRAIN)], dict(enumerate(names))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--repeats", type=int, default=10, help="timed steps (default 10)")
    p.add_argument("--batch", type=int, default=100, help="images per step (default 100)")
    p.add_argument("--samples", type=int, default=5, help="captions sampled per image (5)")
    p.add_argument("--baseline", default="greedy", choices=scst.BASELINES)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    D, E, H, V = (CONFIG[k] for k in "DEHV")
    params = {"generator": "lstm", "image_encoding_size": E, "word_encoding_size": E,
              "hidden_size": H, "tanhC_version": 0, "regc": 1e-8, "solver": "adam",
              "learning_rate": 5e-5, "adam_beta1": 0.9, "adam_beta2": 0.999,
              "smooth_eps": 1e-8, "grad_clip": 5, "scst_samples": args.samples,
              "scst_temperature": 1.0, "scst_baseline": args.baseline}
    bias = np.zeros(V)
    bias[0] = np.log((V - 1) / 10.0)  # p(END) = 1/11 per step: 10 words on average
    model = captioning.init_model(params, D, V, bias, rng)
    t0 = time.perf_counter()
    refs, ixtoword = references(rng, V)
    scorer = CiderD(refs, ixtoword, document_frequencies(dict(enumerate(refs))))
    build = time.perf_counter() - t0
    feats_all = np.maximum(rng.normal(size=(N_TRAIN, D)), 0).astype(np.float32)  # post-ReLU fc7
    cache = {}
    times = {k: [] for k in PARTS + ("total",)}
    lengths = []
    for i in range(args.repeats + 2):
        images = rng.integers(0, N_TRAIN, size=args.batch)
        t0 = time.perf_counter()
        cost, grads = scst.scst_cost(model, feats_all[images], images, scorer, params, rng)
        t1 = time.perf_counter()
        solvers.update(model, grads, cache, params)
        t2 = time.perf_counter()
        if i >= 2:  # warm-up
            for k in PARTS[:-1]:
                times[k].append(cost["seconds"][k])
            times["update"].append(t2 - t1)
            times["total"].append(t2 - t0)
            lengths.append(cost["mean_length"])
    total = np.median(times["total"])
    print("SCST step, Flickr8k config (D=%d, E=H=%d, V=%d), %d images x K=%d samples, "
          "baseline %s, float32, Adam; medians of %d steps" % (D, E, V, args.batch, args.samples,
                                                               args.baseline, args.repeats))
    print("reward tables of %d images x %d references built once in %.2fs"
          % (N_TRAIN, N_REFS, build))
    print("%-9s %9s %7s" % ("part", "ms", "share"))
    for k in PARTS:
        t = np.median(times[k])
        print("%-9s %9.1f %6.1f%%" % (k, 1e3 * t, 100 * t / total))
    print("%-9s %9.1f" % ("step", 1e3 * total))
    print("(greedy: the untrained model's greedy caption is END at once; see the docstring)")
    print("%.1f images/s, %.0f sampled captions/s (mean sampled length %.1f words); rewards: "
          "%.0f captions/s" % (args.batch / total, args.batch * args.samples / total,
                               np.mean(lengths), args.batch * (args.samples + 1)
                               / np.median(times["reward"])))


if __name__ == "__main__":
    main()
