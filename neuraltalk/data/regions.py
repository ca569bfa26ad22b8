"""Region features for the alignment model: an HDF5 file beside dataset.json.

Layout (`regions.h5`):
- `feats`  float32 (N, R, D): CNN features of up to R regions of each image (R <= 20 in
  the paper: the whole image and the top 19 detections);
- `boxes`  int32 (N, R, 4): each region's box [x0, y0, x1, y1] in pixels;
- `counts` int32 (N,): how many regions image n has; region 0 is the whole image and
  rows from counts[n] on are padding.
Row n belongs to the image with imgid n. Features are read lazily, a batch at a time.
A grid of CNN cells (`python -m neuraltalk.features --grid`, the attention model's
annotation vectors) is marked by the attribute `grid = 1` and has no whole-image region:
the alignment model reads it with the whole image prepended (`GridWithWholeImage`).

Without regions.h5 the alignment model reads each image's CNN feature vector as its only
region (R = 1, the paper's full-frame setting; `WholeImageRegions`): the released
Flickr8k / Flickr30k / COCO archives carry one vector per image and nothing else.
"""
import os

import numpy as np

from neuraltalk.atomic import atomic_write
from neuraltalk.errors import NeuralTalkError


WHOLE_IMAGE = "whole_image"  # the value of --regions (stored in checkpoints) for R = 1


class RegionFeatures:
    """Lazy access to regions.h5: `rows(imgids) -> (feats (B, R, D) float32, counts (B,))`."""
    whole_image = False

    def __init__(self, path):
        import h5py
        self.path = path
        try:
            self._file = h5py.File(path, "r")
        except OSError as e:
            raise NeuralTalkError("cannot open region features %s: %s" % (path, e)) from None
        missing = [k for k in ("feats", "boxes", "counts") if k not in self._file]
        if missing:
            raise NeuralTalkError("%s lacks %s: region features need feats (N, R, D), boxes "
                                  "(N, R, 4) and counts (N,)" % (path, ", ".join(missing)))
        self.feats = self._file["feats"]
        self.boxes = self._file["boxes"][...]
        self.counts = self._file["counts"][...].astype(np.int64)
        if self.feats.ndim != 3:
            raise NeuralTalkError("%s: feats has shape %s, expected (N, R, D)"
                                  % (path, self.feats.shape))
        n, r, self.width = self.feats.shape
        if self.boxes.shape != (n, r, 4) or self.counts.shape != (n,):
            raise NeuralTalkError("%s: boxes %s and counts %s do not fit feats %s"
                                  % (path, self.boxes.shape, self.counts.shape, self.feats.shape))
        if n and (self.counts.min() < 1 or self.counts.max() > r):
            raise NeuralTalkError("%s: every count must be in 1..%d (region 0 is the whole "
                                  "image)" % (path, r))
        self.max_regions = r
        self.grid = bool(self._file.attrs.get("grid", 0))

    def __len__(self):
        return len(self.counts)

    def rows(self, imgids):
        imgids = np.asarray(imgids, dtype=np.int64)
        unique, inverse = np.unique(imgids, return_inverse=True)
        feats = np.asarray(self.feats[unique], dtype=np.float32)[inverse.ravel()]
        if not np.isfinite(feats).all():
            raise NeuralTalkError("%s holds NaN or infinite region features" % self.path)
        return feats, self.counts[imgids]


def load_regions(folder_or_path, n_images=None):
    path = folder_or_path
    if os.path.isdir(path):
        path = os.path.join(path, "regions.h5")
    if not os.path.exists(path):
        raise NeuralTalkError(
            "region features %s do not exist: make them with python -m neuraltalk.features "
            "DIR --regions multicrop (or --regions BOXES.json); the demo dataset has them"
            % path)
    regions = RegionFeatures(path)
    if n_images is not None and len(regions) != n_images:
        raise NeuralTalkError("%s has regions of %d images but the dataset has %d"
                              % (path, len(regions), n_images))
    return regions


