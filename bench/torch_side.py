"""PyTorch versions of the benchmarks' work, for side-by-side figures (bench only).

torch is imported here, guarded: `available()` is False without it and the benchmarks
print the project's figures alone. Each function does the same work as the project's
code on the same batch: same shapes, float32, the same thread count (`blas_threads()`,
the project's BLAS threads), in PyTorch's fastest reasonable formulation:
  - LSTM training: nn.LSTM on a PackedSequence (fused gates, C++ recurrence), the decoder
    on the packed rows, cross-entropy summed / B, weight decay = the L2 term, gradient
    clipping by value, RMSprop;
  - RNN training: the same packing; the image encoding added at every step and the ReLU
    recurrence written over the packed steps (torch.addmm per step: nn.RNN has an input
    matrix the model has not);
  - decoding: nn.LSTMCell, batched beams (N images x K beams in one step), top-k over
    K x V per image, inference_mode;
  - the alignment model: eqs. 1-9 on packed sentences, both recurrences over the packed
    steps, one region-word product, Adam with the word vectors frozen.
"""
import os

import numpy as np

try:
    import torch
    import torch.nn.functional as F
    from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence
except ImportError:  # the benchmarks then print the project's figures only
    torch = None


def available():
    return torch is not None


def blas_threads():
    """The project's BLAS thread count: OPENBLAS_NUM_THREADS / OMP_NUM_THREADS, else the
    CPU count (OpenBLAS's default)."""
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return os.cpu_count() or 1


def setup():
    torch.set_num_threads(blas_threads())
    torch.manual_seed(0)


def _uniform(*shape):
    return torch.empty(*shape).uniform_(-0.1, 0.1)


# ----------------------------------------------------------------------------- captioning

class CaptionTrainer:
    """A caption generator's training step in PyTorch: generator 'lstm' or 'rnn'."""

    def __init__(self, generator, D, E, H, V, regc=1e-8, lr=1e-3, decay=0.999, clip=5.0,
                 drop=0.5):
        self.generator, self.drop, self.clip, self.regc = generator, drop, clip, regc
        nn = torch.nn
        if generator == "lstm":
            self.We = nn.Linear(D, E)
            self.lstm = nn.LSTM(E, H)
            mats = [self.We.weight, self.lstm.weight_ih_l0, self.lstm.weight_hh_l0]
            biases = [self.We.bias, self.lstm.bias_ih_l0, self.lstm.bias_hh_l0]
        else:
            self.We = nn.Linear(D, H)
            self.Wxh = nn.Linear(E, H)
            self.Whh = nn.Parameter(_uniform(H, H))
            self.bhh = nn.Parameter(torch.zeros(H))
            mats = [self.We.weight, self.Wxh.weight, self.Whh]
            biases = [self.We.bias, self.Wxh.bias, self.bhh]
        self.Ws = nn.Embedding(V, E)
        self.Wd = nn.Linear(H, V)
        mats += [self.Ws.weight, self.Wd.weight]
        biases += [self.Wd.bias]
        with torch.no_grad():
            for p in mats + biases:
                p.uniform_(-0.1, 0.1)
        self.params = mats + biases
        self.mats = mats
        self.opt = torch.optim.RMSprop([{"params": mats}, {"params": biases}], lr=lr,
                                       alpha=decay, eps=1e-8)

    def step(self, batch):
        """One training step on a Batch (feats (B, D), words (B, T), lengths (B,))."""
        B = len(batch.lengths)
        lengths = np.asarray(batch.lengths)
        T = int(lengths.max())
        first = 1 if self.generator == "lstm" else 0  # the LSTM's image step
        # padded time-major words: [image], START, w_1..w_n ; targets w_1..w_n, END
        inputs = np.zeros((T + 1 + first, B), np.int64)
        targets = np.zeros((T + 1 + first, B), np.int64)
        w = np.asarray(batch.words)[:, :T].T
        inputs[1 + first:] = w
        targets[first:first + T] = w
        steps = torch.from_numpy(lengths + 1 + first)
        packed_in = pack_padded_sequence(torch.from_numpy(inputs), steps, enforce_sorted=False)
        packed_tg = pack_padded_sequence(torch.from_numpy(targets), steps, enforce_sorted=False)
        order = packed_in.sorted_indices
        feats = torch.from_numpy(np.asarray(batch.feats))[order]
        xi = self.We(feats)
        if self.generator == "lstm":
            X = torch.cat([xi, self.Ws(packed_in.data[B:])])
            X = F.dropout(X, self.drop, True)
            out, _ = self.lstm(PackedSequence(X, packed_in.batch_sizes, order,
                                              packed_in.unsorted_indices))
            Hdec = out.data[B:]
            tg = packed_tg.data[B:]
        else:
            xs = F.dropout(self.Ws(packed_in.data), self.drop, True)
            xi = F.dropout(xi, self.drop, True)
            counts = packed_in.batch_sizes.tolist()
            seq = torch.from_numpy(np.concatenate([np.arange(k) for k in counts]))
            A = torch.addmm(self.Wxh.bias + self.bhh, xs, self.Wxh.weight.t()) + xi[seq]
            hs = []
            h = None
            for a in torch.split(A, counts):
                h = torch.relu(a if h is None else torch.addmm(a, h[:len(a)], self.Whh))
                hs.append(h)
            Hdec = torch.cat(hs)
            tg = packed_tg.data
        Y = self.Wd(F.dropout(Hdec, self.drop, True))
        loss = F.cross_entropy(Y, tg, reduction="sum") / B
        if self.regc > 0:
            loss = loss + 0.5 * self.regc / B * sum((m * m).sum() for m in self.mats)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_value_(self.params, self.clip)
        self.opt.step()
        return float(loss.detach())


