"""What the training loop needs from a kind of model, and nothing more.

`driver.py` trains caption generators (`--model generator`) and alignment models
(`--model brnn`) with one loop: each kind builds a `Task` (models.make_task), and the loop only samples
batches, asks for the cost and gradients, updates the parameters named in
`update_keys`, and validates.
"""
from collections import namedtuple

Task = namedtuple("Task", [
    "model",        # dict name -> ndarray (float32), initialised
    "wordtoix",     # dict word -> index ('#START#' -> 0), stored in the checkpoint
    "ixtoword",     # dict index -> word (0 -> '.'), stored in the checkpoint
    "sample_batch",  # (batch_size, rng) -> batch
    "cost",         # (model, batch, rng or None) -> (cost dict with 'total_cost', grads dict)
    "validate",     # (model) -> dict: 'name' of the score ('perplexity', 'recall_sum'),
                    # its 'value', 'lower_is_better', 'summary' (one line to print); the
                    # checkpoint stores it as 'val_score' and its file name carries it
    "update_keys",  # names of the parameters the solver updates (frozen ones left out)
    "epoch_size",   # number of training pairs that make one epoch
    "check_features",  # () -> None: raise NeuralTalkError naming the file and the first
                       # imgid if a feature row the run uses is not finite; None: the
                       # training loop checks the dataset's rows of the train and val images
    "watch_cost",   # True: abort when the smoothed cost passes twice the first batch's;
                    # False for a surrogate of no fixed sign (SCST's): only a non-finite
                    # cost aborts
], defaults=(None, True))
