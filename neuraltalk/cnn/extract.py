"""CNN features for a folder of images, with the NumPy CNN.

    python -m neuraltalk.features DIR --cnn efficientnet-lite0          # 1280-d, weights included
    python -m neuraltalk.features DIR --cnn vgg16 --weights vgg16.h5    # 4096-d fc7, as NeuralTalk

Writes into DIR NeuralTalk's `tasks.txt` (when absent: every image in DIR, sorted) and
`vgg_feats.mat` (D x N, in tasks.txt order), plus `features.json` naming the CNN.
Unreadable images are skipped with a warning and left out of tasks.txt; when none can be
read, or --regions is wrong, nothing is written.

When DIR holds a `dataset.json` (Karpathy's format), the features follow its imgid
order instead, so `python driver.py --dataset DIR` trains on the user's own photos.
`--regions BOXES.json` ({"image file": [[x0, y0, x1, y1], ...]}) also writes the
alignment model's `regions.h5`: the whole image plus a crop of each box.
`--regions multicrop` needs no boxes: the whole image plus fixed crops of every image
(at half and at three quarters of its width and height: the four corners and the
centre), each through the same CNN, so regions.h5 can be made from plain photos.
`--grid` writes instead the last convolutional map as `regions.h5`, one region per cell
(boxes = the cells, in the image's pixels), the annotation vectors of Show, Attend and
Tell (`--generator attention`): VGG-16's conv5_3 (14 x 14 x 512), EfficientNet-Lite0's
final map (7 x 7 x 1280). The whole-image features are written as without --grid.

On several machines: `mpirun -n K python -m neuraltalk.features DIR ...` splits the images
across the K ranks in contiguous blocks of whole batches; rank 0 gathers the features in
order and writes the same files, byte for byte, as one process. Without MPI between the
machines, `--shard I/K` extracts part I of K as a job of its own (into
DIR/feature_parts/part-I-of-K.npz) and `--merge_shards K` writes the folder's files from
the K parts, again the same bytes as one process.
"""
import json
import os
import sys
import time
from collections import namedtuple

import numpy as np

from neuraltalk.errors import NeuralTalkError

CNNS = ("efficientnet-lite0", "vgg16", "shapes-extractor")
DEFAULT_CNN = CNNS[0]
PROGRESS_SECONDS = 10  # between the progress lines of a rank of an MPI job
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


class Extractor:
    """A loaded CNN: `features(list of PIL images) -> (N, D) float32`."""

    def __init__(self, cnn, weights=None):
        if cnn == "efficientnet-lite0":
            from neuraltalk.cnn import efficientnet as module
            self.net = module.load(weights)
        elif cnn == "vgg16":
            from neuraltalk.cnn import vgg16 as module
            self.net = module.load(weights)
        elif cnn == "shapes-extractor":  # the demo dataset's own feature extractor
            from neuraltalk.demo import extractor as module
            self.net = None
        else:
            raise NeuralTalkError("unknown --cnn %r: use %s" % (cnn, " or ".join(CNNS)))
        self.module = module
        self.width = module.FEATURE_WIDTH

    def features(self, images):
        out = self.module.forward(self.net, self.module.preprocess(images))
        return (out[0] if isinstance(out, tuple) else out).astype(np.float32)

    def features_and_grid(self, images):
        """(features (N, D), the last convolutional map as cells (N, g*g, C), boxes of the
        cells (N, g*g, 4) in each image's pixels): one forward pass for both."""
        if not hasattr(self.module, "feature_map"):
            raise NeuralTalkError("--grid needs a convolutional map: use --cnn vgg16 or "
                                  "efficientnet-lite0")
        fmap = self.module.feature_map(self.net, self.module.preprocess(images))
        out = self.module.from_map(self.net, fmap)
        feats = (out[0] if isinstance(out, tuple) else out).astype(np.float32)
        n, gh, gw, c = fmap.shape
        boxes = np.stack([grid_boxes(self.module.input_box(img.size), gh, gw) for img in images])
        return feats, fmap.reshape(n, gh * gw, c).astype(np.float32), boxes


