"""Render the demo dataset `shapes` into a folder (see neuraltalk/demo/__init__.py)."""
import collections
import json
import os
import shutil
import tempfile
import time

import numpy as np

from neuraltalk.demo.extractor import region_features
from neuraltalk.demo.scenes import SIZE, captions, random_scene, render
from neuraltalk.errors import NeuralTalkError

MARKER = ".neuraltalk-shapes"
GENERATED = ("dataset.json", "images", "vgg_feats.npy", "features.json", "regions.h5", MARKER)


def ensure_shapes(folder, seed=0, n_images=3000):
    """Render the dataset into `folder` unless its dataset.json exists already.

    Default 3,000 images: 300 test, 300 val, 2,400 train (15,000 sentences). That is
    each colour x shape x size (48 kinds) about 125 times (20 of them alone), a few
    hundred test objects for the retrieval and snippet figures, little enough for a
    generator to learn in minutes, and rendered in ~10 s.
    Written into a temporary sibling folder renamed into place at the end, so an
    interrupted run leaves nothing behind. A folder that holds anything the generator
    did not write is refused, never emptied.
    """
    if os.path.exists(os.path.join(folder, "dataset.json")):
        return
    check_replaceable(folder)
    t0 = time.time()
    parent = os.path.dirname(os.path.abspath(folder))
    try:
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".shapes-", dir=parent)
        umask = os.umask(0)  # mkdtemp makes the folder 0700: give it the umask's mode
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
    except OSError as e:
        raise NeuralTalkError("cannot write the demo dataset into %s (%s): choose a writable "
                              "--data_root" % (folder, e.strerror or e)) from None
    try:
        summary = write_dataset(tmp, seed, n_images)
        if os.path.exists(folder):  # empty, or the generator's own without its dataset.json
            check_replaceable(folder)  # again: generating took seconds
            for name in os.listdir(folder):
                path = os.path.join(folder, name)
                if os.path.isdir(path):
                    shutil.rmtree(path)
                else:
                    os.remove(path)
            os.rmdir(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print("generated the demo dataset %s: %d images, %d sentences, %d words seen 5+ times in "
          "train, %d-d features, in %.1fs" % (folder, summary["images"], summary["sentences"],
                                              summary["vocabulary"], summary["feature_width"],
                                              time.time() - t0))


def check_replaceable(folder):
    """Refuse to generate into `folder` unless it is missing, empty or holds only files
    the generator wrote (its marker among them)."""
    if not os.path.exists(folder):
        return
    if not os.path.isdir(folder):
        raise NeuralTalkError("%s is a file, so the demo dataset cannot be generated there: "
                              "choose another --dataset or --data_root" % folder)
    entries = os.listdir(folder)
    if entries and MARKER not in entries:
        raise NeuralTalkError(
            "%s has no dataset.json and was not made by the demo generator (it has no %s), so "
            "it is left alone: put your dataset's dataset.json there, or generate the demo "
            "elsewhere (--dataset shapes --data_root DIR)" % (folder, MARKER))
    foreign = sorted(set(entries) - set(GENERATED))
    if foreign:
        raise NeuralTalkError("%s holds files the demo generator did not write (%s): move them "
                              "away to generate the demo there again"
                              % (folder, ", ".join(foreign[:5])))


def write_dataset(folder, seed, n_images):
    import h5py
    from PIL import Image

    rng = np.random.default_rng(seed)
    scenes = [random_scene(rng) for _ in range(n_images)]
    pixels = np.stack([render(scene, rng) for scene in scenes])
    os.makedirs(os.path.join(folder, "images"))
    n_val = n_test = max(1, n_images // 10)
    images = []
    sentid = 0
    for imgid, objects in enumerate(scenes):
        filename = "%05d.png" % imgid
        Image.fromarray(pixels[imgid]).save(os.path.join(folder, "images", filename),
                                            compress_level=1)
        split = ("test" if imgid < n_test else "val" if imgid < n_test + n_val else "train")
        sentences = []
        for tokens, regions in captions(objects, rng):
            sentences.append({"tokens": tokens, "raw": " ".join(tokens).capitalize() + ".",
                              "imgid": imgid, "sentid": sentid, "token_region": regions})
            sentid += 1
        images.append({"filename": filename, "filepath": "images", "imgid": imgid,
                       "split": split, "sentids": [s["sentid"] for s in sentences],
                       "sentences": sentences, "objects": objects})
    with open(os.path.join(folder, "dataset.json"), "w") as f:
        json.dump({"dataset": "shapes", "images": images}, f)

    n_regions = 1 + max(len(objs) for objs in scenes)
    counts = np.array([1 + len(objs) for objs in scenes], dtype=np.int32)
    boxes = np.zeros((n_images, n_regions, 4), dtype=np.int32)
    boxes[:, 0] = (0, 0, SIZE, SIZE)
    for n, objects in enumerate(scenes):
        for i, obj in enumerate(objects):
            boxes[n, 1 + i] = obj["box"]
    region_feats = region_features(pixels, boxes, counts)
    feats = region_feats[:, 0]
    np.save(os.path.join(folder, "vgg_feats.npy"), feats)
    with open(os.path.join(folder, "features.json"), "w") as f:
        json.dump({"cnn": "shapes-extractor"}, f)
    with open(os.path.join(folder, MARKER), "w") as f:
        f.write("written by neuraltalk.demo.dataset.ensure_shapes: this folder may be regenerated\n")
    with h5py.File(os.path.join(folder, "regions.h5"), "w") as f:
        f["feats"] = region_feats
        f["boxes"] = boxes
        f["counts"] = counts
    counts_of = collections.Counter(w for img in images if img["split"] == "train"
                                    for sent in img["sentences"] for w in sent["tokens"])
    return {"images": n_images, "sentences": sentid, "feature_width": feats.shape[1],
            "vocabulary": sum(c >= 5 for c in counts_of.values())}