class WholeImageRegions:
    """The RegionFeatures interface over a dataset's own feature rows: every image has one
    region, the whole image (R = 1). `boxes` is None: the image sizes are never read."""
    whole_image = True

    def __init__(self, features):
        self.path = features.path  # the feature file, named in errors
        self._features = features
        self.boxes = None
        self.counts = np.ones(len(features), np.int64)
        self.width = int(features.shape[1])
        self.max_regions = 1

    def __len__(self):
        return len(self.counts)

    def rows(self, imgids):
        imgids = np.asarray(imgids, dtype=np.int64)
        return self._features[imgids][:, None, :], self.counts[imgids]


class GridWithWholeImage:
    """A grid of cells as the alignment model's regions: region 0 is the whole image at the
    grid's layer (the mean of its cells, i.e. global average pooling, so it has the cells'
    width), then the cells. Its box is the one that covers every cell."""
    whole_image = False

    def __init__(self, grid):
        self.path = grid.path
        self._grid = grid
        self.feats = grid.feats  # the file's rows (the cells), for checks of every row
        self.counts = grid.counts + 1
        self.width = grid.width
        self.max_regions = grid.max_regions + 1
        cells = grid.boxes
        whole = np.stack([cells[..., 0].min(1), cells[..., 1].min(1), cells[..., 2].max(1),
                          cells[..., 3].max(1)], axis=1)
        self.boxes = np.concatenate([whole[:, None], cells], axis=1)

    def __len__(self):
        return len(self.counts)

    def rows(self, imgids):
        cells, counts = self._grid.rows(imgids)
        valid = (np.arange(cells.shape[1])[None, :] < counts[:, None]).astype(np.float32)
        mean = (cells * valid[..., None]).sum(1) / counts[:, None].astype(np.float32)
        return np.concatenate([mean[:, None], cells], axis=1), counts + 1


def alignment_regions(regions):
    """What the alignment model reads of a regions file: a grid gets its whole image."""
    if getattr(regions, "grid", False):
        print("%s is a grid of CNN cells: the alignment model aligns the cells and the whole "
              "image (their mean) as region 0" % regions.path)
        return GridWithWholeImage(regions)
    return regions


def regions_for_training(dataset, regions_flag=""):
    """The regions the alignment model trains on: the --regions file if given, else
    regions.h5 in the dataset folder, else (with one line saying so) each image's feature
    vector as its only region. Returns (regions, the --regions value that reads them again:
    WHOLE_IMAGE for R = 1), so evaluation reads what training read."""
    if regions_flag == WHOLE_IMAGE:
        return WholeImageRegions(dataset.features), WHOLE_IMAGE
    if regions_flag or os.path.exists(os.path.join(dataset.folder, "regions.h5")):
        regions = load_regions(regions_flag or dataset.folder, len(dataset.images))
        return alignment_regions(regions), regions_flag
    print("no region features (%s): the alignment model aligns whole images, each image's "
          "feature vector its only region (R = 1)" % os.path.join(dataset.folder, "regions.h5"))
    return WholeImageRegions(dataset.features), WHOLE_IMAGE


def regions_of_checkpoint(params, dataset):
    """The regions an alignment checkpoint was trained on, for `dataset`: R = 1 from the
    feature rows if it read whole images, else its --regions file or regions.h5."""
    if params.get("regions") == WHOLE_IMAGE:
        return WholeImageRegions(dataset.features)
    return alignment_regions(load_regions(params.get("regions") or dataset.folder,
                                          len(dataset.images)))


def save_regions(path, feats, boxes, counts, grid=False):
    """Write regions.h5 (layout above) atomically; h5py opens the temporary file by name.
    grid: the regions are CNN cells, with no whole-image region (marked so)."""
    import h5py

    def write(tmp):
        with h5py.File(tmp, "w") as f:
            if grid:
                f.attrs["grid"] = 1
            f["feats"] = np.asarray(feats, dtype=np.float32)
            f["boxes"] = np.asarray(boxes, dtype=np.int32)
            f["counts"] = np.asarray(counts, dtype=np.int32)
    atomic_write(path, write, by_name=True)
