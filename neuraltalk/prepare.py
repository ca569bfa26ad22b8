"""Write Karpathy's dataset.json from the caption files people download.

    python -m neuraltalk.prepare coco --captions captions_train2014.json captions_val2014.json \
        --splits karpathy_splits.txt --out data/coco
    python -m neuraltalk.prepare flickr --tokens Flickr8k.token.txt \
        --train Flickr_8k.trainImages.txt --val Flickr_8k.devImages.txt \
        --test Flickr_8k.testImages.txt --out data/flickr8k

COCO: the captions JSON files ("images" with id, file_name; "annotations" with
image_id, caption), and a split file of `<file_name> <split>` lines (split: train, val,
test or restval); images it does not list go to --default_split (restval). Flickr: the
token file (`IMAGE.jpg#N<TAB>caption`) and the three image lists; images in none of the
lists are left out. Captions are tokenised with nltk's Treebank tokenizer (it needs no
downloaded data), lowercased and reduced to alphanumeric tokens, as in Karpathy's files.
"""
import argparse
import json
import os
import re
import sys

from neuraltalk.checkpoint import atomic_write_text
from neuraltalk.errors import NeuralTalkError

SPLITS = ("train", "val", "test", "restval")


def tokenize(caption):
    """'A man's dog, running.' -> ['a', 'man', 's', 'dog', 'running']"""
    from nltk.tokenize import TreebankWordTokenizer
    tokens = []
    for token in TreebankWordTokenizer().tokenize(caption.lower()):
        tokens += [t for t in re.split(r"[^a-z0-9]+", token) if t]
    return tokens


def build(name, entries):
    """entries: (filename, split, [raw captions], extra dict) in image order."""
    images = []
    sentid = 0
    for imgid, (filename, split, captions, extra) in enumerate(entries):
        sentences = []
        for raw in captions:
            sentences.append({"tokens": tokenize(raw), "raw": raw, "imgid": imgid,
                              "sentid": sentid})
            sentid += 1
        images.append(dict({"filename": filename, "imgid": imgid, "split": split,
                            "sentids": [s["sentid"] for s in sentences],
                            "sentences": sentences}, **extra))
    return {"dataset": name, "images": images}


def read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as e:
        raise NeuralTalkError("cannot read %s: %s" % (path, e.strerror)) from None
    except json.JSONDecodeError as e:
        raise NeuralTalkError("%s is not valid JSON: %s at line %d" % (path, e.msg, e.lineno)) from None


def read_lines(path):
    try:
        with open(path, encoding="utf-8") as f:
            return [line.rstrip("\n") for line in f if line.strip()]
    except OSError as e:
        raise NeuralTalkError("cannot read %s: %s" % (path, e.strerror)) from None


def coco_entries(caption_files, split_file, default_split):
    splits = {}
    if split_file:
        for n, line in enumerate(read_lines(split_file), 1):
            parts = line.split()
            if len(parts) != 2 or parts[1] not in SPLITS:
                raise NeuralTalkError("%s line %d: expected '<file_name> <split>' with split one "
                                      "of %s, got %r" % (split_file, n, ", ".join(SPLITS), line))
            splits[parts[0]] = parts[1]
    entries = []
    for path in caption_files:
        blob = read_json(path)
        if not isinstance(blob, dict) or "images" not in blob or "annotations" not in blob:
            raise NeuralTalkError("%s is not an MS-COCO captions file: it needs 'images' and "
                                  "'annotations'" % path)
        folder = os.path.splitext(os.path.basename(path))[0].replace("captions_", "")
        captions = {}
        for a in blob["annotations"]:
            try:
                captions.setdefault(a["image_id"], []).append(a["caption"].strip())
            except (KeyError, TypeError, AttributeError):
                raise NeuralTalkError("%s: an annotation lacks image_id or caption: %r"
                                      % (path, a)) from None
        for img in sorted(blob["images"], key=lambda i: i["id"]):
            entries.append((img["file_name"], splits.get(img["file_name"], default_split),
                            captions.get(img["id"], []),
                            {"filepath": folder, "cocoid": img["id"]}))
    return entries


def flickr_entries(token_file, lists):
    captions = {}
    for n, line in enumerate(read_lines(token_file), 1):
        if "\t" not in line or "#" not in line.split("\t")[0]:
            raise NeuralTalkError("%s line %d: expected 'IMAGE.jpg#N<TAB>caption', got %r"
                                  % (token_file, n, line[:80]))
        key, caption = line.split("\t", 1)
        captions.setdefault(key.rsplit("#", 1)[0], []).append(caption.strip())
    entries = []
    for split, path in lists.items():
        for name in read_lines(path):
            name = name.strip()
            if name not in captions:
                raise NeuralTalkError("%s lists %s, which has no captions in %s"
                                      % (path, name, token_file))
            entries.append((name, split, captions[name], {}))
    return entries


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="source", required=True)
    c = sub.add_parser("coco", help="from MS-COCO captions JSON files")
    c.add_argument("--captions", nargs="+", required=True, help="captions_*.json files")
    c.add_argument("--splits", help="file of '<file_name> <split>' lines")
    c.add_argument("--default_split", default="restval", choices=SPLITS,
                   help="split of images the split file does not list")
    f = sub.add_parser("flickr", help="from a Flickr8k/Flickr30k token file and split lists")
    f.add_argument("--tokens", required=True, help="e.g. Flickr8k.token.txt")
    f.add_argument("--train", required=True, help="training image list")
    f.add_argument("--val", required=True, help="validation image list")
    f.add_argument("--test", required=True, help="test image list")
    for s in (c, f):
        s.add_argument("--out", required=True, help="dataset folder to write dataset.json into")
        s.add_argument("--name", default=None, help="dataset name (default: the folder's)")
    args = p.parse_args(argv)
    try:
        if args.source == "coco":
            entries = coco_entries(args.captions, args.splits, args.default_split)
        else:
            entries = flickr_entries(args.tokens, {"train": args.train, "val": args.val,
                                                   "test": args.test})
        name = args.name or os.path.basename(os.path.normpath(args.out))
        blob = build(name, entries)
        path = os.path.join(args.out, "dataset.json")
        atomic_write_text(path, json.dumps(blob))
    except NeuralTalkError as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    counts = {s: sum(img["split"] == s for img in blob["images"]) for s in SPLITS}
    print("wrote %s: %d images (%s), %d sentences" % (
        path, len(blob["images"]), ", ".join("%s %d" % kv for kv in counts.items()),
        sum(len(img["sentences"]) for img in blob["images"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
