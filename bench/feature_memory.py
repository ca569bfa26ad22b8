"""Peak resident memory of COCO-sized features (123,287 x 4096 float32, 2 GB) loaded
through neuraltalk.feature_files, from .npy and from a MATLAB v7.3 .mat.

Makes both files in a temporary folder (4 GB of disk), then in a fresh process per
format: opens the file, reads 50 random training batches of 100 rows, and streams
through every row in chunks of 4,096 as an evaluation would. Prints the peak resident
memory of each process (VmHWM: unlike ru_maxrss it is not inherited across exec). Usage: python bench/feature_memory.py [--rows N]
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

PEAK = r"""
def peak_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
"""

CHILD = PEAK + r"""
import sys, time
import numpy as np
from neuraltalk.feature_files import load_features
t0 = time.time()
rows = load_features(sys.argv[1])
rng = np.random.default_rng(0)
for _ in range(50):
    rows[rng.integers(0, rows.shape[0], size=100)]
total = 0.0
for start in range(0, rows.shape[0], 4096):
    total += float(rows[np.arange(start, min(start + 4096, rows.shape[0]))].sum())
print("%.0f %.1f" % (peak_mb(), time.time() - t0))
"""


def make_files(folder, n, d):
    import h5py
    npy = os.path.join(folder, "vgg_feats.npy")
    mat = os.path.join(folder, "vgg_feats.mat")
    out = np.lib.format.open_memmap(npy, mode="w+", dtype=np.float32, shape=(n, d))
    with h5py.File(mat, "w", userblock_size=512) as f:
        dset = f.create_dataset("feats", shape=(n, d), dtype=np.float32)
        rng = np.random.default_rng(0)
        for start in range(0, n, 8192):
            chunk = rng.random((min(8192, n - start), d), dtype=np.float32)
            out[start:start + len(chunk)] = chunk
            dset[start:start + len(chunk)] = chunk
    out.flush()
    del out
    with open(mat, "r+b") as f:
        f.write(b"MATLAB 7.3 MAT-file, written by bench/feature_memory.py")
    return npy, mat


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rows", type=int, default=123287)
    p.add_argument("--width", type=int, default=4096)
    args = p.parse_args()
    need = 2 * args.rows * args.width * 4
    folder = tempfile.mkdtemp(prefix="feature-memory-")
    try:
        free = shutil.disk_usage(folder).free
        if free < need * 1.2:
            sys.exit("need %.1f GB free in %s, have %.1f GB" % (need / 1e9, folder, free / 1e9))
        t0 = time.time()
        npy, mat = make_files(folder, args.rows, args.width)
        print("made %d x %d float32 features (%.2f GB each) in %.0fs"
              % (args.rows, args.width, need / 2e9, time.time() - t0))
        base = subprocess.run([sys.executable, "-c", PEAK + "import numpy, h5py, scipy.io\n"
                               "print(peak_mb())"], capture_output=True, text=True, check=True)
        print("baseline (python + numpy + h5py + scipy imported): %.0f MB" % float(base.stdout))
        for label, path in ((".npy", npy), ("v7.3 .mat", mat)):
            r = subprocess.run([sys.executable, "-c", CHILD, path], capture_output=True,
                               text=True, check=True,
                               cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
            rss_mb, seconds = r.stdout.split()
            print("%-10s peak resident memory %6.0f MB (file %.2f GB), 50 batches + full "
                  "pass in %ss" % (label, float(rss_mb), os.path.getsize(path) / 1e9,
                                   seconds))
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
