"""python -m neuraltalk.prepare: Karpathy's dataset.json from raw caption files."""
import json

import pytest

from neuraltalk.prepare import main, tokenize


def test_tokenize_as_karpathy():
    assert tokenize("A man's dog, running on the beach.") == \
        ["a", "man", "s", "dog", "running", "on", "the", "beach"]
    assert tokenize("Two kids -- playing   in 3 pools!") == ["two", "kids", "playing", "in", "3", "pools"]


def test_coco_captions_with_a_split_file(tmp_path):
    captions = {"images": [{"id": 42, "file_name": "COCO_train2014_042.jpg"},
                           {"id": 7, "file_name": "COCO_train2014_007.jpg"}],
                "annotations": [{"image_id": 42, "caption": "A cat."},
                                {"image_id": 7, "caption": "Two dogs run."},
                                {"image_id": 42, "caption": "A cat sleeping"}]}
    (tmp_path / "captions_train2014.json").write_text(json.dumps(captions))
    (tmp_path / "splits.txt").write_text("COCO_train2014_042.jpg test\n")
    out = tmp_path / "coco"
    assert main(["coco", "--captions", str(tmp_path / "captions_train2014.json"),
                 "--splits", str(tmp_path / "splits.txt"), "--out", str(out)]) == 0
    blob = json.load(open(out / "dataset.json"))
    first, second = blob["images"]
    assert blob["dataset"] == "coco"
    assert (first["cocoid"], first["split"], first["imgid"]) == (7, "restval", 0)
    assert (second["cocoid"], second["split"], second["filepath"]) == (42, "test", "train2014")
    assert [s["tokens"] for s in second["sentences"]] == [["a", "cat"], ["a", "cat", "sleeping"]]
    assert second["sentids"] == [1, 2] and second["sentences"][0]["raw"] == "A cat."


def test_flickr_token_file_and_lists(tmp_path):
    (tmp_path / "tok.txt").write_text("a.jpg#0\tA dog .\na.jpg#1\tA brown dog runs\n"
                                      "b.jpg#0\tA girl .\nc.jpg#0\tnot listed\n")
    for split, names in (("train", "a.jpg\n"), ("val", ""), ("test", "b.jpg\n")):
        (tmp_path / (split + ".txt")).write_text(names)
    out = tmp_path / "flickr8k"
    assert main(["flickr", "--tokens", str(tmp_path / "tok.txt"), "--train",
                 str(tmp_path / "train.txt"), "--val", str(tmp_path / "val.txt"), "--test",
                 str(tmp_path / "test.txt"), "--out", str(out)]) == 0
    images = json.load(open(out / "dataset.json"))["images"]
    assert [(i["filename"], i["split"], len(i["sentences"])) for i in images] == \
        [("a.jpg", "train", 2), ("b.jpg", "test", 1)]
    assert images[0]["sentences"][1]["tokens"] == ["a", "brown", "dog", "runs"]


@pytest.mark.parametrize("content, message", [
    ("a.jpg\tno number\n", "expected 'IMAGE.jpg#N<TAB>caption'"),
    ("a.jpg#0 no tab\n", "expected 'IMAGE.jpg#N<TAB>caption'"),
])
def test_malformed_token_file(tmp_path, capsys, content, message):
    (tmp_path / "tok.txt").write_text(content)
    (tmp_path / "l.txt").write_text("")
    assert main(["flickr", "--tokens", str(tmp_path / "tok.txt"), "--train",
                 str(tmp_path / "l.txt"), "--val", str(tmp_path / "l.txt"), "--test",
                 str(tmp_path / "l.txt"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message in err and "tok.txt line 1" in err


def test_missing_caption_file(tmp_path, capsys):
    assert main(["coco", "--captions", str(tmp_path / "nope.json"), "--out", str(tmp_path)]) == 2
    assert "cannot read" in capsys.readouterr().err
