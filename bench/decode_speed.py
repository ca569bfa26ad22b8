"""Caption decoding speed: images per second of greedy and beam-7 search on config A
of the training benchmark (D=4096, E=H=256, V=2538) for the LSTM, the m-RNN (multimodal
layer 512) and LRCN-2f, random weights, 1,000 images, in
the worst case where no caption ends before the 20-step limit (trained models end most
captions after about a dozen words, and a finished beam costs nothing more).

With attention among the generators: the attention generator at the same E = H = A = 256,
V = 2538 on R regions of D = 512 (--regions 20: boxes; 196: VGG-16's conv5_3 grid),
decoded 64 images at a time (each beam carries its copy of the regions).

With torch importable, the LSTM's rows also decode the same images in PyTorch (see
bench/torch_side.py: nn.LSTMCell, batched beams, top-k over beams x vocabulary,
inference_mode, the same batches of 256 images and thread count), in blocks of runs
alternating with the project's (bench/alternate.py), and print its images/s and the
ratio. --growth adds how the LSTM's
figure moves with the beam (1, 3, 7, 20) and the vocabulary (2.5k, 10k, 25k, beam 7).

Usage: python bench/decode_speed.py [--images N] [--repeats R] [--generators lstm,mrnn,lrcn,attention]
       [--regions R] [--growth]
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from neuraltalk.models import captioning  # noqa: E402
from neuraltalk.captions.decoding import decode_in_batches  # noqa: E402
import torch_side  # noqa: E402
from alternate import METHOD, alternate  # noqa: E402

ROUNDS = 2  # blocks of runs per side (see alternate.py)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--images", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=4, help="timed runs per row (default 4)")
    p.add_argument("--generators", default="lstm,mrnn,lrcn",
                   help="comma-separated: lstm, rnn, mrnn, lrcn (LRCN-2f), attention "
                        "(default lstm,mrnn,lrcn)")
    p.add_argument("--regions", type=int, default=20, help="attention: regions per image")
    p.add_argument("--growth", action="store_true",
                   help="also the LSTM at beam 1/3/7/20 and V 2.5k/10k/25k (beam 7)")
    args = p.parse_args()
    print("%d BLAS threads; the project and PyTorch timed %s; load average %s; PyTorch: %s" % (
        torch_side.blas_threads(), METHOD % ROUNDS, " ".join("%.1f" % x for x in os.getloadavg()),
        torch_side.torch.__version__ if torch_side.available() else "not installed"))
    for generator in args.generators.split(","):
        run(generator, args)
    if args.growth:
        print("growth (LSTM): images/s with the beam (V = 2538)")
        run("lstm", args, beams=(1, 3, 7, 20))
        for V in (10000, 25000):
            print("growth (LSTM): images/s with the vocabulary, V = %d" % V)
            run("lstm", args, beams=(7,), V=V)


def run(generator, args, beams=(1, 7), V=2538):
    rng = np.random.default_rng(0)
    D, E, H = (512 if generator == "attention" else 4096), 256, 256
    params = {"generator": generator, "image_encoding_size": E, "word_encoding_size": E,
              "hidden_size": H, "tanhC_version": 0, "rnn_relu_encoders": 0, "rnn_feed_once": 0,
              "mrnn_embedding_size": 128, "mrnn_multimodal_size": 512, "lrcn_variant": "2f",
              "attention_size": H, "att_gate": 1}
    bias = np.r_[-20.0, np.log(rng.dirichlet(np.ones(V - 1)) + 1e-9)]  # END never likely
    model = captioning.init_model(params, D, V, bias, rng)
    feats = np.maximum(rng.normal(size=(args.images, D)), 0).astype(np.float32)
    regions, batch_size = None, 256
    if generator == "attention":
        R = args.regions
        all_regions = np.maximum(rng.normal(size=(args.images, R, D)), 0).astype(np.float32)
        regions, batch_size = (lambda idx: (all_regions[idx], np.full(len(idx), R))), 64
        print("attention D=%d R=%d E=H=A=%d V=%d, %d images, float32"
              % (D, R, E, V, args.images))
    else:
        print("%s D=%d E=H=%d V=%d, %d images, float32" % (generator, D, E, V, args.images))
    ref = None
    if generator == "lstm" and torch_side.available():
        torch_side.setup()
        ref = torch_side.LSTMDecoder(D, E, H, V)
    for beam_size in beams:
        lengths = []

        def ours(i, beam_size=beam_size):
            beams = list(decode_in_batches(model, params, feats, beam_size, batch_size,
                                           regions=regions))
            lengths.append(np.mean([len(b[0][1]) for b in beams]))

        def theirs(i, beam_size=beam_size):  # the same images in PyTorch
            for start in range(0, args.images, batch_size):
                ref.decode(feats[start:start + batch_size], beam_size)

        sides = {"ours": ours} if ref is None else {"ours": ours, "torch": theirs}
        timed = alternate(sides, ROUNDS, args.repeats)
        times = [t for _, t in timed["ours"]]
        torch_times = [t for _, t in timed.get("torch", ())]
        t = np.median(times)
        versus = ""
        if torch_times:
            tt = np.median(torch_times)
            versus = "; PyTorch %7.0f images/s, ratio %.2fx" % (args.images / tt, tt / t)
        print("beam %2d: %7.0f images/s (median of %d: %.2fs for %d images; mean caption "
              "length %.1f tokens)%s" % (beam_size, args.images / t, len(times), t,
                                         args.images, np.mean(lengths), versus), flush=True)


if __name__ == "__main__":
    main()
