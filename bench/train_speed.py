"""Training speed of the caption generators: sentences per second of a full step
(forward, backward, solver update), float32, batch 100, mean sentence length 11.5 words.

Configurations: A) D=4096, E=H=256, V=2538 (Flickr8k defaults); B) D=4096, E=H=512,
V=10000 (COCO size); every generator (m-RNN with its 128-d first embedding and 512-d
multimodal layer, LRCN as its factored 2f variant). In blocks alternating with the
steps the benchmark times a float32 square matrix product (sgemm), so the machine's
matrix-multiply rate is measured under the same load as the steps; it prints the
fraction of that rate the training step reaches, counting the multiply-adds the step
needs (2 FLOPs each; see step_macs). All figures are medians. On a shared machine they are noisy: rerun on a quiet one.

With torch importable, the LSTM and RNN rows also time the same step in PyTorch (see
bench/torch_side.py: nn.LSTM on packed sequences, the same loss, RMSprop) on the same
batches with the same thread count, in blocks of steps alternating with the project's
(bench/alternate.py: step-by-step interleaving made PyTorch up to twice as slow), and
print its sentences/s and the ratio. --growth adds how the LSTM's figure moves with the batch
(25, 50, 100, 200, config A) and the vocabulary (2.5k, 10k, 25k at E = H = 256).
Usage: python bench/train_speed.py [--repeats N] [--configs A,B] [--generators lstm,rnn,mrnn,lrcn]
       [--growth]
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from neuraltalk.train import solvers  # noqa: E402
from neuraltalk.models import captioning  # noqa: E402
from neuraltalk.data.batches import Batch  # noqa: E402
import torch_side  # noqa: E402
from alternate import METHOD, alternate, timed_calls  # noqa: E402

CONFIGS = {"A": dict(D=4096, E=256, H=256, V=2538), "B": dict(D=4096, E=512, H=512, V=10000)}
# the attention generator (rows only for --generators attention): R regions of D = 512
# (R = 20: whole image + 19 boxes; R = 196: VGG-16's 14 x 14 conv5_3 grid), attention
# size A = H; A20/A196 at Flickr8k's sizes, B20/B196 at COCO's
ATTENTION_CONFIGS = {"A20": dict(D=512, R=20, E=256, H=256, V=2538),
                     "A196": dict(D=512, R=196, E=256, H=256, V=2538),
                     "B20": dict(D=512, R=20, E=512, H=512, V=10000),
                     "B196": dict(D=512, R=196, E=512, H=512, V=10000)}
BATCH = 100
ROUNDS = 3  # blocks of steps per side (see alternate.py)
MRNN_E1, MRNN_M = 128, 512  # the m-RNN's first embedding and multimodal layer (its defaults)


def sentence_lengths(rng, n):
    """Caption lengths like Flickr8k's (mean 11.5 words, sd ~3.8, 3 to 35)."""
    return np.clip(np.round(rng.gamma(9.0, 11.5 / 9.0, size=n)), 3, 35).astype(np.int32)


def make_batch(rng, B, D, V, R=None):
    lengths = sentence_lengths(rng, B)
    words = np.zeros((B, lengths.max()), np.int32)
    for b, n in enumerate(lengths):
        words[b, :n] = rng.integers(1, V, size=n)
    feats = np.maximum(rng.normal(size=(B, D)), 0).astype(np.float32)  # fc7 is post-ReLU
    if R is None:
        return Batch(feats, words, lengths, np.arange(B), np.arange(B))
    regions = np.maximum(rng.normal(size=(B, R, D)), 0).astype(np.float32)
    return Batch(feats, words, lengths, np.arange(B), np.arange(B), regions,
                 np.full(B, R))  # every image with all R regions: the worst case