def grid_boxes(box, gh, gw):
    """(gh * gw, 4) int boxes of the cells of a gh x gw grid over `box` [x0, y0, x1, y1],
    row by row as the map's cells are flattened."""
    x0, y0, x1, y1 = box
    xs = np.round(x0 + (x1 - x0) * np.arange(gw + 1) / gw).astype(np.int64)
    ys = np.round(y0 + (y1 - y0) * np.arange(gh + 1) / gh).astype(np.int64)
    r, c = np.divmod(np.arange(gh * gw), gw)
    return np.stack([xs[c], ys[r], xs[c + 1], ys[r + 1]], 1).astype(np.int32)


def extract_features(image_paths, cnn, weights=None, batch_size=16, progress=True):
    """(N, D) float32 features of the images at `image_paths` (all must be readable)."""
    check_batch_size(batch_size)
    extractor = Extractor(cnn, weights)
    feats, bad = run(extractor, image_paths, batch_size, progress)
    if bad:
        raise NeuralTalkError("cannot read image(s): %s" % ", ".join(bad[:5]))
    return feats


def check_batch_size(batch_size):
    if batch_size < 1:
        raise NeuralTalkError("--batch_size must be at least 1, got %d" % batch_size)


def run(extractor, paths, batch_size=16, progress=True, grid=False, prefix=""):
    """Features of every readable image, and the paths that could not be read; with grid,
    (features, grid cells, cell boxes) in place of the features. With a `prefix` (a rank
    of an MPI job), progress is a prefixed line every PROGRESS_SECONDS, as the ranks'
    outputs interleave and a carriage return would overwrite another rank's line."""
    from neuraltalk.cnn.images import open_rgb
    check_batch_size(batch_size)
    out, bad = [], []
    t0 = last = time.time()
    done = 0
    for start in range(0, len(paths), batch_size):
        images = []
        for path in paths[start:start + batch_size]:
            try:
                images.append(open_rgb(path))
            except NeuralTalkError as e:
                print("%swarning: %s; skipping it" % (prefix, e), file=sys.stderr)
                bad.append(path)
        if images:
            out.append(extractor.features_and_grid(images) if grid
                       else extractor.features(images))
        done += len(images)
        if progress:
            now = time.time()
            line = "%d/%d images, %.1f images/s" % (done, len(paths), done / max(1e-9, now - t0))
            if not prefix:
                print("\r" + line, end="", flush=True)
            elif now - last >= PROGRESS_SECONDS or start + batch_size >= len(paths):
                print(prefix + line, flush=True)
                last = now
    if progress and not prefix:
        print()
    if grid:
        if not out:
            return (np.zeros((0, extractor.width), np.float32), None, None), bad
        return tuple(np.concatenate(part) for part in zip(*out)), bad
    feats = np.concatenate(out) if out else np.zeros((0, extractor.width), np.float32)
    return feats, bad


def save_feature_file(folder, feats):
    """vgg_feats.mat (D x N, MATLAB v5) or, above v5's 2 GB limit, vgg_feats.npy."""
    from neuraltalk.atomic import atomic_write
    from neuraltalk.data.feature_files import save_features_mat
    if feats.nbytes >= 2 ** 31:
        path = os.path.join(folder, "vgg_feats.npy")
        atomic_write(path, lambda f: np.save(f, feats))
    else:
        path = os.path.join(folder, "vgg_feats.mat")
        save_features_mat(path, feats)
    return path


