"""CIDEr-D of many captions at once against precomputed reference vectors: SCST's reward.

The numbers are those of neuraltalk/metrics/cider.py (the COCO evaluation's CIDEr-D) with
the same document frequencies; only the bookkeeping differs. Every token gets an integer
id >= 1 and an n-gram (w_1..w_n) the code sum_i id(w_i) * base^(n-i), base = number of
ids + 1, so codes of different orders never collide (order n lies in [base^(n-1), base^n))
and base^4 must fit an int64. The references of a fixed list of images are turned once
into sorted (reference, n-gram) tables of tf-idf values, norms and lengths; a batch of
captions (word indices of the model's vocabulary) becomes its own table with a few sorts
and searches, and the clipped dot products against all references of its image are one
gather and one bincount. No Python loop runs over captions or references.
"""
import math

import numpy as np

from neuraltalk.errors import NeuralTalkError
from neuraltalk.metrics.cider import MAX_N, SIGMA, document_frequencies

MAX_BASE = int(np.floor(np.iinfo(np.int64).max ** (1.0 / MAX_N)))  # base^4 < 2^63


def gram_codes(ids, lengths, base):
    """Every n-gram (n = 1..4) of sequences of token ids (S, T) in [1, base) with lengths (S,):
    (sequence (G,), code (G,) int64, order (G,) 1..4), in no particular order."""
    ids = np.asarray(ids, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    S, T = ids.shape
    seqs, codes, orders = [], [], []
    code = np.zeros((S, T), dtype=np.int64)
    for n in range(1, MAX_N + 1):  # code_n[t] = code_{n-1}[t] * base + ids[t + n - 1]
        if n > T:
            break
        code = code[:, :T - n + 1] * base + ids[:, n - 1:]
        valid = np.arange(T - n + 1)[None, :] + n <= lengths[:, None]
        s, _ = np.nonzero(valid)
        seqs.append(s)
        codes.append(code[valid])
        orders.append(np.full(len(s), n, dtype=np.int64))
    if not seqs:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty
    return np.concatenate(seqs), np.concatenate(codes), np.concatenate(orders)


def term_frequencies(seq, code, order):
    """The distinct (sequence, n-gram) pairs, sorted by sequence then code, and the
    number of times each occurs: (seq, code, order, tf)."""
    if len(seq) == 0:
        return seq, code, order, np.zeros(0, np.float64)
    sort = np.lexsort((code, seq))
    seq, code, order = seq[sort], code[sort], order[sort]
    first = np.ones(len(seq), dtype=bool)
    first[1:] = (seq[1:] != seq[:-1]) | (code[1:] != code[:-1])
    starts = np.flatnonzero(first)
    tf = np.diff(np.append(starts, len(seq))).astype(np.float64)
    return seq[starts], code[starts], order[starts], tf


class CiderD:
    """The references of a fixed list of images, ready to score captions against.

    references: one list per image of its reference token lists (at least one each).
    ixtoword: the model's index -> word map; captions are given as word indices (0, END,
    ends a caption and is never a word of it).
    document_frequency: (df, M) as from cider.document_frequencies (SCST: the training
    split's); None: computed from these references, as the evaluation does."""

    def __init__(self, references, ixtoword, document_frequency=None):
        if any(len(refs) == 0 for refs in references):
            raise NeuralTalkError("CIDEr-D needs at least one reference per image")
        if document_frequency is None:
            document_frequency = document_frequencies(dict(enumerate(references)))
        df, n_images = document_frequency
        self.log_m = math.log(float(n_images)) if n_images else 0.0

        # token ids: the vocabulary's words first, then any other reference word
        token_id = {}
        for ix in sorted(ixtoword):
            if ix > 0:
                token_id.setdefault(ixtoword[ix], len(token_id) + 1)
        flat_refs = [r for refs in references for r in refs]
        for r in flat_refs:
            for w in r:
                token_id.setdefault(w, len(token_id) + 1)
        self.base = len(token_id) + 1
        if self.base > MAX_BASE:
            raise NeuralTalkError("CIDEr-D reward: %d distinct words in the vocabulary and "
                                  "references, more than the %d whose 4-gram codes fit 64 bits"
                                  % (self.base - 1, MAX_BASE - 1))
        vocab_size = max(ixtoword) + 1 if ixtoword else 1
        self.ix_to_id = np.zeros(vocab_size, dtype=np.int64)
        for ix, w in ixtoword.items():
            if ix > 0:
                self.ix_to_id[ix] = token_id[w]

        # the n-grams with a document frequency (all of them are in the references'
        # df, or in another corpus's); grams with an unknown word cannot occur here
        known = []
        for gram, count in df.items():  # once, at construction
            if all(w in token_id for w in gram):
                code = 0
                for w in gram:
                    code = code * self.base + token_id[w]
                known.append((code, count))
        known = np.array(sorted(known), dtype=np.int64).reshape(-1, 2)

        lengths = np.array([len(r) for r in flat_refs], dtype=np.int64)
        ids = np.zeros((len(flat_refs), max(1, int(lengths.max(initial=0)))), dtype=np.int64)
        ids[np.arange(ids.shape[1])[None, :] < lengths[:, None]] = [
            token_id[w] for r in flat_refs for w in r]
        ref, code, order, tf = term_frequencies(*gram_codes(ids, lengths, self.base))
        # the gram table: every known gram and every reference gram (df 0 if unknown)
        self.grams, where = np.unique(np.concatenate([known[:, 0], code]), return_inverse=True)
        self.idf = np.full(len(self.grams), self.log_m)
        self.idf[where[:len(known)]] = self.log_m - np.log(np.maximum(1.0, known[:, 1]))
        if len(self.grams) == 0:  # references without words: a code no gram has
            self.grams, self.idf = np.array([-1], np.int64), np.array([self.log_m])
        gram = where[len(known):]
        self.ref_keys = ref * len(self.grams) + gram  # sorted: ref, then code, as gram
        self.ref_values = tf * self.idf[gram]
        self.ref_norms = np.sqrt(np.bincount(ref * MAX_N + order - 1, self.ref_values ** 2,
                                             minlength=len(flat_refs) * MAX_N)
                                 ).reshape(-1, MAX_N)
        self.ref_lengths = np.maximum(lengths - 1, 0).astype(np.float64)  # bigram count
        self.ref_counts = np.array([len(refs) for refs in references], dtype=np.int64)
        self.ref_offsets = np.concatenate([[0], np.cumsum(self.ref_counts)[:-1]]).astype(np.int64)

    def __len__(self):
        return len(self.ref_counts)

    def scores(self, words, lengths, images):
        """CIDEr-D (C,) float64 of captions words (C, T) (word indices) with lengths (C,)
        (words past a caption's length are ignored), each against the references of
        images (C,) (indices into this scorer's list of images)."""
        words = np.asarray(words, dtype=np.int64)
        lengths = np.asarray(lengths, dtype=np.int64)
        images = np.asarray(images, dtype=np.int64)
        C = len(lengths)
        if C == 0:
            return np.zeros(0)
        ids = self.ix_to_id[words]
        cand, code, order, tf = term_frequencies(*gram_codes(ids, lengths, self.base))
        G = len(self.grams)
        g = np.minimum(np.searchsorted(self.grams, code), G - 1)
        found = self.grams[g] == code
        values = tf * np.where(found, self.idf[g], self.log_m)  # tf * (log M - log max(1, df))
        norms = np.sqrt(np.bincount(cand * MAX_N + order - 1, values ** 2,
                                    minlength=C * MAX_N)).reshape(C, MAX_N)

        # each found candidate gram against every reference of its caption's image
        cand, g, order, values = cand[found], g[found], order[found], values[found]
        counts = self.ref_counts[images[cand]]
        entry = np.repeat(np.arange(len(cand)), counts)
        first = np.repeat(np.cumsum(counts) - counts, counts)
        local = np.arange(len(entry)) - first  # which reference of the image
        key = (self.ref_offsets[images[cand[entry]]] + local) * G + g[entry]
        pos = np.minimum(np.searchsorted(self.ref_keys, key), max(0, len(self.ref_keys) - 1))
        hit = (self.ref_keys[pos] == key) if len(self.ref_keys) else np.zeros(len(key), bool)
        ref_value = self.ref_values[pos[hit]]
        entry, local = entry[hit], local[hit]
        R = int(self.ref_counts.max())
        clipped = np.minimum(values[entry], ref_value) * ref_value
        dots = np.bincount((cand[entry] * R + local) * MAX_N + order[entry] - 1, clipped,
                           minlength=C * R * MAX_N).reshape(C, R, MAX_N)

        n_refs = self.ref_counts[images]
        slot = np.arange(R)[None, :]
        real = slot < n_refs[:, None]
        ref_rows = np.where(real, self.ref_offsets[images][:, None] + slot, 0)
        ref_norms = self.ref_norms[ref_rows]  # (C, R, 4)
        product = norms[:, None, :] * ref_norms
        sim = np.where(product != 0, dots / np.where(product != 0, product, 1), dots)
        cand_lengths = np.maximum(lengths - 1, 0).astype(np.float64)
        delta = cand_lengths[:, None] - self.ref_lengths[ref_rows]
        penalty = np.exp(-(delta ** 2) / (2 * SIGMA ** 2)) * real
        return 10.0 * (sim * penalty[:, :, None]).sum((1, 2)) / (MAX_N * n_refs)
