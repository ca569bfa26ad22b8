"""Feature extraction as K independent jobs, for clusters without MPI between the jobs.

    python -m neuraltalk.features DIR --cnn vgg16 --weights W --shard 1/4     # on machine 1
    ...
    python -m neuraltalk.features DIR --cnn vgg16 --weights W --shard 4/4     # on machine 4
    python -m neuraltalk.features DIR --merge_shards 4                        # anywhere

Part I of K is the block of whole batches rank I - 1 of a K-rank MPI job would extract
(extract.batch_share); it is written to DIR/feature_parts/part-I-of-K.npz: its arrays and a
JSON manifest (the CNN, the flags that decide what is computed, the folder's whole image
list, which images of it the part holds and which of those could not be read). The merge
checks that the K parts are all there and were made alike, then writes DIR's files
exactly as one process would (extract.write_folder). The parts are left in place.
"""
import hashlib
import json
import os
import re
import zipfile

import numpy as np

from neuraltalk.cnn.extract import MULTICROP, Job, batch_share, combine, write_folder
from neuraltalk.errors import NeuralTalkError

PARTS_FOLDER = "feature_parts"
FORMAT = 1
# the manifest entries every part of one job shares
SAME_IN_EVERY_PART = ("cnn", "weights", "source", "regions", "boxes_sha256", "grid",
                      "batch_size", "names")


def parse_shard(text):
    """--shard I/K -> (I, K) with 1 <= I <= K."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise NeuralTalkError("--shard wants I/K with 1 <= I <= K (part I of K, e.g. "
                              "--shard 2/4), got %r" % text)
    return int(match.group(1)), int(match.group(2))


def part_path(folder, index, count):
    return os.path.join(folder, PARTS_FOLDER, "part-%d-of-%d.npz" % (index, count))


def boxes_fingerprint(boxes):
    if boxes is None:
        return None
    return hashlib.sha256(json.dumps(boxes, sort_keys=True).encode("utf-8")).hexdigest()


def share_keys(grid, regions):
    """The arrays a share holds (extract.extract_share) for these flags."""
    keys = ["feats"]
    if grid:
        keys += ["grid_feats", "grid_boxes"]
    elif regions:
        keys += ["region_feats", "region_boxes", "region_counts"]
    return keys


def write_part(job, index, count, share):
    """Write part `index` of `count` of the job, from its share (extract.extract_share)."""
    from neuraltalk.atomic import atomic_write
    start, stop = batch_share(len(job.names), job.batch_size, index - 1, count)
    manifest = {"format": FORMAT, "part": index, "parts": count, "start": start, "stop": stop,
                "bad": share["bad"], "cnn": job.cnn, "weights": job.weights,
                "source": "dataset.json" if job.dataset_json else "tasks.txt",
                "regions": None if not job.regions else (
                    MULTICROP if job.regions == MULTICROP else "boxes"),
                "boxes_sha256": boxes_fingerprint(job.boxes), "grid": bool(job.grid),
                "batch_size": job.batch_size, "names": job.names}
    arrays = {k: share[k] for k in share_keys(job.grid, job.regions) if share[k] is not None}
    path = part_path(job.folder, index, count)
    atomic_write(path, lambda f: np.savez(f, manifest=np.array(json.dumps(manifest)), **arrays))
    print("wrote %s: images %d to %d of %d (%d could not be read); when all %d parts are "
          "there: python -m neuraltalk.features %s --merge_shards %d"
          % (path, start + 1, stop, len(job.names), len(share["bad"]), count, job.folder,
             count))
    return 0


def read_part(path, index, count):
    """(manifest, share) of one part file, checked to be part `index` of `count`."""
    try:
        with np.load(path, allow_pickle=False) as data:
            manifest = json.loads(str(data["manifest"]))
            arrays = {k: data[k] for k in data.files if k != "manifest"}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        # not the message of np.load, which would suggest loading the file unsafely
        raise NeuralTalkError("%s is not a readable part file of python -m neuraltalk."
                              "features --shard: make it again with --shard %d/%d"
                              % (path, index, count)) from None
    if manifest.get("format") != FORMAT or (manifest.get("part"), manifest.get("parts")) != (
            index, count):
        raise NeuralTalkError("%s is not part %d of %d of this project's feature parts: make "
                              "it again with --shard %d/%d" % (path, index, count, index, count))
    share = {"bad": manifest["bad"]}
    for key in share_keys(manifest["grid"], manifest["regions"]):
        share[key] = arrays.get(key)
    return manifest, share


def merge_parts(folder, count, cnn=None):
    """--merge_shards K: DIR's tasks.txt, vgg_feats.mat, features.json (and regions.h5)
    from DIR/feature_parts/part-1-of-K.npz ... part-K-of-K.npz, as one process writes."""
    if count < 1:
        raise NeuralTalkError("--merge_shards wants the number of parts K (at least 1), "
                              "got %d" % count)
    if not os.path.isdir(folder):
        raise NeuralTalkError("%s is not a folder of images" % folder)
    paths = [part_path(folder, i, count) for i in range(1, count + 1)]
    missing = [i for i, p in enumerate(paths, 1) if not os.path.exists(p)]
    if missing:
        raise NeuralTalkError(
            "%s lacks part(s) %s of %d (%s): run python -m neuraltalk.features %s --shard I/%d "
            "with the same flags for each missing I first"
            % (os.path.join(folder, PARTS_FOLDER), ", ".join(map(str, missing)), count,
               os.path.basename(paths[missing[0] - 1]), folder, count))
    parts = [read_part(p, i, count) for i, p in enumerate(paths, 1)]
    first = parts[0][0]
    for path, (manifest, _) in zip(paths[1:], parts[1:]):
        for key in SAME_IN_EVERY_PART:
            if manifest[key] != first[key]:
                raise NeuralTalkError("%s and %s were made differently (%s): make every part "
                                      "with the same folder and flags"
                                      % (os.path.basename(paths[0]), os.path.basename(path),
                                         _difference(key, first[key], manifest[key])))
    if cnn is not None and cnn != first["cnn"]:
        raise NeuralTalkError("the parts in %s hold %s features, not --cnn %s"
                              % (os.path.join(folder, PARTS_FOLDER), first["cnn"], cnn))
    for i, (manifest, _) in enumerate(parts):
        if (manifest["start"], manifest["stop"]) != batch_share(
                len(first["names"]), first["batch_size"], i, count):
            raise NeuralTalkError("%s does not hold the images part %d of %d should: make it "
                                  "again with --shard %d/%d" % (paths[i], i + 1, count, i + 1,
                                                                count))
    job = Job(folder, first["names"], first["cnn"], first["weights"], None,
              os.path.join(folder, "dataset.json") if first["source"] == "dataset.json" else None,
              os.path.join(folder, "tasks.txt") if first["source"] == "tasks.txt" else None,
              None, first["regions"], first["grid"], first["batch_size"])
    print("merging %d parts of %d images from %s" % (count, len(job.names),
                                                   os.path.join(folder, PARTS_FOLDER)))
    return write_folder(job, combine([share for _, share in parts]))


def _difference(key, a, b):
    if key == "names":
        at = next((n for n, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        return "different image lists: %d and %d images, first differing at number %d" % (
            len(a), len(b), at + 1)
    if key == "boxes_sha256":
        return "different --regions boxes"
    return "--%s %s and %s" % (key, a, b)
