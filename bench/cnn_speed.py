"""CNN speed: images per second of EfficientNet-Lite0 (its ImageNet weights) and VGG-16
to fc7 (random weights of the real shapes) at batch 1, 4 and 16, on 224 x 224 inputs,
preprocessing excluded, and how the time per image moves with the batch.

When torch is importable (a benchmark-only dependency, never one of the package), the
same networks with the same weights are built from torch.nn (float32, the same thread
count, inference_mode, channels_last or contiguous, whichever is faster on the first
run), checked to give the same outputs, and timed in the same process, in blocks of
runs alternating with the NumPy blocks (bench/alternate.py; medians), so that a loaded
machine slows both alike. Also prints EfficientNet-Lite0's top-5 ImageNet classes for
each example photo when ../shared/fixtures/example_images is there.

Run by run interleaving made the side that ran second pay for the other's threads:
VGG-16 at batch 16 took 148-163 ms an image alone and 170-197 right after a torch run;
torch's EfficientNet-Lite0 at batch 1, 11 ms alone, took 25 right after a NumPy run.

Usage: python bench/cnn_speed.py [--repeats N] [--threads T] [--batches 1,4,16]
                                 [--skip_vgg] [--skip_efficientnet] [--no_torch]
"""
import argparse
import os
import sys
import time

p = argparse.ArgumentParser(description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("--repeats", type=int, default=4, help="timed runs per row (default 4)")
p.add_argument("--threads", type=int, default=2,
               help="BLAS threads of NumPy and torch.set_num_threads (default 2)")
p.add_argument("--batches", default="1,4,16")
p.add_argument("--skip_vgg", action="store_true")
p.add_argument("--skip_efficientnet", action="store_true")
p.add_argument("--no_torch", action="store_true", help="the NumPy figures alone")
ARGS = p.parse_args() if __name__ == "__main__" else None
if ARGS is not None:  # OpenBLAS reads its thread count when NumPy is first imported
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from neuraltalk.cnn import efficientnet, vgg16  # noqa: E402
from alternate import METHOD, alternate, timed_calls  # noqa: E402

ROUNDS = 2  # blocks of runs per side (see alternate.py)

PHOTOS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared",
                      "fixtures", "example_images")


def random_vgg(rng):
    net = {}
    cin = 3
    for b, n, c in vgg16.BLOCKS:
        for i in range(n):
            net["block%d_conv%d" % (b, i + 1)] = (
                rng.normal(0, np.sqrt(2 / (9 * cin)), (3, 3, cin, c)).astype(np.float32),
                rng.normal(0, 0.01, c).astype(np.float32))
            cin = c
    net["fc1"] = (rng.normal(0, 0.01, (25088, 4096)).astype(np.float32), np.zeros(4096, np.float32))
    net["fc2"] = (rng.normal(0, 0.01, (4096, 4096)).astype(np.float32), np.zeros(4096, np.float32))
    return net


# ---- the same networks in torch.nn, from the NumPy weights (conv (kh, kw, in, out)) ----

