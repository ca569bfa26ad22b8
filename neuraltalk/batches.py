"""Padded batches of image-sentence pairs.

A split's sentences are encoded once into a padded int32 table; a batch is then a few
fancy-indexing operations, with no Python loop over its sentences. Words not in the
vocabulary are dropped from a sentence, as NeuralTalk does.
"""
from collections import namedtuple

import numpy as np

# feats (B, D) float32; words (B, T) int32, w_1..w_n then 0; lengths (B,) int32 = n;
# image_ids, sent_ids (B,) int64. A generator feeds [START, w_1..w_n] and scores
# [w_1..w_n, END]: lengths + 1 steps per sentence.
Batch = namedtuple("Batch", ["feats", "words", "lengths", "image_ids", "sent_ids"])


def encode_sentences(token_lists, wordtoix):
    """Word indices of each sentence, out-of-vocabulary words dropped, padded with 0."""
    encoded = [[wordtoix[w] for w in tokens if w in wordtoix and w != "#START#"]
               for tokens in token_lists]
    lengths = np.array([len(e) for e in encoded], dtype=np.int32)
    words = np.zeros((len(encoded), max(1, lengths.max(initial=0))), dtype=np.int32)
    for i, e in enumerate(encoded):  # once per split, not per batch
        words[i, :len(e)] = e
    return words, lengths


class SentenceTable:
    """Every sentence of a split, encoded once, with the image each belongs to."""

    def __init__(self, dataset, wordtoix, split):
        images = dataset.split(split)
        self.dataset = dataset
        self.image_ids = np.array([img["imgid"] for img in images], dtype=np.int64)
        counts = np.array([len(img["sentences"]) for img in images], dtype=np.int64)
        if (counts == 0).any():
            images = [img for img, c in zip(images, counts) if c > 0]
            self.image_ids = self.image_ids[counts > 0]
            counts = counts[counts > 0]
        self.counts = counts
        self.offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
        sentences = [s for img in images for s in img["sentences"]]
        self.words, self.lengths = encode_sentences([s["tokens"] for s in sentences], wordtoix)
        self.sent_image = np.repeat(self.image_ids, counts)
        self.sent_ids = np.array([s.get("sentid", -1) for s in sentences], dtype=np.int64)

    def __len__(self):
        return len(self.lengths)

    def batch(self, rows):
        """The Batch of table rows `rows`, trimmed to its longest sentence."""
        lengths = self.lengths[rows]
        width = max(1, int(lengths.max(initial=0)))
        image_ids = self.sent_image[rows]
        return Batch(self.dataset.features[image_ids], self.words[rows, :width], lengths,
                     image_ids, self.sent_ids[rows])

    def sample(self, batch_size, rng):
        """NeuralTalk's sampling: an image uniformly, then one of its sentences uniformly."""
        pick = rng.integers(0, len(self.image_ids), size=batch_size)
        rows = self.offsets[pick] + (rng.random(batch_size) * self.counts[pick]).astype(np.int64)
        return self.batch(rows)

    def iter_batches(self, batch_size, max_images=-1):
        """Every sentence of the first `max_images` images (all: -1), in order."""
        n_images = len(self.image_ids) if max_images < 0 else min(max_images, len(self.image_ids))
        end = int(self.offsets[n_images - 1] + self.counts[n_images - 1]) if n_images else 0
        for start in range(0, end, batch_size):
            yield self.batch(np.arange(start, min(start + batch_size, end)))
