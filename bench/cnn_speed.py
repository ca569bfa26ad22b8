"""CNN speed: images per second of EfficientNet-Lite0 (its ImageNet weights) and VGG-16
to fc7 (random weights of the real shapes) at batch 1 and 16, on 224 x 224 inputs,
preprocessing excluded. Also prints EfficientNet-Lite0's top-5 ImageNet classes for each
example photo when ../shared/fixtures/example_images is there.

Usage: python bench/cnn_speed.py [--repeats N] [--skip_vgg]
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from neuraltalk.cnn import efficientnet, vgg16  # noqa: E402

PHOTOS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared",
                      "fixtures", "example_images")


def rate(forward, net, batch, repeats):
    x = np.random.default_rng(0).normal(size=(batch, 224, 224, 3)).astype(np.float32)
    forward(net, x)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        forward(net, x)
        times.append(time.perf_counter() - t0)
    return batch / np.median(times)


def random_vgg(rng):
    net = {}
    cin = 3
    for b, n, c in vgg16.BLOCKS:
        for i in range(n):
            net["block%d_conv%d" % (b, i + 1)] = (
                rng.normal(0, np.sqrt(2 / (9 * cin)), (3, 3, cin, c)).astype(np.float32),
                np.zeros(c, np.float32))
            cin = c
    net["fc1"] = (rng.normal(0, 0.01, (25088, 4096)).astype(np.float32), np.zeros(4096, np.float32))
    net["fc2"] = (rng.normal(0, 0.01, (4096, 4096)).astype(np.float32), np.zeros(4096, np.float32))
    return net


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--skip_vgg", action="store_true")
    args = p.parse_args()
    net = efficientnet.load()
    for batch in (1, 16):
        print("EfficientNet-Lite0 batch %2d: %6.1f images/s (median of %d)"
              % (batch, rate(efficientnet.forward, net, batch, args.repeats), args.repeats))
    if not args.skip_vgg:
        vgg = random_vgg(np.random.default_rng(0))
        for batch in (1, 16):
            print("VGG-16 to fc7     batch %2d: %6.1f images/s (median of %d)"
                  % (batch, rate(vgg16.forward, vgg, batch, args.repeats), args.repeats))
    if os.path.isdir(PHOTOS):
        from neuraltalk.cnn.images import open_rgb
        names = sorted(n for n in os.listdir(PHOTOS) if n.lower().endswith((".jpg", ".png")))
        x = efficientnet.preprocess([open_rgb(os.path.join(PHOTOS, n)) for n in names])
        _, logits = efficientnet.forward(net, x)
        e = np.exp(logits - logits.max(1, keepdims=True))
        probs = e / e.sum(1, keepdims=True)
        print("EfficientNet-Lite0 top-5 ImageNet classes (index: probability):")
        for name, row in zip(names, probs):
            top = np.argsort(-row)[:5]
            print("  %-12s %s" % (name, "  ".join("%d: %.2f" % (i, row[i]) for i in top)))


if __name__ == "__main__":
    main()
