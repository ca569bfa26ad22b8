"""Region captions: a generator trained on (region, snippet) pairs the MRF produces.

    python -m neuraltalk.region_captions cv/<alignment checkpoint>.p --out data/shapes_regions
    python driver.py --dataset data/shapes_regions --max_epochs 20
    python -m neuraltalk.region_captions cv/model_checkpoint_shapes_regions_*.p

The first command aligns every sentence of every split to its image's regions (the MRF
of neuraltalk/mrf.py) and writes a dataset in Karpathy's format whose "images" are the
regions (region 0, the whole image, left out) and whose sentences are the snippets
assigned to them, with the region features as `vgg_feats.npy`; `features.json` names the
source dataset. The normal generator trains on it (and eval_sentence_predictions.py
scores it like any generator). Given that generator's checkpoint, the same command
captions every region of every image of the source dataset's test split (`--split`),
whether or not the MRF gave it a snippet, and writes region_captions.json and
region_captions.html (each image with its boxes, each box's caption beside it); on the
demo dataset it also reports the fraction of region captions that name only the
colour and shape of the region's object.
"""
import html
import json
import os

import numpy as np

from neuraltalk.errors import NeuralTalkError
from neuraltalk.models import is_generator


REGION_DATASET_FILES = ("dataset.json", "vgg_feats.npy", "features.json")


def check_region_dataset_out(out, params, data_root=None, overwrite=False):
    """Refuse to write the region dataset over the dataset it is made from (whatever
    --overwrite says), over an existing dataset without --overwrite, or beside a feature
    file that would be read instead of its vgg_feats.npy."""
    from neuraltalk.data.dataset import resolve_folder
    from neuraltalk.data.feature_files import FEATURE_FILE_NAMES
    if os.path.exists(out) and not os.path.isdir(out):
        raise NeuralTalkError("--out %s is a file, not a folder: give the region dataset's "
                              "folder" % out)
    source = resolve_folder(params["dataset"], data_root or params.get("data_root", "data"))
    regions = params.get("regions")
    read = [source] + ([regions if os.path.isdir(regions) else os.path.dirname(regions)]
                       if regions else [])
    for folder in read:
        if os.path.isdir(folder) and os.path.isdir(out) and os.path.samefile(folder, out):
            raise NeuralTalkError("--out %s is the dataset the regions come from (%s): write "
                                  "the region dataset to a folder of its own" % (out, folder))
    present = [name for name in REGION_DATASET_FILES if os.path.exists(os.path.join(out, name))]
    if present and not overwrite:
        raise NeuralTalkError("%s exists: give --overwrite to replace the dataset there, or "
                              "another --out" % os.path.join(out, present[0]))
    shadows = [name for name in FEATURE_FILE_NAMES if name != "vgg_feats.npy"
               and os.path.exists(os.path.join(out, name))]
    if shadows:
        raise NeuralTalkError("%s would be read instead of the region features this writes "
                              "(vgg_feats.npy): remove it, or choose another --out"
                              % os.path.join(out, shadows[0]))


