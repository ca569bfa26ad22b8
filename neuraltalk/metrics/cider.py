"""CIDEr-D as the MS-COCO caption evaluation computes it.

Each sentence becomes, for n = 1..4, a TF-IDF vector of its n-grams: tf * (log(M) -
log(max(1, df))), with M the number of images evaluated and df the number of images
among whose references the n-gram occurs. For a candidate c and reference r:
sim_n = sum over the candidate's n-grams g of min(c_g, r_g) * r_g / (|c_n| |r_n|)
(the clipped dot product; 0 when a norm is 0), times exp(-(l_c - l_r)^2 / (2 sigma^2)),
sigma = 6, where the length l is the sentence's number of bigrams, as the COCO code counts
it. CIDEr-D = 10 * mean over n and over references of sim_n; the corpus score is the
mean over images. SCST's reward passes the document frequencies of the training split
instead (`document_frequency`); neuraltalk/metrics/cider_reward.py computes the same
numbers vectorised.
"""
import math
from collections import Counter

import numpy as np

SIGMA = 6.0
MAX_N = 4


def ngrams(tokens):
    counts = Counter()
    for n in range(1, MAX_N + 1):
        for i in range(len(tokens) - n + 1):
            counts[tuple(tokens[i:i + n])] += 1
    return counts


def tfidf(counts, document_frequency, log_m):
    vec = [{} for _ in range(MAX_N)]
    norm = [0.0] * MAX_N
    length = 0
    for gram, tf in counts.items():
        n = len(gram) - 1
        value = tf * (log_m - math.log(max(1.0, document_frequency.get(gram, 0.0))))
        vec[n][gram] = value
        norm[n] += value * value
        if n == 1:
            length += tf
    return vec, [math.sqrt(x) for x in norm], length


def document_frequencies(references):
    """(df, M): df maps each n-gram (a tuple of tokens) to the number of images among
    whose references it occurs; M is the number of images. references: id -> token lists."""
    df = Counter()
    for refs in references.values():
        df.update(set(g for r in refs for g in ngrams(r)))
    return df, len(references)


def cider_d(references, candidates, document_frequency=None):
    """references: id -> list of token lists; candidates: id -> token list. (mean, per id).

    document_frequency: (df, M) of document_frequencies() over another corpus; None: over
    the references of the candidates' images, as the COCO evaluation does."""
    keys = list(candidates)
    ref_counts = {k: [ngrams(r) for r in references[k]] for k in keys}
    if document_frequency is None:
        document_frequency = document_frequencies({k: references[k] for k in keys})
    document_frequency, n_images = document_frequency
    log_m = math.log(float(n_images)) if n_images else 0.0
    per_image = {}
    for k in keys:
        vec, norm, length = tfidf(ngrams(candidates[k]), document_frequency, log_m)
        total = np.zeros(MAX_N)
        for counts in ref_counts[k]:
            rvec, rnorm, rlength = tfidf(counts, document_frequency, log_m)
            penalty = math.exp(-((length - rlength) ** 2) / (2 * SIGMA ** 2))
            for n in range(MAX_N):
                value = sum(min(v, rvec[n].get(g, 0.0)) * rvec[n].get(g, 0.0)
                            for g, v in vec[n].items())
                if norm[n] != 0 and rnorm[n] != 0:
                    value /= norm[n] * rnorm[n]
                total[n] += value * penalty
        per_image[k] = float(np.mean(total)) / len(ref_counts[k]) * 10.0
    return float(np.mean(list(per_image.values()))) if per_image else 0.0, per_image
