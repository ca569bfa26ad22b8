"""Caption a folder of images with a checkpoint, as NeuralTalk's predict_on_images.py.

The folder holds the images, `tasks.txt` (one image file name a line) and their CNN
features (`vgg_feats.mat`, D x N in tasks.txt order, or .npy / .h5). Writes
`result_struct.json` and `result.html` into the folder. A folder of plain photos, with
neither, is captioned with the checkpoint's CNN when the project has it.

Without a folder (`predict_without_folder`): a checkpoint trained on the demo's features
captions fresh demo scenes rendered into a new folder beside it; any other says what to
pass.
"""
import os
import time

import numpy as np

from neuraltalk.train.checkpoint import load_checkpoint
from neuraltalk.captions.decoding import caption_text, decode_in_batches
from neuraltalk.errors import NeuralTalkError
from neuraltalk.models import captioning, is_generator, module_of
from neuraltalk.data.feature_files import FEATURE_FILE_NAMES, load_features
from neuraltalk.captions.report import write_attention_strip, write_json, write_prediction_page


def read_tasks(root, params=None):
    """The image names of tasks.txt; without it, in a folder of plain photos (no feature
    file) that the checkpoint's CNN can read, every image in the folder, sorted."""
    path = os.path.join(root, "tasks.txt")
    if (not os.path.exists(path) and params is not None and runnable_cnn(params)
            and not any(os.path.exists(os.path.join(root, n)) for n in FEATURE_FILE_NAMES)):
        from neuraltalk.cnn.extract import IMAGE_EXTENSIONS
        names = sorted(n for n in os.listdir(root) if n.lower().endswith(IMAGE_EXTENSIONS))
        if not names:
            raise NeuralTalkError("%s holds no images (%s) and no tasks.txt"
                                  % (root, " ".join(IMAGE_EXTENSIONS)))
        return names
    if not os.path.exists(path):
        raise NeuralTalkError(
            "%s does not exist: list the images to caption in it, one file name a line "
            "(python -m neuraltalk.features %s --cnn CNN writes it)" % (path, root))
    with open(path, encoding="utf-8") as f:
        names = [line.strip() for line in f if line.strip()]
    if not names:
        raise NeuralTalkError("%s lists no images" % path)
    missing = [n for n in names if not os.path.exists(os.path.join(root, n))]
    if missing:
        raise NeuralTalkError("%s lists %d image(s) that are not in %s: %s"
                              % (path, len(missing), root, ", ".join(missing[:5])))
    return names


def runnable_cnn(params):
    """The checkpoint's CNN if this command can compute its features (it needs nothing but
    the image: VGG-16 needs a weights file, which this command has no flag for), else None."""
    cnn = params.get("cnn")
    try:
        from neuraltalk.cnn.extract import CNNS
    except ImportError:
        return None
    return cnn if cnn in CNNS and cnn != "vgg16" else None


def image_features(root, names, params):
    """The features of the listed images: from the folder's file, or from the CNN."""
    for name in FEATURE_FILE_NAMES:
        path = os.path.join(root, name)
        if os.path.exists(path):
            feats = load_features(path)
            if len(feats) != len(names):
                raise NeuralTalkError(
                    "%s has features of %d images but tasks.txt lists %d: recompute the "
                    "features for tasks.txt" % (path, len(feats), len(names)))
            return feats
    cnn = params.get("cnn")
    try:
        from neuraltalk.cnn.extract import CNNS, extract_features
    except ImportError:
        CNNS, extract_features = (), None
    # Only a CNN that needs nothing but the image runs here: VGG-16 needs a weights file,
    # which this command has no flag for.
    if cnn in CNNS and cnn != "vgg16" and extract_features is not None:
        print("no feature file in %s: extracting features with %s" % (root, cnn))
        return extract_features([os.path.join(root, n) for n in names], cnn)
    missing = "no feature file (%s) in %s" % (", ".join(FEATURE_FILE_NAMES), root)
    if cnn in CNNS or cnn is None:  # NeuralTalk's checkpoints name no CNN: theirs is VGG-16
        raise NeuralTalkError(
            "%s. Compute the features of the CNN the checkpoint was trained on first: python "
            "-m neuraltalk.features %s --cnn %s%s" % (
                missing, root, cnn or "vgg16", " --weights FILE" if cnn in (None, "vgg16") else ""))
    raise NeuralTalkError(
        "%s. The checkpoint was trained on features of %r, which neuraltalk.cnn.extract does not "
        "compute: save that CNN's features there as vgg_feats.mat (D x N, in tasks.txt order)"
        % (missing, cnn))