def step_macs(generator, batch, D, E, H, V):
    """Multiply-adds a training step needs (and, on the packed layout, performs): no
    padding, the decoder on the N scored steps only. B sentences, N = sum(n + 1) steps."""
    B = len(batch.lengths)
    N = int((batch.lengths + 1).sum())
    decoder = 3 * N * H * V  # Y = H Wd, dWd, dH
    if generator == "attention":  # A = H; forward, weight gradient, input gradient each
        R = batch.regions.shape[1]
        A = H
        regions = 3 * B * R * D * A + 2 * 3 * B * D * H  # a Wa; h_0, c_0 from the mean
        scores = 3 * N * (H * A + R * A)  # h_{t-1} Wha; watt . tanh(...)
        context = 3 * N * R * D  # sum_i alpha_ti a_i, d alpha, d a
        lstm = 3 * N * (E + D + H) * 4 * H  # [E y, z, h] WLSTM
        deep = 3 * N * (H + D) * E  # h Lh + z Lz
        return 3 * N * E * V + regions + scores + context + lstm + deep
    elif generator == "lstm":
        image = 2 * B * D * E  # x_img = f We, dWe
        inputs = 3 * (B + N) * E * 4 * H  # [x_t] WLSTM, its dW, dX; image step included
        recurrent = 3 * N * H * 4 * H  # h_{t-1} WLSTM, dh, dW over the N steps with a past
    elif generator == "rnn":
        image = 2 * B * D * H
        inputs = 3 * N * E * H  # Ws[.] Wxh, dWxh, dXs
        recurrent = 3 * (N - B) * H * H  # steps 1..n only: h_{-1} = 0
    elif generator == "mrnn":  # decoder from the multimodal layer (M wide)
        decoder = 3 * N * MRNN_M * V
        image = 2 * B * D * MRNN_M  # I We once per sentence, dWe
        inputs = 3 * N * MRNN_E1 * E + 3 * N * (E + H) * MRNN_M  # w(t); w Vw + r Vr
        recurrent = 3 * (N - B) * H * H
    else:  # lrcn, 2f: bottom LSTM on words, top on [bottom h, x_img]
        image = 2 * B * D * E + 3 * B * E * 4 * H  # x_img, and its top projection per sentence
        inputs = 3 * N * E * 4 * H + 3 * N * H * 4 * H
        recurrent = 2 * 3 * (N - B) * H * 4 * H  # two LSTMs, h_{-1} = 0
    return decoder + image + inputs + recurrent


def measure(generator, cfg, repeats, sgemm_n=1536, batch_size=BATCH, with_torch=True):
    cfg = dict(cfg)
    R = cfg.pop("R", None)
    return _measure(generator, cfg, R, repeats, sgemm_n, batch_size, with_torch)