def build(checkpoint, out, beta=None, data_root=None, min_words=2, overwrite=False):
    from neuraltalk.alignment.mrf import align_split
    from neuraltalk.data.regions import regions_of_checkpoint
    check_region_dataset_out(out, checkpoint["params"], data_root, overwrite)
    regions_of = {}
    for split in ("train", "val", "test"):
        dataset, items = align_split(checkpoint, split, beta=beta, data_root=data_root)
        for item in items:
            for region, text in item["snippets"]:
                if region > 0 and len(text.split()) >= min_words:
                    regions_of.setdefault((item["imgid"], region), []).append(text.split())
    params = checkpoint["params"]
    regions = regions_of_checkpoint(params, dataset)
    keys = sorted(regions_of)
    if not keys:
        raise NeuralTalkError("the MRF assigned no snippet of %d or more words to any region; "
                              "try a larger --beta" % min_words)
    feats = np.stack([regions.rows([imgid])[0][0, r] for imgid, r in keys])
    images = []
    sentid = 0
    for n, (imgid, r) in enumerate(keys):
        source = dataset.images[imgid]
        sentences = []
        for tokens in regions_of[(imgid, r)]:
            sentences.append({"tokens": tokens, "raw": " ".join(tokens), "imgid": n,
                              "sentid": sentid})
            sentid += 1
        entry = {"filename": source.get("filename"), "filepath": os.path.relpath(
            os.path.join(dataset.folder, source.get("filepath", "")), out),
            "imgid": n, "split": source["split"], "sentids": [s["sentid"] for s in sentences],
            "sentences": sentences, "source_imgid": imgid, "region": r,
            "box": regions.boxes[imgid, r].tolist()}
        if "objects" in source and r - 1 < len(source["objects"]):
            entry["objects"] = [source["objects"][r - 1]]
        images.append(entry)
    os.makedirs(out, exist_ok=True)
    from neuraltalk.atomic import atomic_write, atomic_write_text
    atomic_write_text(os.path.join(out, "dataset.json"),
                      json.dumps({"dataset": os.path.basename(os.path.normpath(out)),
                                  "images": images}))
    atomic_write(os.path.join(out, "vgg_feats.npy"),
                 lambda f: np.save(f, feats.astype(np.float32)))
    atomic_write_text(os.path.join(out, "features.json"),
                      json.dumps({"cnn": dataset.cnn,
                                  "regions_of": os.path.abspath(dataset.folder)}))
    return images


def source_dataset(params, data_root=None, dataset=None):
    """The dataset whose regions a region captioner was trained on (features.json's
    regions_of beside the region dataset), or the one named by `dataset`."""
    from neuraltalk.data.dataset import load_dataset, read_json, resolve_folder
    root = data_root or params.get("data_root", "data")
    if dataset:
        return load_dataset(dataset, data_root=root)
    meta = os.path.join(resolve_folder(params["dataset"], root), "features.json")
    source = read_json(meta).get("regions_of") if os.path.exists(meta) else None
    if not source:
        raise NeuralTalkError("%s does not name the dataset whose regions it holds (no "
                              "regions_of): give it with --dataset" % meta)
    return load_dataset(source)


def caption_regions(checkpoint, split="test", beam_size=1, max_images=-1, data_root=None,
                    dataset=None):
    """Caption regions 1.. of every image of a split with a region captioner.

    Returns (dataset, items): items are dicts imgid, filename, filepath, boxes, and
    regions [{region, box, caption, logprob, (correct on the demo dataset)}]."""
    from neuraltalk.captions.decoding import beam_search, caption_text
    from neuraltalk.data.regions import load_regions
    params, model = checkpoint["params"], checkpoint["model"]
    if not is_generator(params):
        raise NeuralTalkError("captioning regions needs a generator checkpoint trained on a "
                              "region dataset, not an alignment model")
    source = source_dataset(params, data_root, dataset)
    regions = load_regions(source.folder, len(source.images))
    if regions.width != model["We"].shape[0]:
        raise NeuralTalkError("the generator takes %d-d features but the regions of %s are "
                              "%d-d: was it trained on this dataset's regions?"
                              % (model["We"].shape[0], source.folder, regions.width))
    images = source.split(split)
    if max_images > 0:
        images = images[:max_images]
    feats, counts = regions.rows([img["imgid"] for img in images])
    which = [(n, r) for n in range(len(images)) for r in range(1, counts[n])]
    if not which:
        raise NeuralTalkError("the %s images of %s have no regions besides the whole image"
                              % (split, source.folder))
    n_of, r_of = np.array(which).T
    beams = []
    for start in range(0, len(which), 256):  # all regions of many images in one search
        rows = feats[n_of[start:start + 256], r_of[start:start + 256]].astype(model["We"].dtype)
        beams += beam_search(model, params, rows, beam_size)
    from neuraltalk.demo.checker import caption_is_correct
    items = [{"imgid": img["imgid"], "filename": img.get("filename"),
              "filepath": img.get("filepath", ""),
              "boxes": regions.boxes[img["imgid"], :counts[n]].tolist(), "regions": []}
             for n, img in enumerate(images)]
    for (n, r), image_beams in zip(which, beams):
        logprob, sequence = image_beams[0]
        caption = caption_text(checkpoint["ixtoword"], sequence)
        entry = {"region": int(r), "box": items[n]["boxes"][r], "caption": caption,
                 "logprob": float(logprob)}
        objects = images[n].get("objects")
        if objects and r - 1 < len(objects):
            entry["correct"] = bool(caption_is_correct(caption.split(), [objects[r - 1]]))
        items[n]["regions"].append(entry)
    return source, items


