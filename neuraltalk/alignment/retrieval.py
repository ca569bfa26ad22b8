"""Image-sentence retrieval with an alignment model: what eval_sentence_predictions.py does
for an alignment checkpoint (R@1, R@5, R@10 and median rank both ways, retrieval.json).

The scores come from the model's own `score_matrix` (models/brnn.py, the same score the
training cost uses), the ranks and recalls from metrics/retrieval.py.
"""
import time


def evaluate_checkpoint(checkpoint, checkpoint_path, split="test", max_images=-1, out=None,
                        data_root=None):
    """eval_sentence_predictions.py on an alignment checkpoint: print the retrieval table
    and write retrieval.json."""
    from neuraltalk.data.batches import SentenceTable
    from neuraltalk.data.dataset import load_dataset
    from neuraltalk.models import module_of
    from neuraltalk.data.regions import regions_of_checkpoint
    params = checkpoint["params"]
    model_kind = module_of(params)
    dataset = load_dataset(params["dataset"], data_root=data_root or params.get("data_root", "data"))
    regions = regions_of_checkpoint(params, dataset)
    if regions.whole_image:
        print("whole-image alignment (R = 1): each image's feature vector is its only region, "
              "as in training")
    table = SentenceTable(dataset, checkpoint["wordtoix"], split, regions)
    without = len(dataset.split(split)) - len(table.image_ids)
    if without:  # the table holds only images with sentences
        print("%d %s images have no sentences: left out, as there is nothing to retrieve "
              "them by" % (without, split))
    t0 = time.time()
    result = model_kind.retrieval_table(checkpoint["model"], params, table, max_images)
    n = len(table.image_ids) if max_images < 0 else min(max_images, len(table.image_ids))
    from neuraltalk.captions.retrieval import report
    return report(result, n, split, time.time() - t0, out, checkpoint_path)
