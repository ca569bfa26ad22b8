"""Sharded feature extraction on this machine: images/s of `python -m neuraltalk.features`
with EfficientNet-Lite0 on 1 and on 2 MPI ranks, one BLAS thread a rank, over the example
photos (../shared/fixtures/example_images) repeated. For bench/scaling.py
(`feature_rows()`); run alone: python bench/scaling_features.py [--copies N].

Two figures a rank count: the extraction alone (every rank extracts its share of the same
blocks of whole batches as the command; from a barrier after the CNN is loaded to the
last rank's end), with the CPU seconds it took an image summed over the ranks (on a
machine shared with other work the wall-clock speed-up understates what 2 idle cores
give; the CPU time an image shows the work does not grow with the ranks), and the whole
command end to end (start-up, loading the CNN, gathering on rank 0 and writing
vgg_feats.mat included). 3 copies of the 21 photos make 4 batches of 16: 2 a rank.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PHOTOS = os.path.join(CHECKOUT, "..", "shared", "fixtures", "example_images")
BATCH = 16

# one rank of the extraction-alone figure: its share (extract.batch_share), timed between
# barriers so that the slowest rank decides, as it does for the command
WORKER = """
import sys, time
sys.path.insert(0, %r)
from neuraltalk.cnn import extract
from neuraltalk.parallel import world
folder, batch = sys.argv[1], int(sys.argv[2])
ranks = world()
names = extract.list_images(folder, None, folder + "/tasks.txt")
start, stop = extract.batch_share(len(names), batch, ranks.rank, ranks.size)
extractor = extract.Extractor("efficientnet-lite0")
ranks.barrier()
t0, cpu0 = time.perf_counter(), time.process_time()
extract.run(extractor, [folder + "/" + n for n in names[start:stop]], batch, progress=False)
cpu = ranks.gather(time.process_time() - cpu0)
ranks.barrier()
if ranks.is_root:
    print("extracted %%d images in %%.3f s using %%.3f CPU s"
          %% (len(names), time.perf_counter() - t0, sum(cpu)))
""" % CHECKOUT


def environment():
    env = dict(os.environ, PYTHONPATH=CHECKOUT, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               MKL_NUM_THREADS="1", OMPI_ALLOW_RUN_AS_ROOT="1",
               OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_rmaps_base_oversubscribe="1",
               PRTE_MCA_rmaps_default_mapping_policy=":oversubscribe")
    return env


def photo_folder(copies):
    """A temporary folder of symbolic links: every example photo, `copies` times."""
    photos = sorted(n for n in os.listdir(PHOTOS) if n.lower().endswith((".jpg", ".png")))
    folder = tempfile.mkdtemp(prefix="scaling_features_")
    for k in range(copies):
        for name in photos:
            os.symlink(os.path.join(os.path.abspath(PHOTOS), name),
                       os.path.join(folder, "%02d_%s" % (k, name)))
    return folder, copies * len(photos)


def mpirun(n, argv):
    launcher = shutil.which("mpirun")
    t0 = time.perf_counter()
    done = subprocess.run([launcher, "-n", str(n)] + argv, env=environment(),
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError("mpirun -n %d %s failed:\n%s" % (n, " ".join(argv), done.stderr))
    return done.stdout, time.perf_counter() - t0


def feature_rows(copies=3, ranks=(1, 2), repeats=3):
    """Print the lines of features images/s with 1 and 2 ranks; return them and the CPU
    seconds an image of one rank (None when skipped)."""
    if shutil.which("mpirun") is None or not os.path.isdir(PHOTOS):
        line = "features: skipped (needs mpirun, the [mpi] extra, and %s)" % PHOTOS
        print(line)
        return [line], None
    folder, n_images = photo_folder(copies)
    lines, base, cpu_per_image = [], None, None
    try:
        for k in ranks:
            # the fastest of `repeats` runs: the one the machine's other work disturbed least
            runs = [mpirun(k, [sys.executable, "-c", WORKER, folder, str(BATCH)])[0].split()
                    for _ in range(repeats)]
            extract_seconds, cpu_seconds = min((float(r[-6]), float(r[-3])) for r in runs)
            _, wall = mpirun(k, [sys.executable, "-m", "neuraltalk.features", folder, "--cnn",
                                 "efficientnet-lite0", "--batch_size", str(BATCH)])
            rate, end_to_end = n_images / extract_seconds, n_images / wall
            base = base or (rate, end_to_end)
            cpu_per_image = cpu_per_image or cpu_seconds / n_images
            lines.append("features, EfficientNet-Lite0, %d images, batch %d, %d rank%s x 1 BLAS "
                         "thread: %5.2f images/s extracting (x%.2f; %.3f CPU s an image), "
                         "%5.2f images/s end to end (x%.2f, %.1f s)"
                         % (n_images, BATCH, k, "" if k == 1 else "s", rate, rate / base[0],
                            cpu_seconds / n_images, end_to_end, end_to_end / base[1], wall))
            print(lines[-1], flush=True)
    finally:
        shutil.rmtree(folder)
    return lines, cpu_per_image


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--copies", type=int, default=3, help="times each example photo is used")
    p.add_argument("--repeats", type=int, default=3,
                   help="extraction runs a rank count (the fastest is kept)")
    args = p.parse_args()
    feature_rows(args.copies, repeats=args.repeats)
