"""Image-sentence retrieval metrics: R@1, R@5, R@10 and median rank, both ways.

Image annotation (i2t): for each image, the rank of the best-ranked of its own sentences
among all sentences. Image search (t2i): for each sentence, the rank of its image among
all images. Ties count against the right answer, so a model that scores everything alike
(say, all ReLUs dead) gets the worst ranks, not the best.
"""
import numpy as np


def ranks(S, sentence_image):
    """i2t ranks (N_images,) and t2i ranks (N_sentences,), 1 = best.

    S: (N_images, N_sentences) scores, higher is better; sentence_image: for each
    sentence, its image's row."""
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


def ranks_of_block(S_block, sentence_image, start, world):
    """ranks(S, sentence_image), the same arrays on every rank of `world` (parallel.World),
    when each rank holds only its block of S's columns, S_block = S[:, start:stop], the
    blocks contiguous and in rank order (as World.share splits). Only vectors travel:
    every sentence's own score and t2i rank (allgather), and each image's count of
    sentences scoring at least its best own one (one allreduce), never the matrix."""
    n_images, width = S_block.shape
    columns = np.arange(width)
    own_block = S_block[sentence_image[start:start + width], columns]
    own = np.concatenate(world.allgather(own_block))
    t2i = np.concatenate(world.allgather((S_block >= own_block[None, :]).sum(0)))
    best_own = np.full(n_images, -np.inf, dtype=S_block.dtype)
    np.maximum.at(best_own, sentence_image, own)
    own_at_best = np.zeros(n_images, dtype=np.int64)
    np.add.at(own_at_best, sentence_image, own >= best_own[sentence_image])
    at_least = np.ascontiguousarray((S_block >= best_own[:, None]).sum(1), dtype=np.int64)
    world.allreduce_sum(at_least)
    return 1 + at_least - own_at_best, t2i