def read_boxes(path, names):
    """--regions: {image file name: [[x0, y0, x1, y1], ...]} (pixels), checked against the
    image names before anything is computed or written."""
    from neuraltalk.data.dataset import read_json
    boxes = read_json(path)
    if not isinstance(boxes, dict):
        raise NeuralTalkError('%s: expected an object {"image file": [[x0, y0, x1, y1], ...]}, '
                              'got a JSON %s' % (path, type(boxes).__name__))
    unknown = sorted(set(boxes) - set(names))
    if unknown:
        raise NeuralTalkError("%s has boxes for %s, which is not an image of this folder"
                              % (path, ", ".join(unknown[:5])))
    for name, own in boxes.items():
        if not (isinstance(own, list) and all(_is_box(b) for b in own)):
            raise NeuralTalkError("%s: the boxes of %s must be a list of [x0, y0, x1, y1] in "
                                  "pixels with 0 <= x0 < x1 and 0 <= y0 < y1, got %.80s"
                                  % (path, name, json.dumps(own)))
    return {name: [[int(v) for v in b] for b in own] for name, own in boxes.items()}


def _is_box(b):
    return (isinstance(b, list) and len(b) == 4
            and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                    and np.isfinite(v) for v in b)
            and 0 <= int(b[0]) < int(b[2]) and 0 <= int(b[1]) < int(b[3]))


MULTICROP = "multicrop"
MULTICROP_SCALES = (0.5, 0.75)  # of the image's width and height


def multicrop_boxes(w, h, scales=MULTICROP_SCALES):
    """--regions multicrop's crops of a w x h image, [x0, y0, x1, y1] in pixels: at each
    scale the top-left, top-right, bottom-left and bottom-right corners and the centre."""
    boxes = []
    for scale in scales:
        cw, ch = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
        x_centre, y_centre = (w - cw) // 2, (h - ch) // 2
        for x0, y0 in ((0, 0), (w - cw, 0), (0, h - ch), (w - cw, h - ch),
                       (x_centre, y_centre)):
            boxes.append([x0, y0, x0 + cw, y0 + ch])
    return boxes


def region_features(extractor, paths, boxes_by_name, boxes_file="--regions"):
    """regions.h5 arrays: the whole image, then a crop of each box, per image;
    boxes_by_name None: the crops of --regions multicrop."""
    from neuraltalk.cnn.images import open_rgb
    if boxes_by_name is None:
        max_regions = 1 + len(multicrop_boxes(1, 1))
    else:
        max_regions = 1 + max((len(b) for b in boxes_by_name.values()), default=0)
    feats = np.zeros((len(paths), max_regions, extractor.width), np.float32)
    boxes = np.zeros((len(paths), max_regions, 4), np.int32)
    counts = np.zeros(len(paths), np.int32)
    for n, path in enumerate(paths):  # one image and its crops per batch
        img = open_rgb(path)
        w, h = img.size
        own = (multicrop_boxes(w, h) if boxes_by_name is None
               else boxes_by_name.get(os.path.basename(path), []))
        outside = [b for b in own if b[2] > w or b[3] > h]
        if outside:
            raise NeuralTalkError("%s: box %s of %s lies outside the image (%d x %d pixels)"
                                  % (boxes_file, outside[0], os.path.basename(path), w, h))
        own = [[0, 0, w, h]] + own
        crops = [img.crop(tuple(b)) for b in own]
        feats[n, :len(own)] = extractor.features(crops)
        boxes[n, :len(own)] = own
        counts[n] = len(own)
    return feats, boxes, counts


# What extract_folder works on: the folder's images and what to compute for each, the same
# on every rank and in every part of a sharded job (a merge rebuilds it from the parts).
Job = namedtuple("Job", "folder names cnn weights extractor dataset_json tasks boxes "
                        "regions grid batch_size")


