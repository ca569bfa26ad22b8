"""Caption metrics: BLEU-1..4 (MS-COCO and multi-bleu.perl), METEOR, ROUGE-L, CIDEr-D.

Inputs are tokenised captions, lowercase, words joined by single spaces.
"""
from neuraltalk.metrics.bleu import coco_bleu, multi_bleu
from neuraltalk.metrics.cider import cider_d
from neuraltalk.metrics.meteor import meteor
from neuraltalk.metrics.rouge import rouge_l

COCO_KEYS = ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr")


def score_captions(references, candidates, with_meteor=True):
    """references: id -> list of strings; candidates: id -> string.

    Returns (corpus, per_image, notes): corpus has the COCO evaluation's keys (METEOR
    only when it ran) plus multi-bleu.perl's `multibleu_1..4`; per_image maps each id
    to its own scores under the COCO keys; notes lists what was skipped and why.
    """
    ref_tokens = {k: [r.split() for r in refs] for k, refs in references.items()}
    cand_tokens = {k: c.split() for k, c in candidates.items()}
    bleu, bleu_per = coco_bleu(ref_tokens, cand_tokens)
    multi = multi_bleu(ref_tokens, cand_tokens)
    rouge, rouge_per = rouge_l(references, candidates)
    cider, cider_per = cider_d(ref_tokens, cand_tokens)
    corpus = {"Bleu_%d" % (n + 1): bleu[n] for n in range(4)}
    corpus.update({"ROUGE_L": rouge, "CIDEr": cider})
    corpus.update({"multibleu_%d" % (n + 1): multi["bleu"][n] for n in range(4)})
    per_image = {k: dict({"Bleu_%d" % (n + 1): bleu_per[k][n] for n in range(4)},
                         ROUGE_L=rouge_per[k], CIDEr=cider_per[k]) for k in candidates}
    notes = []
    if with_meteor:
        score, meteor_per, reason = meteor(references, candidates)
        if score is None:
            notes.append("METEOR skipped: %s" % reason)
        else:
            corpus["METEOR"] = score
            for k in candidates:
                per_image[k]["METEOR"] = meteor_per[k]
    else:
        notes.append("METEOR skipped: not asked for")
    return corpus, per_image, notes
