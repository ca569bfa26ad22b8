"""Caption metrics against hand-worked values and against the MS-COCO evaluation code."""
import math

import numpy as np
import pytest

from neuraltalk.metrics import score_captions
from neuraltalk.metrics.bleu import coco_bleu, multi_bleu
from neuraltalk.metrics.cider import cider_d
from neuraltalk.metrics.meteor import meteor
from neuraltalk.metrics.rouge import lcs_length, rouge_l_sentence


def _tok(d):
    return {k: ([s.split() for s in v] if isinstance(v, list) else v.split()) for k, v in d.items()}


# ---- hand-worked cases -----------------------------------------------------------------

def test_bleu_of_a_perfect_match_is_one():
    refs, cands = {0: ["a b c d e"]}, {0: "a b c d e"}
    bleu, per = coco_bleu(_tok(refs), _tok(cands))
    assert np.allclose(bleu, 1.0, atol=1e-9) and np.allclose(per[0], 1.0, atol=1e-9)
    assert np.allclose(multi_bleu(_tok(refs), _tok(cands))["bleu"], 1.0)


def test_bleu_with_no_overlap_is_zero():
    bleu, _ = coco_bleu(_tok({0: ["a b c"]}), _tok({0: "x y z"}))
    # p_1 = (0 + 1e-15) / (3 + 1e-9): BLEU-1 is 1e-15 / 3, not exactly 0
    assert bleu[0] == pytest.approx(1e-15 / 3, rel=1e-6)
    assert multi_bleu(_tok({0: ["a b c"]}), _tok({0: "x y z"}))["bleu"][0] == 0.0


def test_bleu_brevity_penalty_for_a_candidate_shorter_than_every_reference():
    # candidate "a b" (2 words), references of 4 and 6 words: closest length 4
    # p1 = 2/2, p2 = 1/1, BP = exp(1 - 4/2) = e^-1
    refs, cands = {0: ["a b c d", "a b c d e f"]}, {0: "a b"}
    bleu, _ = coco_bleu(_tok(refs), _tok(cands))
    assert bleu[0] == pytest.approx(math.exp(-1), rel=1e-8)
    assert bleu[1] == pytest.approx(math.exp(-1), rel=1e-8)
    m = multi_bleu(_tok(refs), _tok(cands))
    assert m["bleu"][1] == pytest.approx(math.exp(-1)) and m["ref_len"] == 4


def test_bleu_clips_repeated_ngrams():
    # "the the the the" against "the cat": unigram matches clipped to 1 of 4
    bleu, _ = coco_bleu(_tok({0: ["the cat the"]}), _tok({0: "the the the the"}))
    # reference has "the" twice: 2 of 4 unigrams match; BP = 1 (4 >= 3)
    assert bleu[0] == pytest.approx(0.5, rel=1e-8)
    m = multi_bleu(_tok({0: ["the cat the"]}), _tok({0: "the the the the"}))
    assert m["precisions"][0] == 0.5 and m["precisions"][1] == 0.0
    assert m["bleu"][1] == pytest.approx(math.exp((math.log(0.5) - 9999999999) / 2))


def test_multi_bleu_closest_length_ties_go_to_the_shorter_reference():
    m = multi_bleu(_tok({0: ["a b", "a b c d"]}), _tok({0: "a b c"}))
    assert m["ref_len"] == 2 and m["bp"] == 1.0


def test_empty_candidate_scores_zero_everywhere():
    refs, cands = {0: ["a b c"], 1: ["d e"]}, {0: "", 1: "d e"}
    corpus, per, _ = score_captions(refs, cands, with_meteor=False)
    assert per[0]["Bleu_1"] == 0.0 and per[0]["ROUGE_L"] == 0.0 and per[0]["CIDEr"] == 0.0
    assert per[1]["ROUGE_L"] == 1.0


def test_lcs_length():
    assert lcs_length("a b c d".split(), "a c d".split()) == 3
    assert lcs_length("a b".split(), "c d".split()) == 0
    assert lcs_length("a b a b".split(), "b a b a".split()) == 3
    assert lcs_length([], ["a"]) == 0


def test_rouge_l_worked_by_hand():
    # candidate "a b x", reference "a b c d": LCS 2, P = 2/3, R = 2/4
    p, r = 2 / 3, 2 / 4
    expected = (1 + 1.2 ** 2) * p * r / (r + 1.2 ** 2 * p)
    assert rouge_l_sentence("a b x", ["a b c d"]) == pytest.approx(expected, rel=1e-12)
    # P and R are maximised over references separately
    p, r = 2 / 3, 2 / 2
    expected = (1 + 1.2 ** 2) * p * r / (r + 1.2 ** 2 * p)
    assert rouge_l_sentence("a b x", ["a b c d", "a x"]) == pytest.approx(expected, rel=1e-12)


