"""Datasets in Karpathy's format: `<folder>/dataset.json` plus one feature row per image.

dataset.json: {"dataset": name, "images": [{"filename", "imgid", "split", "sentids",
"sentences": [{"tokens", "raw", "imgid", "sentid"}]}]}; split is train, val, test or
restval (COCO's Karpathy split folds restval into train). `imgid` indexes the feature rows.
"""
import json
import os

from neuraltalk.errors import NeuralTalkError
from neuraltalk.data.feature_files import find_feature_file, load_features

SPLITS = ("train", "val", "test", "restval")
DOWNLOAD_HINT = (
    "For Flickr8k, Flickr30k or COCO, put Karpathy's dataset.json and vgg_feats.mat (from "
    "the NeuralTalk release, or made with `python -m neuraltalk.prepare` and "
    "`python -m neuraltalk.features`) in data/<name>/ as the README says; or use "
    "--dataset shapes for the embedded demo dataset")


class Dataset:
    """A dataset's images (index == imgid), their splits and their feature rows.

    Attributes: name, folder, images (list of Karpathy image dicts), features ((N, D)
    row-indexable, `features[int_array]` -> float32 ndarray), feature_width (D), cnn (the
    CNN the features came from, from features.json, or None), fold_restval."""

    def __init__(self, name, folder, images, features, cnn, fold_restval):
        self.name = name
        self.folder = folder
        self.images = images
        self.features = features
        self.feature_width = int(features.shape[1])
        self.cnn = cnn
        self.fold_restval = fold_restval

    def split(self, name):
        """The images of split `name` in imgid order ('train' includes restval when
        fold_restval). An empty split is an error."""
        if name not in SPLITS:
            raise NeuralTalkError("unknown split %r: use one of %s" % (name, ", ".join(SPLITS)))
        wanted = {name, "restval"} if name == "train" and self.fold_restval else {name}
        images = [img for img in self.images if img["split"] in wanted]
        if not images:
            hint = ""
            if name == "train" and any(img["split"] == "restval" for img in self.images):
                hint = " (its images are in restval: fold them in with --fold_restval 1)"
            raise NeuralTalkError("%s: the %s split is empty%s" % (
                os.path.join(self.folder, "dataset.json"), name, hint))
        return images


def check_max_images(max_images, flag="--max_images"):
    """Refuse a limit on the images that is neither positive nor -1 (all): 0 would
    otherwise read as "all", the opposite of what it says."""
    if max_images != -1 and max_images < 1:
        raise NeuralTalkError("%s %s: must be positive, or -1 for all" % (flag, max_images))
    return max_images


def resolve_folder(name_or_path, data_root="data"):
    """The folder of a dataset given by name (data_root/<name>) or by path."""
    under_root = os.path.join(data_root, name_or_path)
    if os.path.isdir(under_root):
        return under_root
    if os.path.isdir(name_or_path) or os.path.isabs(name_or_path) or os.sep in name_or_path:
        return name_or_path
    return under_root


def load_dataset(name_or_path, data_root="data", fold_restval=False, features_path=None):
    """Load `data_root/<name>/` or the folder `name_or_path`: dataset.json checked, its
    feature file opened (lazily where the format allows). Returns a Dataset."""
    folder = resolve_folder(name_or_path, data_root)
    json_path = os.path.join(folder, "dataset.json")
    if os.path.basename(os.path.normpath(folder)) == "shapes" and not os.path.exists(json_path):
        from neuraltalk.demo.dataset import ensure_shapes
        ensure_shapes(folder)
    if not os.path.isdir(folder):
        raise NeuralTalkError("dataset %r: %s does not exist: there is no folder %s. %s"
                              % (name_or_path, json_path, folder, DOWNLOAD_HINT))
    if not os.path.isfile(json_path):
        raise NeuralTalkError("dataset %r: %s does not exist. %s"
                              % (name_or_path, json_path, DOWNLOAD_HINT))
    blob = read_json(json_path)
    images = check_images(blob, json_path)
    features_path = features_path or find_feature_file(folder)
    features = load_features(features_path)
    n_rows, width = features.shape
    if n_rows != len(images):
        hint = ""
        if width == len(images):
            hint = (" The matrix looks transposed: .npy and .h5 hold N x D, MATLAB's "
                    "vgg_feats.mat holds D x N.")
        raise NeuralTalkError(
            "%s has %d feature rows but %s lists %d images: they must match one to one "
            "(row imgid).%s" % (features_path, n_rows, json_path, len(images), hint))
    cnn = None
    meta_path = os.path.join(os.path.dirname(os.path.abspath(features_path)), "features.json")
    if os.path.exists(meta_path):
        meta = read_json(meta_path)
        cnn = meta.get("cnn") if isinstance(meta, dict) else None
    name = blob.get("dataset") or os.path.basename(os.path.normpath(folder))
    return Dataset(name, folder, images, features, cnn, fold_restval)


