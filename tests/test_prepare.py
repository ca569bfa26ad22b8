"""python -m neuraltalk.prepare: Karpathy's dataset.json from raw caption files."""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from neuraltalk.data.dataset import load_dataset
from neuraltalk.data.prepare import tokenize
from neuraltalk.prepare import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_tokenize_lowercases_and_keeps_alphanumeric_tokens():
    assert tokenize("A man's dog, running on the beach.") == \
        ["a", "man", "s", "dog", "running", "on", "the", "beach"]
    assert tokenize("Two kids -- playing   in 3 pools!") == \
        ["two", "kids", "playing", "in", "3", "pools"]
    assert tokenize('A "T-shirt" (red); 2nd... ') == ["a", "t", "shirt", "red", "2nd"]
    assert tokenize(" . ") == []


def test_tokenize_needs_no_nltk_data(monkeypatch):
    import nltk.data
    monkeypatch.setattr(nltk.data, "path", [])  # any nltk.data.load would now fail
    with pytest.raises(LookupError):
        nltk.data.find("tokenizers/punkt")
    assert tokenize("A cat sleeping.") == ["a", "cat", "sleeping"]


# ---- COCO --------------------------------------------------------------------------------

def write_coco(tmp_path, name="captions_train2014.json", images=None, annotations=None):
    images = images if images is not None else [
        {"id": 42, "file_name": "COCO_train2014_042.jpg"},
        {"id": 7, "file_name": "COCO_train2014_007.jpg"}]
    annotations = annotations if annotations is not None else [
        {"image_id": 42, "id": 1, "caption": "A cat."},
        {"image_id": 7, "id": 2, "caption": "Two dogs run. "},
        {"image_id": 42, "id": 3, "caption": "A cat sleeping"}]
    path = tmp_path / name
    path.write_text(json.dumps({"info": {}, "images": images, "annotations": annotations}))
    return str(path)


def run_coco(tmp_path, *args, out="coco"):
    return main(["coco", "--captions"] + [str(a) for a in args] + ["--out", str(tmp_path / out)])


def test_coco_captions_with_a_split_file(tmp_path):
    captions = write_coco(tmp_path)
    (tmp_path / "splits.txt").write_text("# file split\nCOCO_train2014_042.jpg test\n\n")
    assert main(["coco", "--captions", captions, "--splits", str(tmp_path / "splits.txt"),
                 "--out", str(tmp_path / "coco")]) == 0
    blob = json.loads((tmp_path / "coco" / "dataset.json").read_text())
    assert blob["dataset"] == "coco"
    first, second = blob["images"]  # ordered by id
    assert first == {"filename": "COCO_train2014_007.jpg", "imgid": 0, "split": "restval",
                     "sentids": [0], "filepath": "train2014", "cocoid": 7, "sentences": [
                         {"tokens": ["two", "dogs", "run"], "raw": "Two dogs run.",
                          "imgid": 0, "sentid": 0}]}
    assert (second["cocoid"], second["split"], second["imgid"]) == (42, "test", 1)
    assert [s["tokens"] for s in second["sentences"]] == [["a", "cat"], ["a", "cat", "sleeping"]]
    assert second["sentids"] == [1, 2] and [s["imgid"] for s in second["sentences"]] == [1, 1]
    assert os.listdir(str(tmp_path / "coco")) == ["dataset.json"]  # no temporary left


def test_coco_several_files_default_split_and_the_result_loads(tmp_path):
    train = write_coco(tmp_path)
    val = write_coco(tmp_path, "captions_val2014.json",
                     images=[{"id": 3, "file_name": "COCO_val2014_003.jpg"}],
                     annotations=[{"image_id": 3, "caption": "A bird."}])
    (tmp_path / "splits.txt").write_text("COCO_val2014_003.jpg val\n")
    assert main(["coco", "--captions", train, val, "--splits", str(tmp_path / "splits.txt"),
                 "--default_split", "train", "--out", str(tmp_path / "coco")]) == 0
    folder = str(tmp_path / "coco")
    np.save(os.path.join(folder, "vgg_feats.npy"), np.eye(3, dtype=np.float32))
    data = load_dataset(folder)
    assert [(i["filepath"], i["cocoid"], i["split"]) for i in data.images] == \
        [("train2014", 7, "train"), ("train2014", 42, "train"), ("val2014", 3, "val")]
    assert [s["sentid"] for i in data.images for s in i["sentences"]] == [0, 1, 2, 3]