def test_cider_d_of_a_single_image_is_zero():
    # one image: log(M) = log 1 = 0 and every df is 1, so every tf-idf weight is 0
    score, _ = cider_d(_tok({0: ["a b c"]}), _tok({0: "a b c"}))
    assert score == 0.0


def test_cider_d_worked_by_hand():
    # two images, one reference each, candidates equal to their references:
    # every n-gram occurs in one image's references: weight tf * (log 2 - log 1);
    # sim_n = 1 for n = 1..3 (identical vectors), 0 for n = 4 (three words have no
    # 4-gram), length penalty exp(0) = 1: CIDEr-D = 10 * 3/4
    refs, cands = {0: ["a b c"], 1: ["d e f"]}, {0: "a b c", 1: "d e f"}
    score, per = cider_d(_tok(refs), _tok(cands))
    assert per[0] == pytest.approx(7.5) and score == pytest.approx(7.5)
    # candidate "a b", reference "a b c": unigram and bigram sims below, no trigram,
    # one bigram against two: penalty exp(-1/72)
    refs, cands = {0: ["a b c"], 1: ["d e f"]}, {0: "a b", 1: "d e f"}
    w = math.log(2)
    uni = (w * w + w * w) / (math.sqrt(2 * w * w) * math.sqrt(3 * w * w))
    bi = (w * w) / (math.sqrt(w * w) * math.sqrt(2 * w * w))
    penalty = math.exp(-(1 - 2) ** 2 / (2 * 36))
    expected = 10 * (uni + bi + 0 + 0) / 4 * penalty
    assert cider_d(_tok(refs), _tok(cands))[1][0] == pytest.approx(expected, rel=1e-12)


# ---- cross-check against the MS-COCO caption evaluation code -----------------------------

def _random_corpus(rng, n_images, vocab):
    words = ["w%d" % i for i in range(vocab)]
    refs, cands = {}, {}
    for i in range(n_images):
        refs[i] = [" ".join(rng.choice(words, size=rng.integers(1, 16)))
                   for _ in range(rng.integers(1, 6))]
        kind = rng.integers(4)
        if kind == 0:  # a copy of a reference
            cands[i] = refs[i][rng.integers(len(refs[i]))]
        elif kind == 1:  # a reference with repeated n-grams
            r = refs[i][0].split()
            cands[i] = " ".join(r + r[: rng.integers(1, len(r) + 1)])
        else:
            cands[i] = " ".join(rng.choice(words, size=rng.integers(1, 21)))
    return refs, cands


CASES = [(seed, n_images, vocab) for seed in range(150)
         for n_images, vocab in [(1 + seed % 50, 3 + seed % 7), (2 + seed % 13, 20 + seed)]]


@pytest.mark.parametrize("seed, n_images, vocab", CASES)
def test_bleu_cider_rouge_equal_the_coco_evaluation(seed, n_images, vocab, capsys):
    pytest.importorskip("pycocoevalcap")
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    rng = np.random.default_rng(seed)
    refs, cands = _random_corpus(rng, n_images, vocab)
    corpus, per, _ = score_captions(refs, cands, with_meteor=False)
    res = {k: [v] for k, v in cands.items()}
    bleu, bleu_per = Bleu(4).compute_score(refs, res)
    cider, cider_per = Cider().compute_score(refs, res)
    rouge, rouge_per = Rouge().compute_score(refs, res)
    keys = list(cands)
    for n in range(4):
        assert corpus["Bleu_%d" % (n + 1)] == pytest.approx(bleu[n], abs=1e-9)
        assert [per[k]["Bleu_%d" % (n + 1)] for k in keys] == pytest.approx(bleu_per[n], abs=1e-9)
    assert corpus["CIDEr"] == pytest.approx(cider, abs=1e-9)
    assert [per[k]["CIDEr"] for k in keys] == pytest.approx(list(cider_per), abs=1e-9)
    assert corpus["ROUGE_L"] == pytest.approx(rouge, abs=1e-9)
    assert [per[k]["ROUGE_L"] for k in keys] == pytest.approx(list(rouge_per), abs=1e-9)


@pytest.mark.slow
def test_meteor_runs_the_official_jar():
    refs = {0: ["a man is riding a horse", "a person rides a brown horse"],
            1: ["two dogs play in the snow"]}
    score, per, reason = meteor(refs, {0: "a man is riding a horse", 1: "x y z"})
    if score is None:
        pytest.skip(reason)
    assert per[0] > 0.9 and per[1] == 0.0 and 0 < score < 1
