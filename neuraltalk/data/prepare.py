"""Write Karpathy's dataset.json from the caption files people download.

    python -m neuraltalk.prepare coco --captions captions_train2014.json captions_val2014.json \\
        --splits coco_splits.txt --out data/coco
    python -m neuraltalk.prepare flickr --tokens Flickr8k.token.txt \\
        --train Flickr_8k.trainImages.txt --val Flickr_8k.devImages.txt \\
        --test Flickr_8k.testImages.txt --out data/flickr8k

COCO: the captions JSON files ("images" with id and file_name; "annotations" with
image_id and caption). Each image gets "filepath" (the captions file's name without
"captions_" and ".json": captions_val2014.json -> val2014, the folder of its images) and
"cocoid". The split file has one `<file_name> <split>` line per image (split: train, val,
test or restval; blank lines and lines starting with # are skipped), for example
`COCO_val2014_000000391895.jpg test`; images it does not list go to --default_split
(restval, or train). Images are ordered as the captions files are given, by id within a
file.

Flickr8k / Flickr30k: the token file (`IMAGE.jpg#N<TAB>caption` lines) and the train,
val and test image lists (one file name per line); images in none of the lists are left
out; images are ordered train, val, test, each as its list.

Captions are tokenised with nltk's Treebank tokenizer (it needs no downloaded data),
lowercased and reduced to alphanumeric tokens, as in Karpathy's files. imgid runs 0..N-1
in the order above; sentid 0..S-1 in the same order. The features must then be computed
in imgid order: `python -m neuraltalk.features <out folder> --cnn ...` does that.

An existing dataset.json in --out is replaced only with --overwrite, and never when it
is one of the inputs.
"""
import json
import os
import re

from neuraltalk.atomic import atomic_write_text
from neuraltalk.errors import NeuralTalkError

SPLITS = ("train", "val", "test", "restval")
_TOKENIZER = []


def tokenize(caption):
    """'A man's dog, running.' -> ['a', 'man', 's', 'dog', 'running']"""
    if not _TOKENIZER:
        from nltk.tokenize import TreebankWordTokenizer  # pure regular expressions, no data
        _TOKENIZER.append(TreebankWordTokenizer())
    tokens = []
    for token in _TOKENIZER[0].tokenize(caption.lower()):
        tokens += [t for t in re.split(r"[^a-z0-9]+", token) if t]
    return tokens


def build(name, entries):
    """Karpathy's dataset dict. entries: (filename, split, [raw captions], extra dict) in
    imgid order."""
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
        raise NeuralTalkError("%s is not valid JSON: %s at line %d, column %d"
                              % (path, e.msg, e.lineno, e.colno)) from None
    except UnicodeDecodeError as e:
        raise NeuralTalkError("%s is not UTF-8 text: %s" % (path, e)) from None


def read_lines(path):
    """(line number, stripped line) of the non-blank lines of a text file."""
    try:
        with open(path, encoding="utf-8") as f:
            return [(n, line.strip()) for n, line in enumerate(f, 1) if line.strip()]
    except OSError as e:
        raise NeuralTalkError("cannot read %s: %s" % (path, e.strerror)) from None
    except UnicodeDecodeError as e:
        raise NeuralTalkError("%s is not UTF-8 text: %s" % (path, e)) from None


def read_split_file(path):
    """{file_name: split} from `<file_name> <split>` lines."""
    splits = {}
    for n, line in read_lines(path):
        if line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2 or parts[1] not in SPLITS:
            raise NeuralTalkError("%s line %d: expected '<file_name> <split>' with split one "
                                  "of %s, got %r" % (path, n, ", ".join(SPLITS), line[:80]))
        if parts[0] in splits and splits[parts[0]] != parts[1]:
            raise NeuralTalkError("%s line %d: %s is listed in both %s and %s"
                                  % (path, n, parts[0], splits[parts[0]], parts[1]))
        splits[parts[0]] = parts[1]
    return splits