def extract_folder(args):
    """python -m neuraltalk.features DIR: in one process; on every rank of an MPI job (each
    extracts its block of whole batches, rank 0 gathers them in order and writes); as part
    I of K of independent jobs (--shard I/K, neuraltalk/cnn/shards.py); or the merge of
    those parts (--merge_shards K). Everything is computed before anything is written, so
    an error, or a rank that dies, leaves DIR as it was."""
    from neuraltalk.cnn import shards
    from neuraltalk.parallel import collectively, world
    w = world()
    shard = getattr(args, "shard", None)
    if getattr(args, "merge_shards", None) is not None:
        if shard is not None:
            raise NeuralTalkError("--shard makes a part, --merge_shards merges them: give "
                                  "one of them")
        # reading the parts and writing the files is rank 0's, if this is an MPI job
        return shards.merge_parts(args.folder, args.merge_shards, args.cnn) if w.is_root else 0

    def plan():
        if shard is not None and w.size > 1:
            raise NeuralTalkError("--shard runs one part as its own job: run it without "
                                  "mpirun, or run mpirun without --shard")
        part = shards.parse_shard(shard) if shard is not None else None
        return plan_folder(args), part
    job, part = collectively(w, plan)
    if part is not None:
        index, count = part
        start, stop = batch_share(len(job.names), job.batch_size, index - 1, count)
        return shards.write_part(job, index, count, extract_share(job, start, stop))
    start, stop = batch_share(len(job.names), job.batch_size, w.rank, w.size)
    prefix = "rank %d/%d: " % (w.rank, w.size) if w.size > 1 else ""
    share = collectively(w, lambda: extract_share(job, start, stop, prefix))
    shares = w.gather(share)
    # what the ranks could not read decides, on every rank, whether there is a result
    bad = [n for part in w.allgather(share["bad"]) for n in part]
    collectively(w, lambda: check_readable(job, bad))
    if not w.is_root:
        return 0
    return write_folder(job, combine(shares))


def plan_folder(args):
    """The Job of `python -m neuraltalk.features DIR ...`, every flag checked, the CNN
    loaded: nothing is computed yet."""
    folder = args.folder
    if not os.path.isdir(folder):
        raise NeuralTalkError("%s is not a folder of images" % folder)
    check_batch_size(args.batch_size)
    cnn = args.cnn or DEFAULT_CNN
    extractor = Extractor(cnn, args.weights)
    dataset_json = os.path.join(folder, "dataset.json")
    if not os.path.exists(dataset_json):
        dataset_json = None
    tasks = None if dataset_json else os.path.join(folder, "tasks.txt")
    names = list_images(folder, dataset_json, tasks)
    multicrop = args.regions == MULTICROP
    boxes = (read_boxes(args.regions, {os.path.basename(n) for n in names})
             if args.regions and not multicrop else None)
    grid = getattr(args, "grid", False)
    if grid and args.regions:
        raise NeuralTalkError("--grid and --regions both write regions.h5: give one of them")
    if grid and not hasattr(extractor.module, "feature_map"):
        raise NeuralTalkError("--grid needs a convolutional map: use --cnn vgg16 or "
                              "efficientnet-lite0, not %s" % cnn)
    return Job(folder, names, cnn, args.weights, extractor, dataset_json, tasks, boxes,
               args.regions, grid, args.batch_size)


