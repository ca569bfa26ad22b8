"""Region captions: a generator trained on (region, snippet) pairs the MRF produces.

    python -m neuraltalk.region_captions cv/<alignment checkpoint>.p --out data/shapes_regions
    python driver.py --dataset data/shapes_regions --max_epochs 20
    python eval_sentence_predictions.py cv/model_checkpoint_shapes_regions_*.p

The first command aligns every sentence of every split to its image's regions (the MRF
of neuraltalk/mrf.py) and writes a dataset in Karpathy's format whose "images" are the
regions (region 0, the whole image, left out) and whose sentences are the snippets
assigned to them, with the region features as `vgg_feats.npy`. The normal generator
trains on it, and eval_sentence_predictions.py captions the regions of the test images
(and, on the demo dataset, checks the colours and shapes each names).
"""
import argparse
import json
import os
import sys

import numpy as np

from neuraltalk.errors import NeuralTalkError


def build(checkpoint, out, beta=None, data_root=None, min_words=2):
    from neuraltalk.mrf import align_split
    from neuraltalk.regions import load_regions
    regions_of = {}
    for split in ("train", "val", "test"):
        dataset, items = align_split(checkpoint, split, beta=beta, data_root=data_root)
        for item in items:
            for region, text in item["snippets"]:
                if region > 0 and len(text.split()) >= min_words:
                    regions_of.setdefault((item["imgid"], region), []).append(text.split())
    params = checkpoint["params"]
    regions = load_regions(params.get("regions") or dataset.folder, len(dataset.images))
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
    from neuraltalk.checkpoint import atomic_write_text
    atomic_write_text(os.path.join(out, "dataset.json"),
                      json.dumps({"dataset": os.path.basename(os.path.normpath(out)),
                                  "images": images}))
    np.save(os.path.join(out, "vgg_feats.npy"), feats.astype(np.float32))
    atomic_write_text(os.path.join(out, "features.json"),
                      json.dumps({"cnn": dataset.cnn, "regions_of": dataset.folder}))
    return images


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint_path", help="an alignment model checkpoint (--model brnn)")
    p.add_argument("--out", required=True, help="folder of the region dataset to write")
    p.add_argument("--beta", type=float, default=None, help="MRF smoothness (default: the checkpoint's)")
    p.add_argument("--min_words", type=int, default=2, help="shortest snippet kept")
    p.add_argument("--data_root", default=None)
    args = p.parse_args(argv)
    from neuraltalk.checkpoint import load_checkpoint
    try:
        images = build(load_checkpoint(args.checkpoint_path), args.out, args.beta,
                       args.data_root, args.min_words)
    except NeuralTalkError as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    counts = {s: sum(img["split"] == s for img in images) for s in ("train", "val", "test")}
    print("wrote %s: %d regions (%s) with %d snippets; train a captioner with "
          "python driver.py --dataset %s" % (
              args.out, len(images), ", ".join("%s %d" % kv for kv in counts.items()),
              sum(len(img["sentences"]) for img in images), args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
