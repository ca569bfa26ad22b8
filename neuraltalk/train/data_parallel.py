"""Data-parallel training on the ranks of an MPI job (neuraltalk/parallel.py).

Every rank draws the same global batch of --batch_size from the same seeded generator and
works on its own contiguous slice of it (`world().share(B)`). The slices' gradients go into
one flat float32 buffer that one in-place Allreduce sums per iteration (the cost's sums ride
at its end), and every rank applies the same solver update to the same sum, so the
parameters stay identical on every rank (`check_in_step` compares a checksum).

A slice's cost is normalised by the GLOBAL batch size (the model's own loss divides by the
slice's size; its cost and gradients are scaled by slice / batch) and the L2 term is added
once, after the sum, so the sum over the ranks is the cost and gradient that one process
computes on the whole batch, to float32 round-off.

Dropout: a generator's masks are drawn for the whole batch, in its packed layout
(neuraltalk/layers/packed.py), from the shared generator, exactly as one process draws
them, and each rank takes the rows of its own sentences (`rows_of_slice`). So a sentence
gets the same mask whichever rank holds it, and the random stream of a K-rank run is that of
a 1-process run: a checkpoint resumes with any number of ranks, and continues as it would.

The alignment model's ranking cost (eq. 9) couples every image with every sentence of the
batch: see `alignment_cost`.
"""
import numpy as np

from neuraltalk.errors import NeuralTalkError
from neuraltalk.layers.affine import affine_backward, affine_forward
from neuraltalk.layers.packed import layout, step_offsets
from neuraltalk.parallel import checksum, shard_range


class FlatSum:
    """One flat buffer (float32, as the model): the gradients of `keys` (shapes of
    `model`), then `scalars` cost sums; `reduce` sums it over the ranks in place (one
    Allreduce)."""

    def __init__(self, model, keys, scalars, world):
        self.keys, self.scalars, self.world = list(keys), list(scalars), world
        sizes = [model[k].size for k in self.keys]
        # float32 in training; float64 when a gradient check runs on a float64 model
        dtype = model[self.keys[0]].dtype if self.keys else np.float32
        self.buffer = np.zeros(sum(sizes) + len(self.scalars), dtype=dtype)
        self.grads, offset = {}, 0
        for key, size in zip(self.keys, sizes):
            self.grads[key] = self.buffer[offset:offset + size].reshape(model[key].shape)
            offset += size
        self.sums = self.buffer[offset:]

    @property
    def nbytes(self):
        return self.buffer.nbytes

    def reduce(self, grads, scale, values):
        """Put scale * grads[key] and values[name] in the buffer, sum it over the ranks;
        returns (the summed grads as views of the buffer, {name: summed value})."""
        for key in self.keys:
            np.multiply(grads[key], scale, out=self.grads[key], casting="unsafe")
        self.sums[:] = [values.get(name, 0.0) for name in self.scalars]
        self.world.allreduce_sum(self.buffer)
        return self.grads, {name: float(v) for name, v in zip(self.scalars, self.sums)}


def slice_batch(batch, start, stop):
    """The sentences [start, stop) of a Batch, every per-sentence field sliced."""
    return type(batch)(**{name: None if value is None else value[start:stop]
                          for name, value in batch._asdict().items()})


def rows_of_slice(masks, lay, part):
    """A rank's rows of dropout `masks` drawn for the whole batch in its layout `lay`.

    `part` is the layout of the rank's slice [start, stop), with `part.order` already
    offset by start (batch indices). A mask (or each mask of a nested tuple) has one row
    per sorted sentence (B rows: the image rows), per packed row (N rows), or both, images
    first (B + N rows, the LSTM's encoder mask). Row (sorted sentence j, step t) of a
    layout is offsets[t] + j, so the slice's rows are found without a loop."""
    B, N = len(lay.order), len(lay.inputs)
    position = np.empty(B, dtype=np.int64)
    position[lay.order] = np.arange(B)  # each batch sentence's place in the sorted order
    images = position[part.order]
    rows = step_offsets(lay.counts)[part.step] + images[part.sentence]

    def take(m):
        if m is None:
            return None
        if isinstance(m, tuple):
            return tuple(take(x) for x in m)
        if len(m) == N:  # (when N == B every sentence is empty and both mappings agree)
            return m[rows]
        if len(m) == B:
            return m[images]
        if len(m) == B + N:
            return np.concatenate([m[:B][images], m[B:][rows]])
        raise NeuralTalkError("a dropout mask of %d rows fits neither the %d sentences nor "
                              "the %d packed rows of the batch" % (len(m), B, N))
    return take(masks)


def check_share(batch_size, world, what="--batch_size"):
    if batch_size < world.size:
        raise NeuralTalkError("%s %d is smaller than the %d ranks of this job: give every "
                              "rank at least one pair (a larger %s or fewer ranks)"
                              % (what, batch_size, world.size, what))