def write_caption_page(path, dataset, items, max_items=200):
    """Each image with its region boxes, and each region's caption in its box's colour."""
    from neuraltalk.atomic import atomic_write_text
    from neuraltalk.alignment.mrf import boxes_on_image, image_file, region_colour
    folder = os.path.dirname(os.path.abspath(path))
    rows = []
    for item in items[:max_items]:
        captions = "".join('<div style="color:%s">region %d: %s</div>' % (
            region_colour(e["region"]), e["region"], html.escape(e["caption"]))
            for e in item["regions"])
        rows.append("<tr><td>%s</td><td>%s</td></tr>" % (
            boxes_on_image(image_file(dataset, item), item["boxes"], folder), captions))
    atomic_write_text(path, "<!DOCTYPE html><html><head><meta charset='utf-8'><title>region "
                      "captions</title></head><body><h1>Region captions</h1><p>Each caption "
                      "is coloured as its box.</p><table>%s</table></body></html>"
                      % "\n".join(rows))


def run(args):
    """The command's work: build a region dataset, or caption regions with a generator."""
    from neuraltalk.alignment.mrf import check_beta
    from neuraltalk.atomic import atomic_write_text
    from neuraltalk.train.checkpoint import load_checkpoint
    from neuraltalk.data.dataset import check_max_images
    from neuraltalk.train.runs import output_folder
    check_beta(args.beta)
    check_max_images(args.max_images)
    checkpoint = load_checkpoint(args.checkpoint_path)
    if not is_generator(checkpoint["params"]):
        if not args.out:
            raise NeuralTalkError("--out is required: the folder of the region dataset to write")
        images = build(checkpoint, args.out, args.beta, args.data_root, args.min_words,
                       args.overwrite)
        counts = {s: sum(img["split"] == s for img in images) for s in ("train", "val", "test")}
        print("wrote %s: %d regions (%s) with %d snippets; train a captioner with "
              "python driver.py --dataset %s" % (
                  args.out, len(images), ", ".join("%s %d" % kv for kv in counts.items()),
                  sum(len(img["sentences"]) for img in images), args.out))
        return 0
    out = output_folder(args.out or os.path.dirname(os.path.abspath(args.checkpoint_path)))
    dataset, items = caption_regions(checkpoint, args.split, args.beam_size, args.max_images,
                                     args.data_root, args.dataset)
    atomic_write_text(os.path.join(out, "region_captions.json"), json.dumps(items, indent=1))
    write_caption_page(os.path.join(out, "region_captions.html"), dataset, items)
    entries = [e for item in items for e in item["regions"]]
    print("captioned %d regions of %d %s images" % (len(entries), len(items), args.split))
    judged = [e["correct"] for e in entries if "correct" in e]
    if judged:
        print("region captions naming only their object's colour and shape: %.3f"
              % np.mean(judged))
    print("wrote %s and %s" % (os.path.join(out, "region_captions.json"),
                               os.path.join(out, "region_captions.html")))
    return 0