def folder_regions(root, names, width, checkpoint_path):
    """The regions.h5 of an image folder (rows in tasks.txt order), for a model that attends."""
    from neuraltalk.data.regions import load_regions
    path = os.path.join(root, "regions.h5")
    if not os.path.exists(path):
        raise NeuralTalkError(
            "%s is an attention model: it needs %s, the region features of the images in "
            "tasks.txt order (python -m neuraltalk.features %s --cnn CNN --grid)"
            % (checkpoint_path, path, root))
    regions = load_regions(path, len(names))
    if regions.width != width:
        raise NeuralTalkError("the regions in %s are %d-d but %s was trained on %d-d regions: "
                              "use the same CNN as in training"
                              % (path, regions.width, checkpoint_path, width))
    return regions


def attention_picture(blob, root, n, sequence, weights, regions, ixtoword):
    """The blob's per-word attention, and its strip in root/attention/ (report.py)."""
    count = int(regions.counts[n])
    words = [ixtoword[ix] if ix > 0 else "END" for ix in sequence]
    weights = weights[:, :count]
    blob["attention"] = [{"word": w, "weights": [round(float(x), 4) for x in alpha]}
                         for w, alpha in zip(words, weights)]
    folder = os.path.join(root, "attention")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "%d.png" % n)
    write_attention_strip(path, os.path.join(root, blob["img_path"]), words, weights,
                          regions.boxes[n][:count])
    blob["attention_png"] = path


def predict_folder(checkpoint_path, root, beam_size=1, checkpoint=None):
    checkpoint = checkpoint or load_checkpoint(checkpoint_path)
    model, params = checkpoint["model"], checkpoint["params"]
    if not is_generator(params):
        raise NeuralTalkError("%s is an alignment model checkpoint; captions need a generator "
                              "checkpoint (--model generator)" % checkpoint_path)
    if not os.path.isdir(root):
        raise NeuralTalkError("image folder %s does not exist (set it with -r)" % root)
    names = read_tasks(root, params)
    width = captioning.input_width(model)
    regions = None
    if getattr(module_of(params), "NEEDS_REGIONS", False):
        regions = folder_regions(root, names, width, checkpoint_path)
        feats = regions.feats[:, 0]  # unused by the generator: it reads the regions
    else:
        feats = image_features(root, names, params)
    if feats.shape[1] != width:
        raise NeuralTalkError(
            "the features in %s are %d-d but %s was trained on %d-d features: use the same "
            "CNN as in training" % (root, feats.shape[1], checkpoint_path, width))
    t0 = time.time()
    blobs = []
    beams = decode_in_batches(model, params, feats, beam_size,
                              regions=None if regions is None else regions.rows,
                              return_weights=regions is not None)
    for n, (name, image_beams) in enumerate(zip(names, beams)):
        logprob, sequence = image_beams[0][:2]
        blobs.append({"img_path": name, "candidate": {
            "text": caption_text(checkpoint["ixtoword"], sequence), "logprob": logprob}})
        if regions is not None:
            attention_picture(blobs[-1], root, n, sequence, image_beams[0][2], regions,
                              checkpoint["ixtoword"])
        print("%s: %s (logprob %.2f)" % (name, blobs[-1]["candidate"]["text"], logprob))
    print("captioned %d images in %.1fs (beam size %d)" % (len(names), time.time() - t0,
                                                            beam_size))
    write_json(os.path.join(root, "result_struct.json"),
               {"params": {"checkpoint_path": checkpoint_path, "root_path": root,
                           "beam_size": beam_size},
                "checkpoint_params": params, "imgblobs": blobs})
    write_prediction_page(os.path.join(root, "result.html"), blobs, root)
    print("wrote %s and %s" % (os.path.join(root, "result_struct.json"),
                               os.path.join(root, "result.html")))
    return blobs


