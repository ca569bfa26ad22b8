"""Padded batches of image-sentence pairs.

A split's sentences are encoded once into a padded int32 table; a batch is then a few
fancy-indexing operations, with no Python loop over its sentences. Words not in the
vocabulary are dropped from a sentence, as NeuralTalk does.
"""
from collections import namedtuple

import numpy as np

from neuraltalk.errors import NeuralTalkError


class Batch(namedtuple("Batch", ["feats", "words", "lengths", "image_ids", "sent_ids",
                                 "regions", "region_counts"], defaults=(None, None))):
    """feats (B, D) float32; words (B, T) int32: w_1..w_n then 0 padding; lengths (B,) int32
    = n; image_ids, sent_ids (B,) int64 (sent_id -1 where dataset.json has none); for a
    model that asks for them, regions (B, R, D) float32 and region_counts (B,) (rows from
    region_counts[b] on are padding), else None.

    A generator feeds [START, w_1..w_n] and scores [w_1..w_n, END]: lengths + 1 steps."""
    __slots__ = ()


def encode_sentences(token_lists, wordtoix):
    """Word indices of each sentence, out-of-vocabulary words dropped, padded with 0.

    Returns words (B, T) int32 with T = the longest kept length (at least 1 column), and
    lengths (B,) int32."""
    lengths, flat = [], []
    for tokens in token_lists:  # once per split, not per batch
        ixs = [wordtoix[w] for w in tokens if w in wordtoix and w != "#START#"]
        lengths.append(len(ixs))
        flat += ixs
    lengths = np.array(lengths, dtype=np.int32)
    words = np.zeros((len(lengths), max(1, int(lengths.max(initial=0)))), dtype=np.int32)
    # row-major order of the True entries of the mask == the order of `flat`
    words[np.arange(words.shape[1]) < lengths[:, None]] = np.array(flat, dtype=np.int32)
    return words, lengths


class SentenceTable:
    """Every sentence of a split, encoded once, with the image each belongs to.

    Attributes: image_ids (I,) int64 the split's images that have sentences, in imgid
    order; counts (I,) their sentence counts; offsets (I,) the table row of each image's
    first sentence; words (S, T) int32, lengths (S,) int32, sent_image (S,) int64 and
    sent_ids (S,) int64, one row per sentence, grouped by image. With `regions` (a
    RegionFeatures, see regions.py) every batch carries its images' regions too."""

    def __init__(self, dataset, wordtoix, split, regions=None):
        images = [img for img in dataset.split(split) if img["sentences"]]
        if not images:
            raise NeuralTalkError("%s/dataset.json: no image of the %s split has sentences"
                                  % (dataset.folder, split))
        self.dataset = dataset
        self.regions = regions
        self.image_ids = np.array([img["imgid"] for img in images], dtype=np.int64)
        self.counts = np.array([len(img["sentences"]) for img in images], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.counts)[:-1]]).astype(np.int64)
        sentences = [s for img in images for s in img["sentences"]]
        self.words, self.lengths = encode_sentences([s["tokens"] for s in sentences], wordtoix)
        self.sent_image = np.repeat(self.image_ids, self.counts)
        self.sent_ids = np.array([s.get("sentid", -1) for s in sentences], dtype=np.int64)

    def __len__(self):
        return len(self.lengths)

    def batch(self, rows):
        """The Batch of table rows `rows` (int array), trimmed to its longest sentence."""
        rows = np.asarray(rows, dtype=np.int64)
        lengths = self.lengths[rows]
        width = max(1, int(lengths.max(initial=0)))
        image_ids = self.sent_image[rows]
        regions = region_counts = None
        if self.regions is not None:
            regions, region_counts = self.regions.rows(image_ids)
        return Batch(self.dataset.features[image_ids], self.words[rows, :width], lengths,
                     image_ids, self.sent_ids[rows], regions, region_counts)

    def sample(self, batch_size, rng):
        """NeuralTalk's sampling: an image uniformly, then one of its sentences uniformly.

        rng: np.random.Generator; the same generator state gives the same batch."""
        pick = rng.integers(0, len(self.image_ids), size=batch_size)
        rows = self.offsets[pick] + rng.integers(0, self.counts[pick])
        return self.batch(rows)

    def iter_batches(self, batch_size, max_images=-1):
        """Every sentence of the first `max_images` images (all: -1), in table order."""
        n_images = len(self.image_ids) if max_images < 0 else min(max_images, len(self.image_ids))
        end = int(self.offsets[n_images - 1] + self.counts[n_images - 1]) if n_images else 0
        for start in range(0, end, batch_size):
            yield self.batch(np.arange(start, min(start + batch_size, end)))
