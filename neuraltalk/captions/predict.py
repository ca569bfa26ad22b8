"""Caption a folder of images with a checkpoint, as NeuralTalk's predict_on_images.py.

The folder holds the images, `tasks.txt` (one image file name a line) and their CNN
features (`vgg_feats.mat`, D x N in tasks.txt order, or .npy / .h5). Writes
`result_struct.json` and `result.html` into the folder.
"""
import os
import time

from neuraltalk.train.checkpoint import load_checkpoint
from neuraltalk.captions.decoding import caption_text, decode_in_batches
from neuraltalk.errors import NeuralTalkError
from neuraltalk.models import captioning, is_generator, module_of
from neuraltalk.data.feature_files import FEATURE_FILE_NAMES, load_features
from neuraltalk.captions.report import write_attention_strip, write_json, write_prediction_page


def read_tasks(root):
    path = os.path.join(root, "tasks.txt")
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


def predict_folder(checkpoint_path, root, beam_size=1):
    checkpoint = load_checkpoint(checkpoint_path)
    model, params = checkpoint["model"], checkpoint["params"]
    if not is_generator(params):
        raise NeuralTalkError("%s is an alignment model checkpoint; captions need a generator "
                              "checkpoint (--model generator)" % checkpoint_path)
    if not os.path.isdir(root):
        raise NeuralTalkError("image folder %s does not exist (set it with -r)" % root)
    names = read_tasks(root)
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