def generator_cost(gen, params, model, update_keys, world):
    """The Task cost (model, batch, rng) -> (cost, grads) of caption generator module `gen`,
    summed over the ranks. Returns (cost function, its FlatSum)."""
    if not hasattr(gen, "dropout_masks"):
        raise NeuralTalkError("the %s generator has no dropout_masks(params, model, layout, "
                              "rng): it cannot train data-parallel" % gen.NAME)
    local = dict(params, regc=0)  # the L2 term is added once, after the sum
    flat = FlatSum(model, update_keys, ("loss_cost", "att_cost", "logppl", "ntokens"), world)

    def cost(model, batch, rng):
        B = len(batch.lengths)
        check_share(B, world)
        start, stop = world.share(B)
        part = slice_batch(batch, start, stop)
        lay = layout(batch.words, batch.lengths)
        own = layout(part.words, part.lengths)
        own = own._replace(order=own.order + start)
        # the whole batch's masks, drawn as one process draws them; this rank's rows
        masks = rows_of_slice(gen.dropout_masks(params, model, lay, rng), lay, own)
        c, g = gen.loss(model, part, local, masks=masks)
        share = (stop - start) / B  # the slice's loss was divided by its own size
        grads, sums = flat.reduce(g, share, {"loss_cost": c["loss_cost"] * share,
                                             "att_cost": c.get("att_cost", 0.0) * share,
                                             "logppl": c["logppl"], "ntokens": c["ntokens"]})
        reg_cost = add_l2(model, grads, gen.REGULARIZED, params, B)
        total = {"loss_cost": sums["loss_cost"], "reg_cost": reg_cost,
                 "total_cost": sums["loss_cost"] + reg_cost + sums["att_cost"],
                 "ppl2": 2.0 ** (sums["logppl"] / max(1.0, sums["ntokens"])),
                 "logppl": sums["logppl"], "ntokens": int(round(sums["ntokens"]))}
        if "att_cost" in c:
            total["att_cost"] = sums["att_cost"]
        return total, grads
    return cost, flat


def add_l2(model, grads, regularized, params, B):
    """regc/2 * sum W^2 / B of the `regularized` matrices, once, with its gradient added to
    those in `grads` (what the models' losses add); returns the cost."""
    regc = params.get("regc", 0)
    reg_cost = 0.0
    if regc > 0:
        for name in regularized:
            W = model[name]
            reg_cost += 0.5 * regc * float(np.sum(W.astype(np.float64) ** 2)) / B
            if name in grads:
                grads[name] += (regc / B) * W
    return reg_cost