def _measure(generator, cfg, R, repeats, sgemm_n, batch_size, with_torch):
    """Median sentences/s and step FLOP rate, median sgemm rate (its blocks alternating
    with the steps'), mean length, and PyTorch's median sentences/s on the same batches
    (None without torch)."""
    rng = np.random.default_rng(0)
    params = {"generator": generator, "image_encoding_size": cfg["E"] if generator == "lstm"
              else cfg["H"], "word_encoding_size": cfg["E"], "hidden_size": cfg["H"],
              "tanhC_version": 0, "rnn_relu_encoders": 0, "rnn_feed_once": 0,
              "attention_size": cfg["H"], "att_gate": 1, "att_lambda": 1.0,
              "mrnn_embedding_size": MRNN_E1, "mrnn_multimodal_size": MRNN_M, "lrcn_variant": "2f",
              "drop_prob_encoder": 0.5, "drop_prob_decoder": 0.5, "regc": 1e-8,
              "solver": "rmsprop", "learning_rate": 1e-3, "decay_rate": 0.999,
              "smooth_eps": 1e-8, "grad_clip": 5}
    model = captioning.init_model(params, cfg["D"], cfg["V"], np.zeros(cfg["V"]), rng)
    cache = {}
    a = rng.random((sgemm_n, sgemm_n), dtype=np.float32)
    b = rng.random((sgemm_n, sgemm_n), dtype=np.float32)
    batches = [make_batch(rng, batch_size, cfg["D"], cfg["V"], R) for _ in range(5)]
    ref = None
    if with_torch and torch_side.available() and generator in ("lstm", "rnn"):
        torch_side.setup()
        ref = torch_side.CaptionTrainer(generator, cfg["D"], cfg["E"], cfg["H"], cfg["V"])
    n_batches = len(batches)

    def ours(i):
        _, grads = captioning.batch_cost(model, batches[i % n_batches], params, rng)
        solvers.update(model, grads, cache, params)

    sides = {"ours": ours, "sgemm": lambda i: a @ b}
    if ref is not None:  # the same batches in PyTorch
        sides["torch"] = lambda i: ref.step(batches[i % n_batches])
    timed = alternate(sides, ROUNDS, repeats)
    times = [t for _, t in timed["ours"]]
    flops = [2 * step_macs(generator, batches[i % n_batches], **cfg) / t
             for i, t in timed["ours"]]
    sgemm = [2 * sgemm_n ** 3 / t for _, t in timed["sgemm"]]
    torch_times = [t for _, t in timed.get("torch", ())]
    return (batch_size / np.median(times), np.median(times), np.median(flops), np.median(sgemm),
            np.mean([bt.lengths.mean() for bt in batches]),
            batch_size / np.median(torch_times) if torch_times else None)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--repeats", type=int, default=9, help="timed steps per row (default 9)")
    p.add_argument("--configs", default="A,B", help="comma-separated: A, B (default both); "
                   "for attention A20, A196, B20, B196 (default all four)")
    p.add_argument("--generators", default="lstm,rnn,mrnn,lrcn",
                   help="comma-separated: lstm, rnn, mrnn, lrcn (LRCN-2f), attention "
                        "(default lstm,rnn,mrnn,lrcn)")
    p.add_argument("--growth", action="store_true",
                   help="also the LSTM's figure at batch 25/50/100/200 and V 2.5k/10k/25k")
    args = p.parse_args()
    print("batch %d, float32, rmsprop, dropout 0.5; medians of %d steps; the project, a "
          "1536^3 sgemm and PyTorch timed %s; %d BLAS threads; load average %s; PyTorch: %s" % (
              BATCH, timed_calls(ROUNDS, args.repeats), METHOD % ROUNDS, torch_side.blas_threads(),
              " ".join("%.1f" % x for x in os.getloadavg()),
              torch_side.torch.__version__ if torch_side.available() else "not installed"))
    print(HEADER)
    generators = args.generators.split(",")
    rows = [(name, g) for name in args.configs.split(",") if name in CONFIGS
            for g in generators if g != "attention"]
    if "attention" in generators:
        names = [n for n in args.configs.split(",") if n in ATTENTION_CONFIGS]
        rows += [(n, "attention") for n in (names or ATTENTION_CONFIGS)]
    for name, generator in rows:
        cfg = (ATTENTION_CONFIGS if generator == "attention" else CONFIGS)[name]
        print(row(name, generator, *measure(generator, cfg, args.repeats)), flush=True)
    if args.growth:
        print("growth (LSTM): sentences/s with the batch (config A) and the vocabulary "
              "(E = H = 256)")
        print(HEADER)
        for B in (25, 50, 100, 200):
            print(row("A b%d" % B, "lstm", *measure("lstm", CONFIGS["A"], args.repeats,
                                                     batch_size=B)), flush=True)
        for V in (2538, 10000, 25000):
            cfg = dict(CONFIGS["A"], V=V)
            print(row("V%.1fk" % (V / 1e3), "lstm", *measure("lstm", cfg, args.repeats)),
                  flush=True)


HEADER = "%-7s %-5s %12s %9s %10s %13s %9s %7s %10s %6s" % (
    "config", "gen", "sentences/s", "step ms", "GFLOP/s", "sgemm GFLOP/s", "of sgemm",
    "length", "PyTorch/s", "ratio")


def row(name, generator, rate, t, flops, peak, mean_len, torch_rate):
    ref = ("%10.0f %5.2fx" % (torch_rate, rate / torch_rate) if torch_rate
           else "%10s %6s" % ("-", "-"))
    return "%-7s %-5s %12.0f %9.1f %10.1f %13.1f %9.2f %7.2f %s" % (
        name, generator[:5], rate, 1e3 * t, flops / 1e9, peak / 1e9, flops / peak, mean_len, ref)


if __name__ == "__main__":
    main()