def torch_modules():
    import torch
    import torch.nn.functional as F
    from torch import nn

    def conv(w, b, stride=1, padding=0, groups=1):
        w = np.asarray(w)
        m = nn.Conv2d(w.shape[2] * groups, w.shape[3], w.shape[:2], stride=stride,
                      padding=padding, groups=groups, bias=b is not None)
        with torch.no_grad():
            m.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1))))
            if b is not None:
                m.bias.copy_(torch.from_numpy(np.asarray(b)))
        return m

    def linear(w, b):
        m = nn.Linear(*w.shape)
        with torch.no_grad():
            m.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.T)))
            m.bias.copy_(torch.from_numpy(b))
        return m

    class VGG(nn.Module):
        def __init__(self, net):
            super().__init__()
            self.convs = nn.ModuleList(conv(*net[name], padding=1) for name in vgg16.CONV_LAYERS)
            self.fc1, self.fc2 = linear(*net["fc1"]), linear(*net["fc2"])
            last = {"block%d_conv%d" % (b, n) for b, n, _ in vgg16.BLOCKS}
            self.pool_after = {i for i, name in enumerate(vgg16.CONV_LAYERS) if name in last}

        def forward(self, x):
            for i, c in enumerate(self.convs):
                x = F.relu(c(x), inplace=True)
                if i in self.pool_after:
                    x = F.max_pool2d(x, 2)
            x = x.permute(0, 2, 3, 1).reshape(len(x), -1)  # fc1's rows: (7, 7, 512) channels last
            return F.relu(self.fc2(F.relu(self.fc1(x))))

    class TFSamePad(nn.Module):  # TensorFlow's 'same': the extra pixel after
        def __init__(self, k, stride):
            super().__init__()
            self.k, self.stride = k, stride

        def forward(self, x):
            pads = []
            for size in (x.shape[3], x.shape[2]):
                pads += list(efficientnet.layers.pad_amounts(size, self.k, self.stride, "same"))
            return F.pad(x, pads)

    def same_conv(w, b, stride, groups=1):
        k = w.shape[0]
        if stride == 1:
            return conv(w, b, padding=k // 2, groups=groups)
        return nn.Sequential(TFSamePad(k, stride), conv(w, b, stride=stride, groups=groups))

    class Block(nn.Module):
        def __init__(self, block):
            super().__init__()
            self.expand = None if block["expand"] is None else conv(*block["expand"])
            w, b = block["depthwise"]
            self.depthwise = same_conv(w, b, block["stride"], groups=w.shape[3])
            self.project = conv(*block["project"])
            self.stride = block["stride"]

        def forward(self, x):
            inp = x
            if self.expand is not None:
                x = F.relu6(self.expand(x))
            x = self.project(F.relu6(self.depthwise(x)))
            if self.stride == 1 and inp.shape == x.shape:
                x = x + inp
            return x

    class EfficientNet(nn.Module):
        def __init__(self, net):
            super().__init__()
            self.stem = same_conv(*net["stem"], stride=2)
            self.blocks = nn.Sequential(*[Block(b) for b in net["blocks"]])
            self.head = conv(*net["head"])
            self.fc = linear(*net["fc"])

        def forward(self, x):
            x = F.relu6(self.head(self.blocks(F.relu6(self.stem(x)))))
            features = x.mean((2, 3))
            return features, self.fc(features)

    return torch, VGG, EfficientNet


def timed(f):
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


def first(y):
    return y[0] if isinstance(y, tuple) else y


def compare(name, forward, net, torch_net, torch, batches, repeats):
    """Rows (batch, numpy img/s, torch img/s or None), timed in alternating blocks."""
    rows = []
    for batch in batches:
        x = np.random.default_rng(batch).normal(size=(batch, 224, 224, 3)).astype(np.float32)
        ours = first(forward(net, x))
        if torch_net is None:
            run_torch, fmt = None, ""
        else:
            with torch.inference_mode():
                xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
                theirs = first(torch_net(xt)).numpy()
                err = float(np.abs(theirs - ours).max() / max(np.abs(ours).max(), 1e-30))
                # the faster memory format: the best of 3 timed runs of each after a warm-up
                best = {}
                for fmt, memory_format in (("contiguous", torch.contiguous_format),
                                           ("channels_last", torch.channels_last)):
                    torch_net.to(memory_format=memory_format)
                    xx = xt.contiguous(memory_format=memory_format)
                    torch_net(xx)
                    best[fmt] = min(timed(lambda: torch_net(xx)) for _ in range(3))
                fmt = min(best, key=best.get)
                memory_format = torch.contiguous_format if fmt == "contiguous" else torch.channels_last
                torch_net.to(memory_format=memory_format)
                xx = xt.contiguous(memory_format=memory_format)

                def run_torch():
                    with torch.inference_mode():
                        torch_net(xx)
            fmt = "%s, max rel. difference %.1e" % (fmt, err)
        sides = {"ours": lambda i: forward(net, x)}
        if run_torch is not None:
            sides["torch"] = lambda i: run_torch()
        timed_runs = alternate(sides, ROUNDS, repeats)
        t_ours = [t for _, t in timed_runs["ours"]]
        t_torch = [t for _, t in timed_runs.get("torch", ())]
        r_ours = batch / np.median(t_ours)
        r_torch = batch / np.median(t_torch) if t_torch else None
        rows.append((batch, r_ours, r_torch))
        if r_torch is None:
            print("%-18s batch %2d: %7.2f images/s (median of %d)" % (name, batch, r_ours,
                                                                       len(t_ours)), flush=True)
        else:
            print("%-18s batch %2d: %7.2f images/s   torch %7.2f images/s (%s)   ratio %.2fx"
                  % (name, batch, r_ours, r_torch, fmt, r_ours / r_torch), flush=True)
    base = rows[0]
    print("  growth (ms per image; batch %d = 1.00):" % base[0])
    for batch, r_ours, r_torch in rows:
        line = "    batch %2d: %7.1f ms/image (%.2f)" % (batch, 1e3 / r_ours, base[1] / r_ours)
        if r_torch is not None:
            line += "   torch %7.1f ms/image (%.2f)" % (1e3 / r_torch, base[2] / r_torch)
        print(line)
    return rows


def main(args):
    batches = [int(b) for b in args.batches.split(",")]
    torch = VGG = EfficientNet = None
    if not args.no_torch:
        try:
            torch, VGG, EfficientNet = torch_modules()
            torch.set_num_threads(args.threads)
        except ImportError:
            print("torch is not importable: the NumPy figures alone")
    print("threads %d, %d timed runs each, %s (load average %s)"
          % (args.threads, timed_calls(ROUNDS, args.repeats),
             ("NumPy and torch: " + METHOD % ROUNDS) if torch else "NumPy",
             " ".join(open("/proc/loadavg").read().split()[:3])))
    net = efficientnet.load()
    if not args.skip_efficientnet:
        compare("EfficientNet-Lite0", efficientnet.forward, net,
                EfficientNet(net).eval() if torch else None, torch, batches, args.repeats)
    if not args.skip_vgg:
        vgg = random_vgg(np.random.default_rng(0))
        compare("VGG-16 to fc7", vgg16.forward, vgg, VGG(vgg).eval() if torch else None, torch,
                batches, args.repeats)
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
    main(ARGS)
