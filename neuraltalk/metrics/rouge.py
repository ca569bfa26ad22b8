"""ROUGE-L as the MS-COCO caption evaluation defines it.

For a candidate c and references r_1..r_m: LCS-based precision P_i = LCS(c, r_i)/|c| and
recall R_i = LCS(c, r_i)/|r_i|; with P = max_i P_i and R = max_i R_i,
ROUGE-L = (1 + b^2) P R / (R + b^2 P), b = 1.2 (0 if P or R is 0). The corpus score is
the mean over images. Sentences are split on single spaces, as the COCO code splits them
(so an empty candidate is one empty token).
"""
import numpy as np

BETA = 1.2


def lcs_length(a, b):
    """Length of the longest common subsequence of two token lists (dynamic programme)."""
    if not a or not b:
        return 0
    b_index = {}
    for j, w in enumerate(b):
        b_index.setdefault(w, []).append(j)
    prev = np.zeros(len(b) + 1, dtype=np.int64)
    for w in a:  # one row of the table per token of a
        cur = prev.copy()
        match = np.zeros(len(b) + 1, dtype=bool)
        match[[j + 1 for j in b_index.get(w, [])]] = True
        diag = np.where(match[1:], prev[:-1] + 1, 0)
        # cur[j] = match ? prev[j-1]+1 : max(prev[j], cur[j-1]): the running max over j
        cur[1:] = np.maximum(prev[1:], diag)
        cur = np.maximum.accumulate(cur)
        prev = cur
    return int(prev[-1])


def rouge_l_sentence(candidate, references):
    """candidate, references: strings."""
    c = candidate.split(" ")
    precisions, recalls = [], []
    for ref in references:
        r = ref.split(" ")
        lcs = lcs_length(r, c)
        precisions.append(lcs / len(c))
        recalls.append(lcs / len(r))
    p, r = max(precisions), max(recalls)
    if p == 0 or r == 0:
        return 0.0
    return (1 + BETA ** 2) * p * r / (r + BETA ** 2 * p)


def rouge_l(references, candidates):
    """references: id -> list of strings; candidates: id -> string. (mean, per id)."""
    per_image = {k: rouge_l_sentence(candidates[k], references[k]) for k in candidates}
    return float(np.mean(list(per_image.values()))) if per_image else 0.0, per_image
