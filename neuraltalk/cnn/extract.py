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
"""
import argparse
import json
import os
import sys
import time

import numpy as np

from neuraltalk.cli import run_reporting_errors
from neuraltalk.errors import NeuralTalkError

CNNS = ("efficientnet-lite0", "vgg16", "shapes-extractor")
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


def run(extractor, paths, batch_size=16, progress=True, grid=False):
    """Features of every readable image, and the paths that could not be read; with grid,
    (features, grid cells, cell boxes) in place of the features."""
    from neuraltalk.cnn.images import open_rgb
    check_batch_size(batch_size)
    out, bad = [], []
    t0 = time.time()
    done = 0
    for start in range(0, len(paths), batch_size):
        images = []
        for path in paths[start:start + batch_size]:
            try:
                images.append(open_rgb(path))
            except NeuralTalkError as e:
                print("warning: %s; skipping it" % e, file=sys.stderr)
                bad.append(path)
        if images:
            out.append(extractor.features_and_grid(images) if grid
                       else extractor.features(images))
        done += len(images)
        if progress:
            rate = done / max(1e-9, time.time() - t0)
            print("\r%d/%d images, %.1f images/s" % (done, len(paths), rate), end="", flush=True)
    if progress:
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


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", help="folder of images")
    p.add_argument("--cnn", default="efficientnet-lite0", choices=CNNS)
    p.add_argument("--weights", default=None,
                   help="weights file (vgg16: the Keras .h5 or an .npz; efficientnet-lite0: "
                        "the package's .pth by default)")
    p.add_argument("--regions", default=None,
                   help="also write regions.h5: a JSON of boxes per image file name, or "
                        "'multicrop' for the whole image plus fixed crops of each")
    p.add_argument("--grid", action="store_true",
                   help="also write the last convolutional map as regions.h5 (one region "
                        "per cell), for --generator attention")
    p.add_argument("--batch_size", type=int, default=16)
    args = p.parse_args(argv)
    return run_reporting_errors(extract_folder, args)


def extract_folder(args):
    """Everything is computed before anything is written, so an error leaves DIR as it was."""
    from neuraltalk.atomic import atomic_write_text
    folder = args.folder
    if not os.path.isdir(folder):
        raise NeuralTalkError("%s is not a folder of images" % folder)
    check_batch_size(args.batch_size)
    extractor = Extractor(args.cnn, args.weights)
    dataset_json = os.path.join(folder, "dataset.json")
    tasks = None if os.path.exists(dataset_json) else os.path.join(folder, "tasks.txt")
    names = list_images(folder, dataset_json, tasks)
    paths = [os.path.join(folder, n) for n in names]
    multicrop = args.regions == MULTICROP
    boxes = (read_boxes(args.regions, {os.path.basename(p) for p in paths})
             if args.regions and not multicrop else None)
    grid = getattr(args, "grid", False)
    if grid and args.regions:
        raise NeuralTalkError("--grid and --regions both write regions.h5: give one of them")
    if grid and not hasattr(extractor.module, "feature_map"):
        raise NeuralTalkError("--grid needs a convolutional map: use --cnn vgg16 or "
                              "efficientnet-lite0, not %s" % args.cnn)
    feats, bad = run(extractor, paths, args.batch_size, grid=grid)
    if grid:
        feats, g_feats, g_boxes = feats
    if tasks is None and bad:
        raise NeuralTalkError("%s lists images that cannot be read: %s"
                              % (dataset_json, ", ".join(bad[:5])))
    if len(bad) == len(paths):
        raise NeuralTalkError("none of the %d images in %s could be read (see the warnings "
                              "above); nothing was written" % (len(paths), folder))
    bad = set(bad)
    kept = [n for n, p in zip(names, paths) if p not in bad]
    paths = [p for p in paths if p not in bad]
    if boxes is not None or multicrop:
        r_feats, r_boxes, counts = region_features(extractor, paths, boxes, args.regions)
    if tasks is not None:
        atomic_write_text(tasks, "".join(n + "\n" for n in kept))
        print("wrote %s (%d images)" % (tasks, len(kept)))
    path = save_feature_file(folder, feats)
    atomic_write_text(os.path.join(folder, "features.json"),
                      json.dumps({"cnn": args.cnn, "weights": args.weights}))
    print("wrote %s: %d x %d features from %s" % (path, feats.shape[1], len(feats), args.cnn))
    if boxes is not None or multicrop:
        from neuraltalk.data.regions import save_regions
        save_regions(os.path.join(folder, "regions.h5"), r_feats, r_boxes, counts)
        print("wrote %s: %d regions" % (os.path.join(folder, "regions.h5"), int(counts.sum())))
    if grid:
        from neuraltalk.data.regions import save_regions
        save_regions(os.path.join(folder, "regions.h5"), g_feats, g_boxes,
                     np.full(len(g_feats), g_feats.shape[1], np.int32), grid=True)
        print("wrote %s: a grid of %d cells of %d-d features per image"
              % (os.path.join(folder, "regions.h5"), g_feats.shape[1], g_feats.shape[2]))
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


if __name__ == "__main__":
    sys.exit(main())
