"""Peak resident memory of COCO-sized features (123,287 x 4096 float32, 2.0 GB) loaded
through neuraltalk.data.feature_files.load_features, from .npy, MATLAB v7.3 .mat and (with
--v5) MATLAB v5 .mat; plus, for comparison, a plain np.load(mmap_mode='r') of the .npy.

Makes the files in a temporary folder (2 GB each; free disk is checked first), each in
its own process so that this one stays small, then in a fresh process per format:
opens the file, reads 50 random training batches of 100 rows, and streams through every
row in chunks of 4,096 as an evaluation would. Prints each process's peak resident memory
(ru_maxrss, and VmHWM from /proc which is the same figure for an exec'd process) and the
time, then removes the files. The machine is shared: times are noisy, memory is not.

    python bench/feature_memory.py [--rows 123287] [--width 4096] [--v5]
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PEAK = r"""
import resource
def peak_mb():
    hwm = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")]
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, hwm[0] / 1024.0
"""

# writes rows of a deterministic pattern chunk by chunk (never the whole array at once,
# except for v5, whose writer needs it)
MAKE = r"""
import sys
import numpy as np
kind, path, n, d = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rng = np.random.default_rng(0)
def chunks(size=8192):
    for start in range(0, n, size):
        yield start, rng.random((min(size, n - start), d), dtype=np.float32)
if kind == "npy":
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<f4", "fortran_order": False, "shape": (n, d)})
        for _, chunk in chunks():
            f.write(chunk.tobytes())
elif kind == "v73":
    import h5py
    with h5py.File(path, "w", userblock_size=512) as f:
        dset = f.create_dataset("feats", shape=(n, d), dtype=np.float32)
        for start, chunk in chunks():
            dset[start:start + len(chunk)] = chunk
    with open(path, "r+b") as f:
        f.write(b"MATLAB 7.3 MAT-file, written by bench/feature_memory.py")
else:
    from neuraltalk.data.feature_files import save_features_mat
    feats = np.empty((n, d), np.float32)
    for start, chunk in chunks():
        feats[start:start + len(chunk)] = chunk
    save_features_mat(path, feats)
"""

READ = PEAK + r"""
import sys, time
import numpy as np
t0 = time.time()
if sys.argv[2] == "mmap":
    rows = np.load(sys.argv[1], mmap_mode="r")
else:
    from neuraltalk.data.feature_files import load_features
    rows = load_features(sys.argv[1])
n = rows.shape[0]
rng = np.random.default_rng(0)
t_open = time.time() - t0
for _ in range(50):
    batch = np.asarray(rows[rng.integers(0, n, size=100)], dtype=np.float32)
t_batches = time.time() - t0 - t_open
total = 0.0
for start in range(0, n, 4096):
    total += float(np.asarray(rows[start:start + 4096], dtype=np.float32).sum(dtype=np.float64))
t_all = time.time() - t0
maxrss, hwm = peak_mb()
print("%.0f %.0f %.2f %.2f %.2f" % (maxrss, hwm, t_open, t_batches, t_all - t_open - t_batches))
"""


def run(code, *args):
    r = subprocess.run([sys.executable, "-c", code] + [str(a) for a in args],
                       capture_output=True, text=True, cwd=ROOT)
    if r.returncode:
        sys.exit("a child process failed:\n" + r.stderr)
    return r.stdout.split()


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=123287)
    p.add_argument("--width", type=int, default=4096)
    p.add_argument("--v5", action="store_true", help="also measure a MATLAB v5 .mat")
    p.add_argument("--tmp", default=None, help="folder for the temporary files")
    args = p.parse_args()
    kinds = [("npy", "vgg_feats.npy"), ("v73", "vgg_feats_v73.mat")]
    if args.v5:
        kinds.append(("v5", "vgg_feats_v5.mat"))
    size = args.rows * args.width * 4
    folder = tempfile.mkdtemp(prefix="feature-memory-", dir=args.tmp)
    try:
        free = shutil.disk_usage(folder).free
        if free < len(kinds) * size * 1.1 + 1e9:
            sys.exit("need %.1f GB free in %s, have %.1f GB"
                     % (len(kinds) * size * 1.1 / 1e9 + 1, folder, free / 1e9))
        print("features %d x %d float32 = %.2f GB (%.0f MB); %.1f GB free in %s"
              % (args.rows, args.width, size / 1e9, size / 2 ** 20, free / 1e9, folder))
        paths = {}
        for kind, name in kinds:
            t0 = time.time()
            paths[kind] = os.path.join(folder, name)
            run(MAKE, kind, paths[kind], args.rows, args.width)
            print("made %-18s %.2f GB in %.0fs" % (name, os.path.getsize(paths[kind]) / 1e9,
                                                    time.time() - t0))
        base = run(PEAK + "import numpy, h5py, scipy.io, neuraltalk.data.feature_files\n"
                   "print('%.0f %.0f' % peak_mb())")
        print("baseline: python + numpy + h5py + scipy imported: ru_maxrss %s MB" % base[0])
        print("%-34s %10s %8s %8s %9s %9s" % ("format", "ru_maxrss", "VmHWM", "open s",
                                              "50 batch s", "full pass s"))
        runs = [("load_features .npy", paths["npy"], "load"),
                ("np.load(mmap_mode='r') .npy", paths["npy"], "mmap"),
                ("load_features v7.3 .mat", paths["v73"], "load")]
        if args.v5:
            runs.append(("load_features v5 .mat", paths["v5"], "load"))
        for label, path, how in runs:
            maxrss, hwm, t_open, t_batches, t_pass = run(READ, path, how)
            print("%-34s %7s MB %5s MB %8s %9s %9s" % (label, maxrss, hwm, t_open, t_batches,
                                                      t_pass))
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
