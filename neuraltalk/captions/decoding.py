"""Greedy and beam-search decoding, batched over images and beams, as NeuralTalk decodes.

A caption's score is the sum of log(1e-20 + p) of its words, END included. At every
step each unfinished beam proposes its beam_size best next words, a finished beam (last
word END) stays in the pool unchanged, and each image keeps its beam_size best
candidates. After max_steps steps decoding stops, finished or not. One generator step
(one matrix product per layer) serves all live beams of all images.
"""
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from neuraltalk.layers import blas
from neuraltalk.models import module_of


def beam_search(model, params, feats, beam_size=1, max_steps=20, regions=None,
                return_weights=False):
    """feats (N, D). Returns for each image its beams, best first: [(logprob, [ix, ...])].

    A sequence ends with 0 (END) when it finished within max_steps. regions: (regions
    (N, R, D), region_counts (N,)) for a generator that attends (NEEDS_REGIONS); they
    sit in the state, one copy per beam. return_weights: beams are (logprob, [ix, ...],
    weights (len, R)), the attention weights each chosen word was picked with (an
    attending generator's step leaves them in state['alpha']).
    """
    gen = module_of(params)
    N = len(feats)
    K = max(1, int(beam_size))
    if N == 0:
        return []
    feats = np.asarray(feats, dtype=model["Wd"].dtype)
    model = decoding_model(model, params, N * K * max_steps)
    if getattr(gen, "NEEDS_REGIONS", False):
        state = gen.start(model, feats, params, *(regions or (None, None)))
    else:
        state = gen.start(model, feats, params)
    weighted = return_weights and "alpha" in state
    if weighted:
        R = state["alpha"].shape[1]
        weights = np.zeros((N, K, max_steps, R), dtype=state["alpha"].dtype)
    # beam (n, k) lives in row n*K + k; at first only beam 0 of each image exists
    state = {name: np.repeat(a, K, axis=0) for name, a in state.items()}
    scores = np.full((N, K), -np.inf)
    scores[:, 0] = 0.0
    seqs = np.zeros((N, K, max_steps), dtype=np.int64)
    lengths = np.zeros((N, K), dtype=np.int64)
    finished = np.zeros((N, K), dtype=bool)
    rows = np.arange(N)[:, None]
    for t in range(max_steps):
        live = np.isfinite(scores) & ~finished
        if not live.any():
            break
        live_rows = np.flatnonzero(live.ravel())
        prev = seqs[:, :, t - 1].ravel()[live_rows] if t > 0 else np.zeros(len(live_rows), np.int64)
        live_state = {name: a[live_rows] for name, a in state.items()}
        logits, new_live_state = gen.step(model, live_state, prev, params)
        top, top_logprob = best_words(logits, K)
        # candidates (N, K parents, K words): expansions of live beams; a finished
        # beam is one candidate, itself, in slot 0
        kw = top.shape[1]  # min(K, vocabulary size)
        cand_score = np.full((N * K, K), -np.inf)
        cand_score[live_rows, :kw] = scores.ravel()[live_rows, None] + top_logprob
        cand_word = np.zeros((N * K, K), dtype=np.int64)
        cand_word[live_rows, :kw] = top
        done_rows = np.flatnonzero(finished.ravel())
        cand_score[done_rows, 0] = scores.ravel()[done_rows]
        cand_score = cand_score.reshape(N, K * K)
        # best K candidates per image; a stable sort keeps NeuralTalk's order on ties
        order = np.argsort(-cand_score, axis=1, kind="stable")[:, :K]
        parent = order // K
        new_scores = cand_score[rows, order]
        parent_finished = finished[rows, parent]
        word = cand_word.reshape(N, K * K)[rows, order]
        seqs = seqs[rows, parent]
        lengths = lengths[rows, parent]
        grow = ~parent_finished & np.isfinite(new_scores)
        seqs[grow, t] = word[grow]
        if weighted:  # the parent's step chose the word with these weights
            weights = weights[rows, parent]
            alpha = np.zeros((N * K, R), weights.dtype)
            alpha[live_rows] = new_live_state["alpha"]
            weights[grow, t] = alpha[(rows * K + parent)][grow]
        lengths[grow] += 1
        finished = parent_finished | (grow & (word == 0))
        scores = new_scores
        # the new beams' states: their parents' states after this step
        full = {name: np.zeros((N * K,) + a.shape[1:], a.dtype) for name, a in new_live_state.items()}
        for name in full:
            full[name][live_rows] = new_live_state[name]
        parent_rows = (rows * K + parent).ravel()
        state = {name: a[parent_rows] for name, a in full.items()}
    results = []
    for n in range(N):
        beams = []
        for k in range(K):
            if np.isfinite(scores[n, k]):
                beam = (float(scores[n, k]), [int(w) for w in seqs[n, k, :lengths[n, k]]])
                if return_weights:
                    beam += (weights[n, k, :lengths[n, k]] if weighted else None,)
                beams.append(beam)
        results.append(beams)
    return results