def batch_share(count, batch_size, rank, size):
    """The images [start, stop) of rank `rank` of `size`: a contiguous block of whole
    batches (parallel.shard_range over the batches), so every image goes through the CNN
    in the same batch as in one process, and the features are the same bytes."""
    from neuraltalk.parallel import shard_range
    first, last = shard_range(-(-count // batch_size), rank, size)
    return min(count, first * batch_size), min(count, last * batch_size)


def extract_share(job, start, stop, prefix=""):
    """The arrays of images [start, stop) of the job: a dict of `bad` (the names that could
    not be read), `feats` (one row per readable image) and, with --grid, `grid_feats` and
    `grid_boxes`, with --regions, `region_feats`, `region_boxes` and `region_counts`."""
    names = job.names[start:stop]
    paths = [os.path.join(job.folder, n) for n in names]
    out, bad = run(job.extractor, paths, job.batch_size, grid=job.grid, prefix=prefix)
    bad = set(bad)
    share = {"bad": [n for n, p in zip(names, paths) if p in bad]}
    if job.grid:
        share["feats"], share["grid_feats"], share["grid_boxes"] = out
    else:
        share["feats"] = out
    if job.regions and not job.grid:
        kept = [p for p in paths if p not in bad]
        (share["region_feats"], share["region_boxes"],
         share["region_counts"]) = region_features(job.extractor, kept, job.boxes, job.regions)
    return share


def combine(shares):
    """One share of all the images from the shares of consecutive blocks, in order."""
    combined = {"bad": [n for s in shares for n in s["bad"]]}
    for key in shares[0]:
        if key != "bad":
            parts = [s[key] for s in shares if s[key] is not None and len(s[key])]
            combined[key] = np.concatenate(parts) if parts else None
    if combined["feats"] is None:
        combined["feats"] = shares[0]["feats"]  # (0, D): nothing could be read
    return combined


def check_readable(job, bad):
    """Refuse a result without the images `bad` that could not be read: any image of a
    dataset.json, or all of them."""
    if job.tasks is None and bad:
        raise NeuralTalkError("%s lists images that cannot be read: %s" % (
            job.dataset_json, ", ".join(os.path.join(job.folder, n) for n in bad[:5])))
    if len(set(bad)) == len(job.names):
        raise NeuralTalkError("none of the %d images in %s could be read (see the warnings "
                              "above); nothing was written" % (len(job.names), job.folder))


def write_folder(job, share):
    """Write what `python -m neuraltalk.features` writes for the job's images, from their
    arrays (`combine`d): tasks.txt (unless DIR has a dataset.json), vgg_feats.mat,
    features.json, and regions.h5 with --regions or --grid."""
    from neuraltalk.atomic import atomic_write_text
    from neuraltalk.data.regions import save_regions
    folder, feats = job.folder, share["feats"]
    check_readable(job, share["bad"])
    bad = set(share["bad"])
    kept = [n for n in job.names if n not in bad]
    if job.tasks is not None:
        atomic_write_text(job.tasks, "".join(n + "\n" for n in kept))
        print("wrote %s (%d images)" % (job.tasks, len(kept)))
    path = save_feature_file(folder, feats)
    atomic_write_text(os.path.join(folder, "features.json"),
                      json.dumps({"cnn": job.cnn, "weights": job.weights}))
    print("wrote %s: %d x %d features from %s" % (path, feats.shape[1], len(feats), job.cnn))
    regions_h5 = os.path.join(folder, "regions.h5")
    if job.regions:
        counts = share["region_counts"]
        save_regions(regions_h5, share["region_feats"], share["region_boxes"], counts)
        print("wrote %s: %d regions" % (regions_h5, int(counts.sum())))
    if job.grid:
        g_feats = share["grid_feats"]
        save_regions(regions_h5, g_feats, share["grid_boxes"],
                     np.full(len(g_feats), g_feats.shape[1], np.int32), grid=True)
        print("wrote %s: a grid of %d cells of %d-d features per image"
              % (regions_h5, g_feats.shape[1], g_feats.shape[2]))
    return 0


def list_images(folder, dataset_json, tasks):
    """The images' paths relative to `folder`: dataset.json's in imgid order when `tasks` is
    None, else tasks.txt's lines, else every image file in the folder, sorted."""
    if tasks is None:  # the user's own dataset
        from neuraltalk.data.dataset import check_images, read_json
        images = check_images(read_json(dataset_json), dataset_json)
        return [os.path.join(img.get("filepath", ""), img["filename"]) for img in images]
    if os.path.exists(tasks):
        names = [line.strip() for line in open(tasks, encoding="utf-8") if line.strip()]
    else:
        names = sorted(n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS))
    if not names:
        raise NeuralTalkError("no images in %s" % folder)
    return names