def coco_entries(caption_files, split_file, default_split):
    """Image entries for build() from MS-COCO captions files and a split file."""
    splits = read_split_file(split_file) if split_file else {}
    entries = []
    seen = {}
    for path in caption_files:
        blob = read_json(path)
        if not isinstance(blob, dict) or not isinstance(blob.get("images"), list) \
                or not isinstance(blob.get("annotations"), list):
            raise NeuralTalkError("%s is not an MS-COCO captions file: it needs lists under "
                                  "'images' and 'annotations'" % path)
        base = os.path.splitext(os.path.basename(path))[0]
        filepath = base[len("captions_"):] if base.startswith("captions_") else base
        ids = {}
        for i, img in enumerate(blob["images"]):
            if not isinstance(img, dict) or "id" not in img or "file_name" not in img:
                raise NeuralTalkError("%s: images[%d] lacks 'id' or 'file_name'" % (path, i))
            check_id(path, i, img["id"], blob["images"][0]["id"])
            if img["id"] in ids:
                raise NeuralTalkError("%s: image id %r appears twice" % (path, img["id"]))
            if img["file_name"] in seen:
                raise NeuralTalkError("%s: image %s is also in %s" % (
                    path, img["file_name"], seen[img["file_name"]]))
            seen[img["file_name"]] = path
            ids[img["id"]] = img["file_name"]
        captions = {}
        for i, a in enumerate(blob["annotations"]):
            if not isinstance(a, dict) or not isinstance(a.get("caption"), str) \
                    or "image_id" not in a:
                raise NeuralTalkError("%s: annotations[%d] lacks 'image_id' or a 'caption' "
                                      "string" % (path, i))
            if not isinstance(a["image_id"], (int, str)) or a["image_id"] not in ids:
                raise NeuralTalkError("%s: annotations[%d] is about image_id %r, which is not "
                                      "in its 'images'" % (path, i, a["image_id"]))
            captions.setdefault(a["image_id"], []).append(a["caption"].strip())
        for cocoid in sorted(ids):
            name = ids[cocoid]
            entries.append((name, splits.get(name, default_split), captions.get(cocoid, []),
                            {"filepath": filepath, "cocoid": cocoid}))
    unknown = sorted(set(splits) - set(seen))
    if unknown:
        raise NeuralTalkError("%s lists %d images that are in none of the captions files "
                              "(first: %s): give every captions file the split file covers"
                              % (split_file, len(unknown), unknown[0]))
    return entries


def check_id(path, i, cocoid, first):
    """COCO image ids are integers; strings pass too, if every id of the file is one,
    since the images are sorted by id."""
    if isinstance(cocoid, bool) or not isinstance(cocoid, (int, str)):
        raise NeuralTalkError("%s: images[%d] has id %r: ids must be integers (or all strings)"
                              % (path, i, cocoid))
    if isinstance(cocoid, str) != isinstance(first, str):
        raise NeuralTalkError("%s: images[%d] has id %r, a %s, but images[0]'s is an %s: ids "
                              "must be all integers or all strings"
                              % (path, i, cocoid, type(cocoid).__name__, type(first).__name__))


def check_output(out, inputs, overwrite):
    """The path of dataset.json in `out`, refused when it exists (unless `overwrite`)
    and always when it is one of the input files."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise NeuralTalkError("--out %s is a file, not a folder: give the dataset's folder" % out)
    path = os.path.join(out, "dataset.json")
    if not os.path.exists(path):
        return path
    for name in inputs:
        if os.path.exists(name) and os.path.samefile(name, path):
            raise NeuralTalkError("%s is also an input (%s): write the dataset to another "
                                  "--out" % (path, name))
    if not overwrite:
        raise NeuralTalkError("%s exists: give --overwrite to replace it, or another --out"
                              % path)
    return path


def flickr_entries(token_file, lists):
    """Image entries for build() from a Flickr token file and {split: image list file}."""
    captions = {}
    for n, line in read_lines(token_file):
        key, tab, caption = line.partition("\t")
        name, hash_, number = key.rpartition("#")
        if not tab or not hash_ or not name or not number.strip().isdigit():
            raise NeuralTalkError("%s line %d: expected 'IMAGE.jpg#N<TAB>caption', got %r"
                                  % (token_file, n, line[:80]))
        captions.setdefault(name.strip(), []).append(caption.strip())
    entries = []
    listed = {}
    for split, path in lists.items():
        for n, name in read_lines(path):
            if name in listed:
                raise NeuralTalkError("%s line %d: %s is listed twice (also in %s)"
                                      % (path, n, name, listed[name]))
            if name not in captions:
                raise NeuralTalkError("%s line %d: %s has no captions in %s"
                                      % (path, n, name, token_file))
            listed[name] = path
            entries.append((name, split, captions[name], {}))
    return entries


def run(args):
    """The command's work: read the raw captions, write dataset.json."""
    if args.source == "coco":
        inputs = args.captions + ([args.splits] if args.splits else [])
    else:
        inputs = [args.tokens, args.train, args.val, args.test]
    path = check_output(args.out, inputs, args.overwrite)
    if args.source == "coco":
        entries = coco_entries(args.captions, args.splits, args.default_split)
    else:
        entries = flickr_entries(args.tokens, {"train": args.train, "val": args.val,
                                               "test": args.test})
    if not entries:
        raise NeuralTalkError("no images to write: the inputs list none")
    name = args.name or os.path.basename(os.path.normpath(args.out))
    blob = build(name, entries)
    atomic_write_text(path, json.dumps(blob))
    counts = {s: sum(img["split"] == s for img in blob["images"]) for s in SPLITS}
    print("wrote %s: %d images (%s), %d sentences" % (
        path, len(blob["images"]), ", ".join("%s %d" % kv for kv in counts.items()),
        sum(len(img["sentences"]) for img in blob["images"])))
    return 0