class LSTMDecoder:
    """Greedy / beam decoding of an LSTM generator (E, H, V, image width D) in PyTorch."""

    def __init__(self, D, E, H, V):
        nn = torch.nn
        self.We, self.Ws = nn.Linear(D, E), nn.Embedding(V, E)
        self.cell, self.Wd = nn.LSTMCell(E, H), nn.Linear(H, V)
        with torch.no_grad():
            for m in (self.We, self.Ws, self.cell, self.Wd):
                for p in m.parameters():
                    p.uniform_(-0.1, 0.1)
            self.Wd.bias[0] = -20.0  # END never likely, as the project's benchmark

    def decode(self, feats, K, max_steps=20):
        """feats (N, D) float32 numpy -> (scores (N, K), sequences (N, K, max_steps))."""
        with torch.inference_mode():
            f = torch.from_numpy(feats)
            N = len(f)
            V = self.Wd.out_features
            h, c = self.cell(self.We(f))
            h, c = h.repeat_interleave(K, 0), c.repeat_interleave(K, 0)
            scores = torch.full((N, K), float("-inf"))
            scores[:, 0] = 0
            seqs = torch.zeros((N, K, max_steps), dtype=torch.long)
            finished = torch.zeros((N, K), dtype=torch.bool)
            stay = torch.full((V,), float("-inf"))
            stay[0] = 0  # a finished beam's only candidate: itself (END again, + 0)
            prev = torch.zeros(N * K, dtype=torch.long)
            base = (torch.arange(N) * K)[:, None]
            for t in range(max_steps):
                h, c = self.cell(self.Ws(prev), (h, c))
                logp = torch.log_softmax(self.Wd(h), 1).view(N, K, V)
                if finished.any():
                    logp = torch.where(finished[:, :, None], stay, logp)
                scores, idx = (scores[:, :, None] + logp).view(N, K * V).topk(K, 1)
                parent, word = idx // V, idx % V
                rows = (base + parent).view(-1)
                h, c = h[rows], c[rows]
                seqs = seqs.view(N * K, -1)[rows].view(N, K, -1)
                seqs[:, :, t] = word
                finished = finished.gather(1, parent) | (word == 0)
                prev = word.view(-1)
            return scores.numpy(), seqs.numpy()


