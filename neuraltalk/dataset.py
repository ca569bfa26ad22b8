"""Datasets in Karpathy's format: `<folder>/dataset.json` plus one feature row per image.

dataset.json: {"dataset": name, "images": [{"filename", "imgid", "split", "sentids",
"sentences": [{"tokens", "raw", "imgid", "sentid"}]}]}; split is train, val, test or
restval (COCO's Karpathy split folds restval into train). `imgid` indexes the feature rows.
"""
import json
import os

from neuraltalk.errors import NeuralTalkError
from neuraltalk.feature_files import find_feature_file, load_features

SPLITS = ("train", "val", "test", "restval")
DOWNLOAD_HINT = (
    "Put Karpathy's dataset.json and vgg_feats.mat for Flickr8k, Flickr30k or COCO in "
    "data/<name>/ (see the README), or use --dataset shapes for the embedded demo dataset")


class Dataset:
    """A dataset's images (index == imgid), their splits and their feature rows."""

    def __init__(self, name, folder, images, features, cnn, fold_restval):
        self.name = name
        self.folder = folder
        self.images = images
        self.features = features
        self.feature_width = features.shape[1]
        self.cnn = cnn
        self.fold_restval = fold_restval

    def split(self, name):
        """The images of split `name` ('train' includes restval when fold_restval)."""
        if name not in SPLITS:
            raise NeuralTalkError("unknown split %r: use one of %s" % (name, ", ".join(SPLITS)))
        wanted = {name, "restval"} if name == "train" and self.fold_restval else {name}
        images = [img for img in self.images if img["split"] in wanted]
        if not images:
            raise NeuralTalkError("%s: the %s split is empty" % (
                os.path.join(self.folder, "dataset.json"), name))
        return images


def resolve_folder(name_or_path, data_root="data"):
    """The folder of a dataset given by name (under data_root) or by path."""
    if os.path.isdir(name_or_path) and os.path.exists(os.path.join(name_or_path, "dataset.json")):
        return name_or_path
    return os.path.join(data_root, name_or_path)


def load_dataset(name_or_path, data_root="data", fold_restval=False, features_path=None):
    folder = resolve_folder(name_or_path, data_root)
    json_path = os.path.join(folder, "dataset.json")
    if os.path.basename(os.path.normpath(folder)) == "shapes" and not os.path.exists(json_path):
        from neuraltalk.shapes import ensure_shapes
        ensure_shapes(folder)
    if not os.path.exists(json_path):
        raise NeuralTalkError("dataset %r: %s does not exist. %s"
                              % (name_or_path, json_path, DOWNLOAD_HINT))
    blob = read_json(json_path)
    images = check_images(blob, json_path)
    features_path = features_path or find_feature_file(folder)
    features = load_features(features_path)
    if features.shape[0] != len(images):
        raise NeuralTalkError(
            "%s has %d feature rows but %s lists %d images: they must match one to one "
            "(row imgid)" % (features_path, features.shape[0], json_path, len(images)))
    cnn = None
    meta_path = os.path.join(os.path.dirname(os.path.abspath(features_path)), "features.json")
    if os.path.exists(meta_path):
        cnn = read_json(meta_path).get("cnn")
    name = blob.get("dataset") or os.path.basename(os.path.normpath(folder))
    return Dataset(name, folder, images, features, cnn, fold_restval)


def read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise NeuralTalkError("%s is not valid JSON: %s at line %d, column %d"
                              % (path, e.msg, e.lineno, e.colno)) from None
    except (OSError, UnicodeDecodeError) as e:
        raise NeuralTalkError("cannot read %s: %s" % (path, e)) from None


def check_images(blob, path):
    """Validate dataset.json's images; returns them ordered by imgid."""
    if not isinstance(blob, dict) or not isinstance(blob.get("images"), list):
        raise NeuralTalkError("%s: expected an object with a list under \"images\"" % path)
    images = blob["images"]
    if not images:
        raise NeuralTalkError("%s lists no images" % path)
    n = len(images)
    by_id = [None] * n
    sentids = set()
    for i, img in enumerate(images):
        for key in ("imgid", "split", "sentences"):
            if not isinstance(img, dict) or key not in img:
                raise NeuralTalkError("%s: image %d has no %r" % (path, i, key))
        imgid = img["imgid"]
        if not isinstance(imgid, int) or not 0 <= imgid < n:
            raise NeuralTalkError("%s: image %d has imgid %r, outside 0..%d (imgid indexes "
                                  "the feature rows)" % (path, i, imgid, n - 1))
        if by_id[imgid] is not None:
            raise NeuralTalkError("%s: imgid %d appears twice" % (path, imgid))
        if img["split"] not in SPLITS:
            raise NeuralTalkError("%s: image %d has split %r; use one of %s"
                                  % (path, i, img["split"], ", ".join(SPLITS)))
        for j, sent in enumerate(img["sentences"]):
            if not isinstance(sent, dict) or "tokens" not in sent:
                raise NeuralTalkError("%s: sentence %d of image %d has no 'tokens'" % (path, j, i))
            sentid = sent.get("sentid")
            if sentid is not None:
                if sentid in sentids:
                    raise NeuralTalkError("%s: sentid %r appears twice" % (path, sentid))
                sentids.add(sentid)
        by_id[imgid] = img
    return by_id
