"""BLEU-1..4, two ways: as the MS-COCO caption evaluation computes it, and as the Moses
`multi-bleu.perl` script (which NeuralTalk ran) computes it.

Both are corpus-level: clipped n-gram matches and candidate n-gram counts are summed
over the corpus, and the brevity penalty uses the summed reference lengths, each the
reference length closest to its candidate's.
- COCO: p_n = (matches + 1e-15) / (candidate n-grams + 1e-9); BLEU-n = BP * (p_1 ... p_n)^(1/n);
  BP = exp(1 - r/c) when c < r; closest length ties go to the shorter reference.
  Per-image scores are the same formula on one image's counts.
- multi-bleu.perl: p_n = matches / candidate n-grams (0 when there are none); log 0
  counts as -9999999999; BLEU-n = BP * exp(mean of log p_1..p_n); closest length ties
  go to the shorter reference.
"""
import math
from collections import Counter

TINY = 1e-15
SMALL = 1e-9


def ngram_counts(tokens, n):
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def clipped_counts(candidate, references, max_n=4):
    """Per order n: (clipped matches, candidate n-grams); plus the closest reference length."""
    matches, totals = [], []
    for n in range(1, max_n + 1):
        cand = ngram_counts(candidate, n)
        best = Counter()
        for ref in references:
            for gram, count in ngram_counts(ref, n).items():
                best[gram] = max(best[gram], count)
        matches.append(sum(min(c, best[g]) for g, c in cand.items()))
        totals.append(max(0, len(candidate) - n + 1))
    closest = min((abs(len(r) - len(candidate)), len(r)) for r in references)[1]
    return matches, totals, closest


def _coco_bleus(matches, totals, cand_len, ref_len, max_n):
    bleus = []
    product = 1.0
    for k in range(max_n):
        product *= (matches[k] + TINY) / (totals[k] + SMALL)
        bleus.append(product ** (1.0 / (k + 1)))
    ratio = (cand_len + TINY) / (ref_len + SMALL)
    if ratio < 1:
        bleus = [b * math.exp(1 - 1 / ratio) for b in bleus]
    return bleus


def coco_bleu(references, candidates, max_n=4):
    """references: id -> list of token lists; candidates: id -> token list.

    Returns (corpus [BLEU-1..max_n], per-id {id: [BLEU-1..max_n]}).
    """
    total_m = [0] * max_n
    total_t = [0] * max_n
    cand_len = ref_len = 0
    per_image = {}
    for key, cand in candidates.items():
        m, t, r = clipped_counts(cand, references[key], max_n)
        per_image[key] = _coco_bleus(m, t, len(cand), r, max_n)
        total_m = [a + b for a, b in zip(total_m, m)]
        total_t = [a + b for a, b in zip(total_t, t)]
        cand_len += len(cand)
        ref_len += r
    return _coco_bleus(total_m, total_t, cand_len, ref_len, max_n), per_image


def _my_log(x):
    return math.log(x) if x else -9999999999


def multi_bleu(references, candidates, max_n=4):
    """BLEU-1..max_n as multi-bleu.perl computes them, with its precisions and lengths."""
    total_m = [0] * max_n
    total_t = [0] * max_n
    cand_len = ref_len = 0
    for key, cand in candidates.items():
        m, t, r = clipped_counts(cand, references[key], max_n)
        total_m = [a + b for a, b in zip(total_m, m)]
        total_t = [a + b for a, b in zip(total_t, t)]
        cand_len += len(cand)
        ref_len += r
    precisions = [m / t if t else 0.0 for m, t in zip(total_m, total_t)]
    if cand_len >= ref_len:
        bp = 1.0
    else:
        bp = math.exp(1 - ref_len / cand_len) if cand_len else 0.0
    bleus = [bp * math.exp(sum(_my_log(p) for p in precisions[:n]) / n)
             for n in range(1, max_n + 1)]
    return {"bleu": bleus, "precisions": precisions, "bp": bp,
            "ratio": cand_len / ref_len if ref_len else 0.0,
            "hyp_len": cand_len, "ref_len": ref_len}