DEMO_CNN = "shapes-extractor"  # the features of the demo dataset, made from its renders


def predict_without_folder(checkpoint_path, seed=0, num_images=6, beam_size=1):
    """predict_on_images.py CHECKPOINT with no -r: a checkpoint trained on the demo's
    features captions `num_images` fresh scenes of `seed`, rendered into a new folder
    beside it; any other checkpoint gets one line saying what to pass."""
    checkpoint = load_checkpoint(checkpoint_path)
    params = checkpoint["params"]
    if not is_generator(params):
        raise NeuralTalkError("%s is an alignment model checkpoint; captions need a generator "
                              "checkpoint (--model generator)" % checkpoint_path)
    cnn = params.get("cnn")
    if cnn != DEMO_CNN:
        if runnable_cnn(params):
            what = "a folder of photos (their %s features are computed here)" % cnn
        elif cnn in (None, "vgg16"):
            what = ("a folder with tasks.txt and the images' VGG-16 features (python -m "
                    "neuraltalk.features DIR --cnn vgg16 --weights FILE writes them)")
        else:
            what = ("a folder with tasks.txt and the images' %r features as vgg_feats.mat "
                    "(D x N)" % cnn)
        raise NeuralTalkError("give the images to caption with -r DIR: %s, which was not "
                              "trained on the demo's scenes, needs %s" % (checkpoint_path, what))
    if num_images < 1:
        raise NeuralTalkError("--num_images must be at least 1, got %d" % num_images)
    root = render_demo_folder(os.path.dirname(os.path.abspath(checkpoint_path)), seed,
                              num_images)
    print("rendered %d demo scenes (seed %d) into %s" % (num_images, seed, root))
    blobs = predict_folder(checkpoint_path, root, beam_size, checkpoint)
    print("the page: %s" % os.path.join(root, "result.html"))
    return blobs


def render_demo_folder(parent, seed, n):
    """A new folder `demo_scenes_seed<seed>` (or `..._2`, `..._3`, ...: an existing folder is
    never written into) in `parent`, holding n fresh scenes, their tasks.txt and their
    regions.h5 (the whole image and each object's box, as the demo dataset's), which a
    generator that attends reads."""
    from PIL import Image
    from neuraltalk.atomic import atomic_write_text
    from neuraltalk.data.regions import save_regions
    from neuraltalk.demo.extractor import region_features
    from neuraltalk.demo.scenes import SIZE, fresh_scenes
    base = os.path.join(parent, "demo_scenes_seed%d" % seed)
    for k in range(1, 1000):
        root = base if k == 1 else "%s_%d" % (base, k)
        try:
            os.mkdir(root)  # atomic: the folder is ours only if this call made it
            break
        except FileExistsError:
            continue
        except OSError as e:
            raise NeuralTalkError("cannot create %s for the demo scenes: %s: give a folder of "
                                  "images with -r DIR" % (root, e.strerror)) from None
    else:
        raise NeuralTalkError("%s_2 .. _999 all exist: remove old demo folders" % base)
    names = []
    scenes = fresh_scenes(seed, n)
    boxes = np.zeros((n, 1 + max(len(objects) for objects, _ in scenes), 4), np.int32)
    boxes[:, 0] = (0, 0, SIZE, SIZE)
    for k, (objects, pixels) in enumerate(scenes):
        names.append("scene%02d.png" % k)
        Image.fromarray(pixels).save(os.path.join(root, names[-1]))
        boxes[k, 1:1 + len(objects)] = [o["box"] for o in objects]
    counts = np.array([1 + len(objects) for objects, _ in scenes], np.int32)
    save_regions(os.path.join(root, "regions.h5"),
                 region_features(np.stack([p for _, p in scenes]), boxes, counts), boxes, counts)
    atomic_write_text(os.path.join(root, "tasks.txt"), "".join(n + "\n" for n in names))
    return root
