"""Image-sentence retrieval with the alignment model: R@1, R@5, R@10 and median rank.

Image annotation (i2t): for each image, the rank of the best-ranked of its own sentences
among all sentences. Image search (t2i): for each sentence, the rank of its image among
all images. Scores S_kl come in chunks of sentences, so memory stays bounded however
large the split.
"""
import json
import os
import time

import numpy as np

from neuraltalk.alignment import brnn_forward, embed_regions

CHUNK_WORD_COLUMNS = 4096  # sentences x words per chunk of the region-word product


def score_matrix(model, params, region_feats, counts, words, lengths, chunk_columns=None):
    """S (N_images, N_sentences) of the alignment model's score, in chunks of sentences."""
    kind = params.get("score", "max")
    v = embed_regions(model, np.asarray(region_feats, dtype=model["Wm"].dtype))
    N, R, h = v.shape
    region_mask = np.arange(R)[None, :] < counts[:, None]
    flat_v = v.reshape(N * R, h)
    T = words.shape[1]
    per_chunk = max(1, (chunk_columns or CHUNK_WORD_COLUMNS) // max(1, T))
    S = np.empty((N, len(words)), dtype=np.float32)
    for start in range(0, len(words), per_chunk):
        stop = min(start + per_chunk, len(words))
        s, _ = brnn_forward(model, words[start:stop], lengths[start:stop])  # (T, L, h)
        L = stop - start
        dots = (flat_v @ s.transpose(1, 0, 2).reshape(L * T, h).T).reshape(N, R, L, T)
        word_mask = np.arange(T)[None, :] < lengths[start:stop, None]
        if kind == "max":
            dots[~region_mask] = -np.inf
            S[:, start:stop] = np.where(word_mask[None], dots.max(1), 0).sum(2)
        else:
            positive = np.maximum(dots, 0) * region_mask[:, :, None, None]
            S[:, start:stop] = (positive * word_mask[None, None]).sum((1, 3))
    return S


def ranks(S, sentence_image):
    """i2t ranks (N_images,) and t2i ranks (N_sentences,), 1 = best.

    S: (N_images, N_sentences); sentence_image: for each sentence, its image's row.
    Ties count against the right answer, so a model that scores everything alike (say,
    all ReLUs dead) gets the worst ranks, not the best."""
    n_images, n_sentences = S.shape
    own = S[sentence_image, np.arange(n_sentences)]
    # t2i: 1 + the other images scoring at least as high as the sentence's own
    t2i = (S >= own[None, :]).sum(0)
    # i2t: an image's rank is that of its best own sentence: 1 + the other images'
    # sentences scoring at least as high
    best_own = np.full(n_images, -np.inf, dtype=S.dtype)
    np.maximum.at(best_own, sentence_image, own)
    own_at_best = np.zeros(n_images, dtype=np.int64)
    np.add.at(own_at_best, sentence_image, own >= best_own[sentence_image])
    i2t = 1 + (S >= best_own[:, None]).sum(1) - own_at_best
    return i2t, t2i


def recall_table(i2t, t2i):
    return {name: {"R@1": float(np.mean(r <= 1)), "R@5": float(np.mean(r <= 5)),
                   "R@10": float(np.mean(r <= 10)), "medr": float(np.median(r))}
            for name, r in (("i2t", i2t), ("t2i", t2i))}


def evaluate_model(model, params, regions, table, max_images=-1):
    """Retrieval over the images of a SentenceTable (the first max_images; -1: all)."""
    n_images = len(table.image_ids) if max_images < 0 else min(max_images, len(table.image_ids))
    n_sentences = int(table.offsets[n_images - 1] + table.counts[n_images - 1])
    feats, counts = regions.rows(table.image_ids[:n_images])
    words = table.words[:n_sentences]
    lengths = table.lengths[:n_sentences]
    width = max(1, int(lengths.max(initial=0)))
    S = score_matrix(model, params, feats, counts, words[:, :width], lengths)
    sentence_image = np.repeat(np.arange(n_images), table.counts[:n_images])
    return recall_table(*ranks(S, sentence_image))


def evaluate_checkpoint(checkpoint, checkpoint_path, split="test", max_images=-1, out=None,
                        data_root=None):
    """eval_sentence_predictions.py on an alignment checkpoint: print the retrieval table
    and write retrieval.json."""
    from neuraltalk.batches import SentenceTable
    from neuraltalk.dataset import load_dataset
    from neuraltalk.regions import load_regions
    params = checkpoint["params"]
    dataset = load_dataset(params["dataset"], data_root=data_root or params.get("data_root", "data"))
    regions = load_regions(params.get("regions") or dataset.folder, len(dataset.images))
    table = SentenceTable(dataset, checkpoint["wordtoix"], split)
    without = len(dataset.split(split)) - len(table.image_ids)
    if without:  # the table holds only images with sentences
        print("%d %s images have no sentences: left out, as there is nothing to retrieve "
              "them by" % (without, split))
    t0 = time.time()
    result = evaluate_model(checkpoint["model"], params, regions, table, max_images)
    n = len(table.image_ids) if max_images < 0 else min(max_images, len(table.image_ids))
    print("retrieval on %d images of the %s split (%.1fs)" % (n, split, time.time() - t0))
    print("%-18s %6s %6s %6s %6s" % ("", "R@1", "R@5", "R@10", "medr"))
    for d, name in (("i2t", "image annotation"), ("t2i", "image search")):
        r = result[d]
        print("%-18s %6.3f %6.3f %6.3f %6g" % (name, r["R@1"], r["R@5"], r["R@10"], r["medr"]))
    out = out or os.path.dirname(os.path.abspath(checkpoint_path))
    path = os.path.join(out, "retrieval.json")
    from neuraltalk.checkpoint import atomic_write_text
    atomic_write_text(path, json.dumps(result, indent=1))
    print("wrote %s" % path)
    return result