def read_json(path):
    """json.load with a NeuralTalkError naming the file (and line, column) on failure."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise NeuralTalkError("%s is not valid JSON: %s at line %d, column %d"
                              % (path, e.msg, e.lineno, e.colno)) from None
    except (OSError, UnicodeDecodeError) as e:
        raise NeuralTalkError("cannot read %s: %s" % (path, e)) from None


def check_images(blob, path):
    """Validate dataset.json's images; returns them ordered by imgid (index == imgid)."""
    if not isinstance(blob, dict) or not isinstance(blob.get("images"), list):
        raise NeuralTalkError("%s: expected an object with a list under \"images\" "
                              "(Karpathy's format)" % path)
    images = blob["images"]
    if not images:
        raise NeuralTalkError("%s lists no images" % path)
    n = len(images)
    by_id = [None] * n
    position = [None] * n  # where each imgid was seen, for the duplicate message
    sentids = {}
    for i, img in enumerate(images):
        if not isinstance(img, dict):
            raise NeuralTalkError("%s: image %d is not an object" % (path, i))
        for key in ("imgid", "split", "sentences"):
            if key not in img:
                raise NeuralTalkError("%s: image %d has no %r" % (path, i, key))
        imgid = img["imgid"]
        if not _is_int(imgid) or not 0 <= imgid < n:
            raise NeuralTalkError(
                "%s: image %d has imgid %r, outside 0..%d: imgid indexes the feature rows, "
                "one per image" % (path, i, imgid, n - 1))
        if by_id[imgid] is not None:
            raise NeuralTalkError("%s: imgid %d appears twice (images %d and %d)"
                                  % (path, imgid, position[imgid], i))
        if img["split"] not in SPLITS:
            raise NeuralTalkError("%s: image %d has split %r; use one of %s"
                                  % (path, i, img["split"], ", ".join(SPLITS)))
        if not isinstance(img["sentences"], list):
            raise NeuralTalkError("%s: image %d: 'sentences' is not a list" % (path, i))
        if "sentids" in img and not (isinstance(img["sentids"], list)
                                     and all(_is_int(k) for k in img["sentids"])):
            raise NeuralTalkError("%s: image %d has sentids %r: expected a list of integers"
                                  % (path, i, img["sentids"]))
        for j, sent in enumerate(img["sentences"]):
            if not isinstance(sent, dict) or "tokens" not in sent:
                raise NeuralTalkError("%s: sentence %d of image %d has no 'tokens'" % (path, j, i))
            if not isinstance(sent["tokens"], list):
                raise NeuralTalkError("%s: sentence %d of image %d: 'tokens' is not a list"
                                      % (path, j, i))
            for k, token in enumerate(sent["tokens"]):
                if not isinstance(token, str):
                    raise NeuralTalkError("%s: sentence %d of image %d: token %d is %r, not a "
                                          "string" % (path, j, i, k, token))
            if "imgid" in sent and not _is_int(sent["imgid"]):
                raise NeuralTalkError("%s: sentence %d of image %d has imgid %r: imgids are "
                                      "integers" % (path, j, i, sent["imgid"]))
            sentid = sent.get("sentid")
            if "sentid" in sent and not _is_int(sentid):
                raise NeuralTalkError("%s: sentence %d of image %d has sentid %r: sentids are "
                                      "integers" % (path, j, i, sentid))
            if sentid is not None:
                if sentid in sentids:
                    raise NeuralTalkError("%s: sentid %r appears twice (images %d and %d)"
                                          % (path, sentid, sentids[sentid], i))
                sentids[sentid] = i
        by_id[imgid] = img
        position[imgid] = i
    return by_id


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)  # JSON true is no id