@pytest.mark.parametrize("images, annotations, message", [
    ([{"id": 1}], [], r"images\[0\] lacks 'id' or 'file_name'"),
    ([{"id": 1, "file_name": "a.jpg"}, {"id": 1, "file_name": "b.jpg"}], [],
     "image id 1 appears twice"),
    ([{"id": 1, "file_name": "a.jpg"}], [{"image_id": 1}],
     r"annotations\[0\] lacks 'image_id' or a 'caption' string"),
    ([{"id": 1, "file_name": "a.jpg"}], [{"image_id": 2, "caption": "x"}],
     r"annotations\[0\] is about image_id 2, which is not in its 'images'"),
])
def test_coco_malformed_entries(tmp_path, capsys, images, annotations, message):
    path = write_coco(tmp_path, images=images, annotations=annotations)
    assert run_coco(tmp_path, path) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: " + path) and re.search(message, err)
    assert not (tmp_path / "coco").exists()


def test_coco_file_that_is_not_a_captions_file(tmp_path, capsys):
    (tmp_path / "x.json").write_text(json.dumps({"images": []}))
    assert run_coco(tmp_path, tmp_path / "x.json") == 2
    assert "x.json is not an MS-COCO captions file" in capsys.readouterr().err
    (tmp_path / "y.json").write_text('{"images": [}')
    assert run_coco(tmp_path, tmp_path / "y.json") == 2
    assert "y.json is not valid JSON: Expecting value at line 1, column 13" in \
        capsys.readouterr().err


def test_coco_image_in_two_captions_files(tmp_path, capsys):
    a = write_coco(tmp_path)
    b = write_coco(tmp_path, "captions_val2014.json")
    assert run_coco(tmp_path, a, b) == 2
    assert "%s: image COCO_train2014_042.jpg is also in %s" % (b, a) in capsys.readouterr().err


@pytest.mark.parametrize("lines, message", [
    ("COCO_train2014_042.jpg\n", "splits.txt line 1: expected '<file_name> <split>'"),
    ("x.jpg test\nCOCO_train2014_042.jpg dev\n", "splits.txt line 2: expected"),
    ("COCO_train2014_042.jpg test\nCOCO_train2014_042.jpg val\n",
     "splits.txt line 2: COCO_train2014_042.jpg is listed in both test and val"),
    ("COCO_val2014_999.jpg test\n",
     "splits.txt lists 1 images that are in none of the captions files (first: "
     "COCO_val2014_999.jpg)"),
])
def test_coco_bad_split_file(tmp_path, capsys, lines, message):
    (tmp_path / "splits.txt").write_text(lines)
    assert main(["coco", "--captions", write_coco(tmp_path), "--splits",
                 str(tmp_path / "splits.txt"), "--out", str(tmp_path / "o")]) == 2
    assert message in capsys.readouterr().err


def test_missing_caption_file(tmp_path, capsys):
    assert run_coco(tmp_path, tmp_path / "nope.json") == 2
    err = capsys.readouterr().err
    assert "error: cannot read %s: No such file or directory" % (tmp_path / "nope.json") in err


# ---- Flickr ------------------------------------------------------------------------------

TOKENS = ("a.jpg#0\tA dog .\na.jpg#1\tA brown dog runs\n"
          "b.jpg#0\tA girl .\nc.jpg#0\tnot listed\nd.jpg#0\tA red car .\n")


def run_flickr(tmp_path, tokens=TOKENS, train="a.jpg\n", val="d.jpg\n", test="b.jpg\n"):
    (tmp_path / "tok.txt").write_text(tokens)
    for split, names in (("train", train), ("val", val), ("test", test)):
        (tmp_path / (split + ".txt")).write_text(names)
    return main(["flickr", "--tokens", str(tmp_path / "tok.txt"),
                 "--train", str(tmp_path / "train.txt"), "--val", str(tmp_path / "val.txt"),
                 "--test", str(tmp_path / "test.txt"), "--out", str(tmp_path / "flickr8k")])