def alignment_cost(params, model, update_keys, world):
    """The Task cost of the alignment model (models/brnn.py) over the ranks.

    Each rank embeds its slice's images (v, eq. 1) and runs the BRNN over its slice's
    sentences (s_t, eqs. 2-6). The s_t of every sentence are allgathered, each rank scores
    its images against all of them (its rows of S, eq. 8), and the rows are allgathered, so
    every rank holds the whole S and the same ranking cost and dS (eq. 9). Each rank takes
    its rows of dS back into dv (its images: Wm, bm) and into ds of every sentence; ds is
    summed over the ranks (an Allreduce of N_words x h) and each rank backpropagates its
    own sentences' rows through its BRNN. The parameter gradients then go through the one
    FlatSum of every iteration. Returns (cost function, its FlatSum)."""
    from neuraltalk.models import brnn
    flat = FlatSum(model, update_keys, (), world)
    kind, margin = params.get("score", "max"), params.get("margin", 1.0)

    def cost(model, batch, rng):
        K = len(batch.lengths)
        check_share(K, world, "the batch (--batch_size, at most the training images)")
        start, stop = world.share(K)
        dtype = model["Wm"].dtype
        feats = np.asarray(batch.regions[start:stop], dtype=dtype)
        k, R, D = feats.shape
        v, region_cache = affine_forward(feats.reshape(k * R, D), model["Wm"], model["bm"])
        v = v.reshape(k, R, -1)
        mine, brnn_cache = brnn.sentence_vectors(model, batch.words[start:stop],
                                                 batch.lengths[start:stop])
        lengths = np.asarray(batch.lengths, dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        # sentence-major rows of consecutive slices, concatenated: the whole batch's
        everyone = brnn.Sentences(np.concatenate(world.allgather(mine.s)),
                                  np.repeat(np.arange(K), lengths), starts, lengths)
        S_rows, score_cache = brnn.image_sentence_scores(
            v, batch.region_counts[start:stop], everyone, kind, need_cache=True)
        S = np.concatenate(world.allgather(S_rows))
        c, dS = brnn.ranking_cost(S, margin)
        dv, ds = brnn.image_sentence_scores_backward(dS[start:stop] / K, score_cache)
        ds = world.allreduce_sum(np.ascontiguousarray(ds))
        first = int(starts[start]) if start < K else 0
        grads = brnn.sentence_vectors_backward(ds[first:first + len(mine.s)], brnn_cache)
        _, grads["Wm"], grads["bm"] = affine_backward(dv.reshape(k * R, -1), region_cache,
                                                      need_dx=False)
        grads, _ = flat.reduce(grads, 1.0, {})
        reg_cost = add_l2(model, grads, brnn.REGULARIZED, params, K)
        return {"loss_cost": c / K, "reg_cost": reg_cost, "total_cost": c / K + reg_cost}, grads
    return cost, flat


def distribute(task, params, world, dataset=None):
    """The Task whose cost is computed data-parallel on the ranks of `world`, and the bytes
    of the buffer allreduced per iteration. Its validate is collective (every rank calls
    it and gets the result): a generator's perplexity is sharded over the ranks (each
    scores its share of the validation batches; the sums are reduced), the alignment
    model's retrieval runs on rank 0 and its result is broadcast."""
    from neuraltalk import models
    if params.get("scst"):
        raise NeuralTalkError("--scst 1 does not train data-parallel yet (its sampled captions "
                              "draw from one random stream): run it as one process, without "
                              "mpirun or with mpirun -n 1")
    check_share(params["batch_size"], world)
    keys = list(task.update_keys)
    if models.is_generator(params):
        gen = models.module_of(params)
        cost, flat = generator_cost(gen, params, task.model, keys, world)
        validate = sharded_perplexity(gen, params, task, dataset, world)
    elif params["model"] == "brnn":
        cost, flat = alignment_cost(params, task.model, keys, world)
        validate = None
    else:
        raise NeuralTalkError("--model %s has no data-parallel cost: run it as one process"
                              % params["model"])
    if validate is None:
        def validate(model, root_validate=task.validate):
            return world.bcast(root_validate(model) if world.is_root else None)
    return task._replace(cost=cost, validate=validate), flat.nbytes


def sharded_perplexity(gen, params, task, dataset, world):
    """A generator's validation (captioning.make_task's) with its batches split over the
    ranks: the sums of log2-perplexity and of scored words are reduced, so every rank gets
    the perplexity one process computes (to float64 round-off). None without `dataset`."""
    if dataset is None:
        return None
    from neuraltalk.data.batches import SentenceTable
    from neuraltalk.models import captioning
    regions = captioning.dataset_regions(gen, params, dataset)
    val = SentenceTable(dataset, task.wordtoix, "val", regions)
    batch_size = params.get("eval_batch_size", 100)
    max_images = params.get("eval_max_images", -1)
    n_images = len(val.image_ids) if max_images < 0 else min(max_images, len(val.image_ids))
    end = int(val.offsets[n_images - 1] + val.counts[n_images - 1]) if n_images else 0
    starts = np.arange(0, end, batch_size)
    first, last = world.share(len(starts))

    def validate(model):
        sums = np.zeros(2, dtype=np.float64)
        for start in starts[first:last]:  # as SentenceTable.iter_batches, this rank's share
            batch = val.batch(np.arange(start, min(start + batch_size, end)))
            cost, _ = captioning.batch_cost(model, batch, dict(params, regc=0),
                                            compute_grads=False)
            sums += (cost["logppl"], cost["ntokens"])
        logppl, ntokens = world.allreduce_sum(sums)
        ppl = 2.0 ** (logppl / max(1, ntokens))
        return {"name": "perplexity", "value": ppl, "lower_is_better": True,
                "summary": "validation perplexity = %f" % ppl}
    return validate


def shares_line(world, batch_size, nbytes):
    """The line a data-parallel run prints at its start."""
    shares = [stop - start for start, stop in
              (shard_range(batch_size, r, world.size) for r in range(world.size))]
    return ("data-parallel training on %d ranks: each global batch of %d is split %s "
            "(rank 0 first); %.2f MB of gradients allreduced per iteration"
            % (world.size, batch_size, "/".join(map(str, shares)), nbytes / 1e6))


class ParametersDiverged(NeuralTalkError):
    """Raised on every rank at once (they all compare the same checksums), so rank 0
    alone reports it (see cli.run_reporting_errors)."""
    every_rank = True


def check_in_step(world, model, it):
    """Compare a checksum of every parameter across the ranks; ParametersDiverged (on every
    rank) naming the ranks that differ from rank 0. One small allgather."""
    mine = checksum([model[k] for k in sorted(model)])
    every = world.allgather(mine)
    differ = [r for r, other in enumerate(every) if not np.array_equal(other, every[0])]
    if differ:
        raise ParametersDiverged(
            "at iteration %d the parameters of rank%s %s differ from rank 0's: the ranks no "
            "longer train the same model (different code, data or numerical libraries on "
            "some machines?); the last good checkpoint is kept"
            % (it, "s" if len(differ) > 1 else "", ", ".join(map(str, differ))))