# ------------------------------------------------------------------------ alignment model

class BRNNTrainer:
    """The alignment model's training step (Karpathy & Fei-Fei eqs. 1-9, score max) in
    PyTorch: region feats (K, R, D), h, word vectors w (frozen), Adam."""

    def __init__(self, D, h, w, V, regc=1e-8, lr=1e-3, clip=5.0, margin=1.0):
        P = torch.nn.Parameter
        u = lambda n, m, s=None: P(_uniform(n, m) * 10 * (s or np.sqrt(6.0 / (n + m))))  # noqa
        self.Wm, self.bm = u(D, h), P(torch.zeros(h))
        self.Ww = _uniform(V, w) * 5  # fixed word vectors: no gradient
        self.We, self.be = u(w, h), P(torch.full((h,), 0.01))
        self.Wf, self.bf = P(u(h, h).detach() * 0.5), P(torch.full((h,), 0.01))
        self.Wb, self.bb = P(u(h, h).detach() * 0.5), P(torch.full((h,), 0.01))
        self.Wd, self.bd = u(h, h), P(torch.full((h,), 0.01))
        self.mats = [self.Wm, self.We, self.Wf, self.Wb, self.Wd]
        self.params = self.mats + [self.bm, self.be, self.bf, self.bb, self.bd]
        self.regc, self.clip, self.margin = regc, clip, margin
        self.opt = torch.optim.Adam(self.params, lr=lr, betas=(0.9, 0.999), eps=1e-8)

    def step(self, regions, words, lengths):
        K, R, D = regions.shape
        lengths = np.asarray(lengths)
        T = int(lengths.max())
        packed = pack_padded_sequence(torch.from_numpy(np.asarray(words)[:, :T].T.astype(np.int64)),
                                      torch.from_numpy(lengths), enforce_sorted=False)
        counts = packed.batch_sizes.tolist()
        v = (torch.from_numpy(regions).view(K * R, D) @ self.Wm + self.bm)  # eq. 1
        e = torch.relu(self.Ww[packed.data] @ self.We + self.be)  # eqs. 2-3
        steps = torch.split(e, counts)
        hf, h = [], None
        for a in steps:  # eq. 4 over the packed steps
            a = a + self.bf
            h = torch.relu(a if h is None else torch.addmm(a, h[:len(a)], self.Wf))
            hf.append(h)
        hb, h = [None] * len(steps), None
        for t in reversed(range(len(steps))):  # eq. 5: from each sentence's last word
            a = steps[t] + self.bb
            if h is not None:
                n = len(h)
                a = torch.cat([torch.addmm(a[:n], h, self.Wb), a[n:]])
            h = torch.relu(a)
            hb[t] = h
        s = torch.relu((torch.cat(hf) + torch.cat(hb)) @ self.Wd + self.bd)  # eq. 6
        dots = (v @ s.t()).view(K, R, -1)  # every region-word product
        per_word = dots.max(1).values  # (K, N) eq. 8: the best region of each word
        sentence = packed.sorted_indices[torch.from_numpy(
            np.concatenate([np.arange(k) for k in counts]))]
        S = torch.zeros(K, K).index_add_(1, sentence, per_word)  # (images, sentences)
        diag = S.diagonal()
        off = 1 - torch.eye(K)
        cost = ((torch.relu(S - diag[:, None] + self.margin) * off).sum()
                + (torch.relu(S - diag[None, :] + self.margin) * off).sum()) / K
        if self.regc > 0:
            cost = cost + 0.5 * self.regc / K * sum((m * m).sum() for m in self.mats)
        self.opt.zero_grad(set_to_none=True)
        cost.backward()
        torch.nn.utils.clip_grad_value_(self.params, self.clip)
        self.opt.step()
        return float(cost.detach())
