"""Caption a test split and score it: what eval_sentence_predictions.py does.

Captions every image of the split (batched beam search), scores them against all
references (BLEU-1..4 as the COCO evaluation and as multi-bleu.perl, METEOR, ROUGE-L,
CIDEr-D), adds the validation perplexity, the fraction of captions found verbatim among
the training sentences and, on the demo dataset, the fraction of captions that name
only colours and shapes that are there. Writes result_struct.json and result.html.
"""
import os
import time

import numpy as np

from neuraltalk.data.batches import SentenceTable
from neuraltalk.train.checkpoint import load_checkpoint
from neuraltalk.data.dataset import check_max_images, load_dataset
from neuraltalk.captions.decoding import caption_text, decode_in_batches
from neuraltalk.errors import NeuralTalkError
from neuraltalk.metrics import COCO_KEYS, score_captions
from neuraltalk.models import captioning, is_generator, module_of
from neuraltalk.parallel import collectively, world
from neuraltalk.captions.report import (write_attention_strip, write_evaluation_page,
                                        write_json)
from neuraltalk.train.runs import output_folder


def evaluate_checkpoint(checkpoint_path, split="test", max_images=-1, beam_size=1,
                        out=None, data_root=None, with_meteor=True, checkpoint=None):
    """Caption a split with a generator checkpoint (read from checkpoint_path unless given)
    and score it; write result_struct.json and result.html into `out`. On the ranks of an
    MPI job the images are split across the ranks (decode_share) and rank 0 alone scores,
    prints and writes (the other ranks return None)."""
    check_max_images(max_images)
    checkpoint = checkpoint or load_checkpoint(checkpoint_path)
    params = checkpoint["params"]
    if not is_generator(params):
        raise NeuralTalkError("%s is an alignment model checkpoint: its evaluation is retrieval "
                              "(eval_sentence_predictions.py does it)" % checkpoint_path)
    out = output_folder(out or os.path.dirname(os.path.abspath(checkpoint_path)))
    model = checkpoint["model"]
    dataset = load_dataset(params["dataset"], data_root=data_root or params.get("data_root", "data"),
                           features_path=params.get("features") or None)
    gen = module_of(params)
    regions = captioning.dataset_regions(gen, params, dataset)
    width = dataset.feature_width if regions is None else regions.width
    if width != captioning.input_width(model):
        raise NeuralTalkError("%s was trained on %d-d features but %s has %d-d %s"
                              % (checkpoint_path, captioning.input_width(model),
                                 dataset.folder if regions is None else regions.path, width,
                                 "features" if regions is None else "region features"))
    images, skipped = with_references(dataset.split(split), split)
    if max_images > 0:
        images = images[:max_images]
    ids = [img["imgid"] for img in images]
    beams = decode_share(model, params, dataset, regions, ids, beam_size, world())
    if beams is None:  # a rank of an MPI job other than 0: its captions are on rank 0
        return None
    ixtoword = checkpoint["ixtoword"]
    candidates = {i: caption_text(ixtoword, b[0][1]) for i, b in zip(ids, beams)}
    references = {img["imgid"]: [" ".join(s["tokens"]) for s in img["sentences"]]
                  for img in images}
    corpus, per_image, notes = score_captions(references, candidates, with_meteor)
    notes = skipped + notes

    val = SentenceTable(dataset, checkpoint["wordtoix"], "val", regions)
    perplexity = captioning.perplexity(model, val, params, params.get("eval_batch_size", 100))
    training = {" ".join(s["tokens"]) for img in dataset.split("train") for s in img["sentences"]}
    verbatim = sum(c in training for c in candidates.values()) / len(candidates)
    summary = {"val_perplexity": perplexity, "fraction_in_training_set": verbatim,
               "images": len(images), "beam_size": beam_size, "split": split}
    if all("objects" in img for img in images):
        from neuraltalk.demo.checker import caption_is_correct
        correct = sum(caption_is_correct(candidates[img["imgid"]].split(), img["objects"])
                      for img in images)
        summary["fraction_correct_colours_and_shapes"] = correct / len(images)
        if regions is not None:
            from neuraltalk.demo.checker import attention_hits
            hits = words = 0
            for img, b in zip(images, beams):
                h, w = attention_hits(candidates[img["imgid"]].split(), b[0][2], img["objects"])
                hits, words = hits + h, words + w
            summary["attention_accuracy"] = hits / max(1, words)

    blobs = []
    for img, b in zip(images, beams):
        folder = os.path.join(dataset.folder, img.get("filepath", ""))
        blobs.append({"img_path": img.get("filename", str(img["imgid"])),
                      "img_file": os.path.join(folder, img["filename"]) if "filename" in img else None,
                      "imgid": img["imgid"],
                      "candidate": {"text": candidates[img["imgid"]], "logprob": b[0][0]},
                      "references": references[img["imgid"]], "scores": per_image[img["imgid"]]})
    if regions is not None:
        attention_pictures(blobs, beams, ixtoword, regions, out)
    metrics = {k: corpus[k] for k in COCO_KEYS if k in corpus}
    result = {"checkpoint_params": params, "checkpoint_path": checkpoint_path,
              "metrics": metrics, "multi_bleu": {k: v for k, v in corpus.items()
                                                 if k.startswith("multibleu")},
              "notes": notes, **summary, "imgblobs": blobs}
    json_path = os.path.join(out, "result_struct.json")
    html_path = os.path.join(out, "result.html")
    write_json(json_path, result)
    write_evaluation_page(html_path, blobs, dict(metrics, **{k: v for k, v in summary.items()
                                                             if isinstance(v, float)}),
                          notes, "%s on the %s split of %s" % (os.path.basename(checkpoint_path),
                                                               split, dataset.name))
    print_table(corpus, summary, notes)
    print("wrote %s and %s" % (json_path, html_path))
    return result


