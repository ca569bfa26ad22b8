"""Image-sentence retrieval with an alignment model: what eval_sentence_predictions.py does
for an alignment checkpoint (R@1, R@5, R@10 and median rank both ways, retrieval.json).

The scores come from the model's own `score_matrix` (models/brnn.py, the same score the
training cost uses), the ranks and recalls from metrics/retrieval.py. On the ranks of an
MPI job (`mpirun -n K python eval_sentence_predictions.py CHECKPOINT`) each rank scores
every image against its block of the sentences, and the ranks are reduced from the
blocks: the same retrieval.json as one process, written by rank 0.
"""
import time

import numpy as np


def evaluate_checkpoint(checkpoint, checkpoint_path, split="test", max_images=-1, out=None,
                        data_root=None):
    """eval_sentence_predictions.py on an alignment checkpoint: print the retrieval table
    and write retrieval.json (rank 0 of an MPI job alone)."""
    from neuraltalk.models import module_of
    from neuraltalk.parallel import collectively, world
    ranks = world()
    params = checkpoint["params"]
    model_kind = module_of(params)
    table = collectively(ranks, lambda: sentence_table(checkpoint, split, data_root,
                                                       ranks.is_root))
    t0 = time.time()
    if ranks.size == 1:
        result = model_kind.retrieval_table(checkpoint["model"], params, table, max_images)
    else:
        result = sharded_retrieval_table(model_kind, checkpoint["model"], params, table,
                                         max_images, ranks)
    if not ranks.is_root:
        return result
    n = len(table.image_ids) if max_images < 0 else min(max_images, len(table.image_ids))
    from neuraltalk.captions.retrieval import report
    return report(result, n, split, time.time() - t0, out, checkpoint_path)


def sentence_table(checkpoint, split, data_root, verbose=True):
    """The SentenceTable (with regions) of the split the checkpoint is evaluated on."""
    from neuraltalk.data.batches import SentenceTable
    from neuraltalk.data.dataset import load_dataset
    from neuraltalk.data.regions import regions_of_checkpoint
    params = checkpoint["params"]
    dataset = load_dataset(params["dataset"], data_root=data_root or params.get("data_root", "data"))
    regions = regions_of_checkpoint(params, dataset)
    if regions.whole_image and verbose:
        print("whole-image alignment (R = 1): each image's feature vector is its only region, "
              "as in training")
    table = SentenceTable(dataset, checkpoint["wordtoix"], split, regions)
    without = len(dataset.split(split)) - len(table.image_ids)
    if without and verbose:  # the table holds only images with sentences
        print("%d %s images have no sentences: left out, as there is nothing to retrieve "
              "them by" % (without, split))
    return table


def sharded_retrieval_table(model_kind, model, params, table, max_images, world):
    """model_kind.retrieval_table on the ranks of `world`: each rank scores all the images
    against its contiguous block of score_matrix's chunks of sentences (World.share over
    the chunks), and the ranks come from the blocks (metrics/retrieval.py
    ranks_of_block); the same table on every rank. Ranks beyond the number of chunks
    (sentences of CHUNK_WORDS words in all) have nothing to score."""
    from neuraltalk.metrics.retrieval import ranks_of_block, recall_table
    n_images = len(table.image_ids) if max_images < 0 else min(max_images, len(table.image_ids))
    n_sentences = int(table.offsets[n_images - 1] + table.counts[n_images - 1])
    feats, counts = table.regions.rows(table.image_ids[:n_images])
    # whole chunks of score_matrix's, each computed as by one process: the same S bytes
    chunks = model_kind.sentence_chunks(table.lengths[:n_sentences])
    first, last = world.share(len(chunks))
    start = chunks[first][0] if first < len(chunks) else n_sentences
    stop = chunks[last - 1][1] if last > first else start
    width = max(1, int(table.lengths[:n_sentences].max(initial=0)))
    S_block = model_kind.score_matrix(model, params, feats, counts,
                                      table.words[start:stop, :width], table.lengths[start:stop])
    sentence_image = np.repeat(np.arange(n_images), table.counts[:n_images])
    return recall_table(*ranks_of_block(S_block, sentence_image, start, world))