def test_flickr_token_file_and_lists(tmp_path, capsys):
    assert run_flickr(tmp_path) == 0
    assert "3 images (train 1, val 1, test 1, restval 0), 4 sentences" in capsys.readouterr().out
    blob = json.loads((tmp_path / "flickr8k" / "dataset.json").read_text())
    assert blob["dataset"] == "flickr8k"
    images = blob["images"]
    assert [(i["filename"], i["imgid"], i["split"], i["sentids"]) for i in images] == \
        [("a.jpg", 0, "train", [0, 1]), ("d.jpg", 1, "val", [2]), ("b.jpg", 2, "test", [3])]
    assert images[0]["sentences"][1] == {"tokens": ["a", "brown", "dog", "runs"],
                                         "raw": "A brown dog runs", "imgid": 0, "sentid": 1}
    assert "filepath" not in images[0] and "cocoid" not in images[0]


@pytest.mark.parametrize("content", [
    "a.jpg\tno number\n", "a.jpg#0 no tab\n", "a.jpg#x\tletter\n", "#0\tno name\n"])
def test_malformed_token_file(tmp_path, capsys, content):
    assert run_flickr(tmp_path, tokens=TOKENS + content) == 2
    err = capsys.readouterr().err
    assert "tok.txt line 6: expected 'IMAGE.jpg#N<TAB>caption', got %r" % content.strip() in err


def test_listed_image_without_captions(tmp_path, capsys):
    assert run_flickr(tmp_path, test="b.jpg\nzzz.jpg\n") == 2
    assert "test.txt line 2: zzz.jpg has no captions in" in capsys.readouterr().err


def test_image_listed_twice(tmp_path, capsys):
    assert run_flickr(tmp_path, val="d.jpg\na.jpg\n") == 2
    assert "val.txt line 2: a.jpg is listed twice (also in" in capsys.readouterr().err


def test_help_documents_the_split_file_format():
    out = subprocess.run([sys.executable, "-m", "neuraltalk.prepare", "coco", "--help"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and "'<file_name> <split>' lines" in out.stdout


# ---- the output --------------------------------------------------------------------------

def test_an_existing_dataset_json_is_not_overwritten(tmp_path, capsys):
    (tmp_path / "coco").mkdir()
    (tmp_path / "coco" / "dataset.json").write_text("the user's")
    assert run_coco(tmp_path, write_coco(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "dataset.json exists" in err and "--overwrite" in err
    assert (tmp_path / "coco" / "dataset.json").read_text() == "the user's"


def test_overwrite_replaces_an_existing_dataset_json(tmp_path):
    (tmp_path / "coco").mkdir()
    (tmp_path / "coco" / "dataset.json").write_text("old")
    assert main(["coco", "--captions", write_coco(tmp_path), "--out", str(tmp_path / "coco"),
                 "--overwrite"]) == 0
    assert len(json.loads((tmp_path / "coco" / "dataset.json").read_text())["images"]) == 2


def test_an_input_is_never_the_output_even_with_overwrite(tmp_path, capsys):
    (tmp_path / "coco").mkdir()
    captions = write_coco(tmp_path)
    os.symlink(captions, tmp_path / "coco" / "dataset.json")  # the same file by another name
    before = open(captions).read()
    assert main(["coco", "--captions", captions, "--out", str(tmp_path / "coco"),
                 "--overwrite"]) == 2
    assert "is also an input" in capsys.readouterr().err
    assert open(captions).read() == before


def test_an_out_that_is_a_file_is_one_clear_error(tmp_path, capsys):
    (tmp_path / "coco").write_text("a file")
    assert run_coco(tmp_path, write_coco(tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --out ") and "is a file, not a folder" in err


@pytest.mark.parametrize("ids, message", [
    ([42, "7"], r"images\[1\] has id '7', a str, but images\[0\]'s is an int"),
    ([42, [7]], r"images\[1\] has id \[7\]: ids must be integers"),
    ([True, 7], r"images\[0\] has id True: ids must be integers"),
])
def test_coco_ids_of_mixed_or_wrong_types(tmp_path, capsys, ids, message):
    images = [{"id": i, "file_name": "%d.jpg" % n} for n, i in enumerate(ids)]
    path = write_coco(tmp_path, images=images, annotations=[])
    assert run_coco(tmp_path, path) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: " + path) and re.search(message, err), err


def test_coco_annotation_with_an_unhashable_image_id(tmp_path, capsys):
    path = write_coco(tmp_path, annotations=[{"image_id": [42], "caption": "A cat."}])
    assert run_coco(tmp_path, path) == 2
    assert re.search(r"annotations\[0\] is about image_id \[42\], which is not in its 'images'",
                     capsys.readouterr().err)