def decode_share(model, params, dataset, regions, ids, beam_size, ranks):
    """Beam search of the images `ids`; on the ranks of an MPI job, each rank decodes a
    contiguous block of whole DECODE_BATCH batches (World.share over the batches), so every
    image is decoded in the same batch as by one process, and rank 0 gets every beam, in
    order (the other ranks None)."""
    first, last = ranks.share(-(-len(ids) // DECODE_BATCH))
    own = ids[first * DECODE_BATCH:last * DECODE_BATCH]
    prefix = "rank %d/%d: " % (ranks.rank, ranks.size) if ranks.size > 1 else ""
    t0 = time.time()

    def progress(done, total):
        rate = done / max(1e-9, time.time() - t0)
        print("%scaptioned %d/%d images (%.0f images/s)" % (prefix, done, total, rate),
              flush=True)

    region_rows = None if regions is None else (
        lambda index: regions.rows(np.asarray(own)[index]))
    beams = collectively(ranks, lambda: list(decode_in_batches(
        model, params, _Rows(dataset.features, own), beam_size, batch_size=DECODE_BATCH,
        progress=progress, regions=region_rows, return_weights=regions is not None)))
    shares = ranks.gather(beams)
    return None if shares is None else [b for share in shares for b in share]


DECODE_BATCH = 256  # images per beam search batch


def with_references(images, split):
    """The images that have sentences to score against, and a note on those left out."""
    kept = [img for img in images if img["sentences"]]
    if not kept:
        raise NeuralTalkError("no image of the %s split has sentences: there are no "
                              "references to score captions against" % split)
    if len(kept) == len(images):
        return kept, []
    note = ("%d %s images have no sentences: left out, as there are no references to score "
            "them against" % (len(images) - len(kept), split))
    return kept, [note]


def attention_pictures(blobs, beams, ixtoword, regions, out):
    """An attention strip per image (report.write_attention_strip) in out/attention/, and
    each blob's 'attention' (per word: the word and its weights over the regions)."""
    folder = os.path.join(out, "attention")
    os.makedirs(folder, exist_ok=True)
    for blob, b in zip(blobs, beams):
        _, sequence, weights = b[0]
        words = [ixtoword[ix] if ix > 0 else "END" for ix in sequence]
        n = int(regions.counts[blob["imgid"]])
        weights = np.asarray(weights)[:, :n]
        blob["attention"] = [{"word": w, "weights": [round(float(x), 4) for x in alpha]}
                             for w, alpha in zip(words, weights)]
        if blob.get("img_file") and os.path.exists(blob["img_file"]):
            path = os.path.join(folder, "%d.png" % blob["imgid"])
            write_attention_strip(path, blob["img_file"], words, weights,
                                  regions.boxes[blob["imgid"]][:n])
            blob["attention_png"] = path


class _Rows:
    """The feature rows of some images, indexable from 0 (for decode_in_batches)."""

    def __init__(self, features, ids):
        self.features = features
        self.ids = ids

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, index):
        return self.features[[self.ids[i] for i in index]]


def print_table(corpus, summary, notes):
    print("%d images of the %s split, beam size %d" % (summary["images"], summary["split"],
                                                       summary["beam_size"]))
    for key in COCO_KEYS:
        if key in corpus:
            print("  %-8s %.4f" % (key, corpus[key]))
    print("  multi-bleu.perl: BLEU-1..4 = %s" % " / ".join(
        "%.2f" % (100 * corpus["multibleu_%d" % n]) for n in range(1, 5)))
    print("  validation perplexity %.3f" % summary["val_perplexity"])
    print("  captions found verbatim in the training set: %.1f%%"
          % (100 * summary["fraction_in_training_set"]))
    if "fraction_correct_colours_and_shapes" in summary:
        print("  captions naming only colours and shapes that are there: %.1f%%"
              % (100 * summary["fraction_correct_colours_and_shapes"]))
    if "attention_accuracy" in summary:
        print("  colour and shape words whose most attended region is their object: %.1f%%"
              % (100 * summary["attention_accuracy"]))
    for note in notes:
        print("  " + note)
