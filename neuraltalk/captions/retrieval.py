"""Image-sentence retrieval by likelihood, for every caption generator: what
`eval_sentence_predictions.py CHECKPOINT --retrieval` does for a generator checkpoint.

The score of sentence s for image i is its log-probability given the image, END included,
divided by its n + 1 predicted words (the m-RNN paper ranks by perplexity, which is this
score's monotone image): S[i, s] = sum_t log(1e-20 + p(w_t | w_<t, I_i)) / (n_s + 1).
Ranks both ways (i2t: sentences for an image, t2i: images for a sentence), R@1/5/10 and
median rank come from metrics/retrieval.py, so the table has the alignment model's keys.

A generator whose recurrence does not see the image (the m-RNN) provides its own
`likelihood_matrix` (the language part once per sentence); any other is scored by its
start/step functions on every (image, sentence) pair, all pairs of a chunk of images at
once, each step running only the pairs whose sentence is still going.
"""
import json
import os
import time

import numpy as np

from neuraltalk.errors import NeuralTalkError
from neuraltalk.layers.softmax import log_softmax
from neuraltalk.models import captioning, module_of


def likelihood_matrix(model, params, feats, words, lengths, max_pairs=4096):
    """S (I, S) for images feats (I, D) and sentences words (S, T), lengths (S,)."""
    gen = module_of(params)
    if hasattr(gen, "likelihood_matrix"):
        return gen.likelihood_matrix(model, params, feats, words, lengths)
    return pairwise_likelihood(gen, model, params, feats, words, lengths, max_pairs)


def pairwise_likelihood(gen, model, params, feats, words, lengths, max_pairs=4096):
    """S (I, S) from the generator module gen's start/step on every (image, sentence)
    pair, at most max_pairs at once."""
    feats = np.asarray(feats, dtype=model["Wd"].dtype)
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")  # running pairs stay a prefix
    n = lengths[order]
    W = np.zeros((len(n), int(n.max(initial=0)) + 1), dtype=np.int64)
    W[:, :words.shape[1]] = np.asarray(words)[order, :W.shape[1]]
    W[np.arange(W.shape[1])[None, :] >= n[:, None]] = 0  # END after each sentence's words
    n_sent = len(n)
    chunk = max(1, max_pairs // max(1, n_sent))
    S = np.empty((len(feats), n_sent))
    for lo in range(0, len(feats), chunk):
        k = len(feats[lo:lo + chunk])
        # pairs sentence-major: pair (s, i) in row s*k + i, so the pairs of the sentences
        # still running at step t are the first k * #(n >= t) rows
        state = gen.start(model, np.tile(feats[lo:lo + k], (n_sent, 1)), params)
        total = np.zeros(k * n_sent)
        prev = np.zeros(k * n_sent, dtype=np.int64)  # START
        for t in range(W.shape[1]):  # over time steps only
            live = k * int(np.sum(n >= t))
            state = {name: a[:live] for name, a in state.items()}
            logits, state = gen.step(model, state, prev[:live], params)
            logprobs = log_softmax(logits)  # as NeuralTalk scores a word
            target = np.repeat(W[:, t], k)[:live]
            total[:live] += logprobs[np.arange(live), target]
            prev = target
        S[lo:lo + k, order] = total.reshape(n_sent, k).T
    return S / (lengths + 1)[None, :]


def retrieval_table(model, params, table, max_images=-1):
    """R@1/5/10 and median rank both ways over the first max_images (-1: all) images of
    a SentenceTable and their sentences."""
    from neuraltalk.metrics.retrieval import ranks, recall_table
    n_images = len(table.image_ids) if max_images < 0 else min(max_images, len(table.image_ids))
    n_sentences = int(table.offsets[n_images - 1] + table.counts[n_images - 1])
    width = max(1, int(table.lengths[:n_sentences].max(initial=0)))
    S = likelihood_matrix(model, params, table.dataset.features[table.image_ids[:n_images]],
                          table.words[:n_sentences, :width], table.lengths[:n_sentences])
    sentence_image = np.repeat(np.arange(n_images), table.counts[:n_images])
    return recall_table(*ranks(S, sentence_image))


def evaluate_retrieval(checkpoint_path, split="test", max_images=-1, out=None, data_root=None):
    """eval_sentence_predictions.py CHECKPOINT --retrieval: print the retrieval table of a
    caption generator's checkpoint, by likelihood, and write retrieval.json."""
    from neuraltalk.data.batches import SentenceTable
    from neuraltalk.data.dataset import check_max_images, load_dataset
    from neuraltalk.models import is_generator
    from neuraltalk.train.checkpoint import load_checkpoint
    from neuraltalk.train.runs import output_folder
    check_max_images(max_images)
    checkpoint = load_checkpoint(checkpoint_path)
    out = output_folder(out or os.path.dirname(os.path.abspath(checkpoint_path)))
    params = checkpoint["params"]
    if not is_generator(params):  # eval_sentence_predictions.py sends those to alignment/
        raise NeuralTalkError("%s is an alignment model checkpoint: its retrieval is by its "
                              "own score (eval_sentence_predictions.py)" % checkpoint_path)
    model = checkpoint["model"]
    dataset = load_dataset(params["dataset"],
                           data_root=data_root or params.get("data_root", "data"),
                           features_path=params.get("features") or None)
    captioning.check_feature_width(model, dataset.feature_width, dataset.folder)
    table = SentenceTable(dataset, checkpoint["wordtoix"], split)
    without = len(dataset.split(split)) - len(table.image_ids)
    if without:
        print("%d %s images have no sentences: left out, as there is nothing to retrieve "
              "them by" % (without, split))
    t0 = time.time()
    result = retrieval_table(model, params, table, max_images)
    n = len(table.image_ids) if max_images < 0 else min(max_images, len(table.image_ids))
    return report(result, n, split, time.time() - t0, out, checkpoint_path,
                  "by likelihood (%s)" % params.get("generator", "lstm"))


def report(result, n, split, seconds, out, checkpoint_path, how=""):
    """Print a retrieval table and write it to out/retrieval.json (out: None for the
    checkpoint's folder); shared with the alignment model's (alignment/retrieval.py)."""
    print("retrieval%s on %d images of the %s split (%.1fs)"
          % (" " + how if how else "", n, split, seconds))
    print("%-18s %6s %6s %6s %6s" % ("", "R@1", "R@5", "R@10", "medr"))
    for d, name in (("i2t", "image annotation"), ("t2i", "image search")):
        r = result[d]
        print("%-18s %6.3f %6.3f %6.3f %6g" % (name, r["R@1"], r["R@5"], r["R@10"], r["medr"]))
    out = out or os.path.dirname(os.path.abspath(checkpoint_path))
    path = os.path.join(out, "retrieval.json")
    from neuraltalk.atomic import atomic_write_text
    atomic_write_text(path, json.dumps(result, indent=1))
    print("wrote %s" % path)
    return result