def best_words(logits, k):
    """The k best next words of each row and their log(1e-20 + softmax) values, best first.
    logits (rows, V) is overwritten (by its exp)."""
    k = min(k, logits.shape[1])
    rows = np.arange(len(logits))
    if k == 1:  # greedy: one argmax pass, nothing to mask
        top = logits.argmax(1)[:, None]
        picked = logits[rows, top[:, 0]][:, None]
    elif k <= 32:  # k passes of argmax are much faster than a partial sort of each row;
        # each pass masks its pick in place (no copy of the rows), and the picks are put back
        top = np.empty((len(logits), k), dtype=np.int64)
        picked = np.empty((len(logits), k), dtype=logits.dtype)
        for j in range(k):
            top[:, j] = logits.argmax(1)
            picked[:, j] = logits[rows, top[:, j]]
            logits[rows, top[:, j]] = -np.inf
        logits[rows[:, None], top] = picked
    else:
        top = np.argsort(-logits, axis=1, kind="stable")[:, :k]
        picked = np.take_along_axis(logits, top, axis=1)
    m = picked[:, :1]  # the row maximum
    np.subtract(logits, m, out=logits)  # in place: the vocabulary-wide exp is the step's
    total = np.exp(logits, out=logits).sum(1, keepdims=True)  # biggest temporary
    return top, np.log(1e-20 + np.exp(picked - m) / total)


def decoding_model(model, params, rows):
    """The generator's model for decoding `rows` word rows in all (its decoding_model,
    which tables what a step computes of each word, when it has one and the table costs
    less than it saves: rows > V); else the model itself."""
    prepare = getattr(module_of(params), "decoding_model", None)
    if prepare is None or rows <= model["Wd"].shape[1]:
        return model
    return prepare(model, params)


def caption_text(ixtoword, sequence):
    """The words of a decoded sequence, END left out."""
    return " ".join(ixtoword[ix] for ix in sequence if ix > 0)


def decode_in_batches(model, params, feats, beam_size=1, batch_size=256, max_steps=20,
                      progress=None, regions=None, return_weights=False):
    """beam_search over row batches of a (N, D) feature array-like; yields per-image beams.

    regions: for an attending generator, (index array -> (regions (n, R, D), counts (n,)))
    of the same images.

    With more than one BLAS thread, as many batches are decoded at once, each on one
    thread (see layers/blas.py): a batch's products are too small to share between
    threads well, and its elementwise work (the exp over the vocabulary, the top-k
    passes, the gates) runs on one core anyway. Each batch is decoded exactly as alone,
    and the beams come out in order."""
    N = len(feats)
    model = decoding_model(model, params, N * max(1, int(beam_size)) * max_steps)  # once
    batches = [np.arange(start, min(start + batch_size, N)) for start in range(0, N, batch_size)]
    workers = min(blas.threads(), len(batches))

    def work(idx):
        rows = np.asarray(feats[idx], dtype=model["Wd"].dtype)
        return rows, regions(idx) if regions is not None else None

    if workers <= 1:
        for idx in batches:
            rows, reg = work(idx)
            for beams in beam_search(model, params, rows, beam_size, max_steps, reg,
                                     return_weights):
                yield beams
            if progress:
                progress(int(idx[-1]) + 1, N)
        return
    with ThreadPoolExecutor(workers) as pool, blas.one_thread():
        pending = deque()
        for i, idx in enumerate(batches):
            rows, reg = work(idx)  # read here: feature files need not be thread-safe
            pending.append((int(idx[-1]) + 1, pool.submit(
                beam_search, model, params, rows, beam_size, max_steps, reg, return_weights)))
            while pending and (len(pending) >= workers or i == len(batches) - 1):
                done, future = pending.popleft()
                for beams in future.result():
                    yield beams
                if progress:
                    progress(done, N)
