"""Self-critical sequence training (Rennie et al., CVPR 2017): fine-tune a caption
generator on CIDEr-D, the score its captions are judged by.

Cross-entropy training scores each word given the true previous words; captions are then
made from the model's own words. SCST trains on the model's own captions. For a batch of
B training images (`--batch_size` counts images here):
  1. draw K = --scst_samples captions per image from the model, each word from
     softmax(y / --scst_temperature), at most MAX_STEPS words as decoding does;
  2. decode each image's greedy caption;
  3. reward r_s = CIDEr-D of sample s against its image's references, with the document
     frequencies of the training split (metrics/cider_reward.py: the numbers of
     metrics/cider.py, vectorised);
  4. advantage A_s = r_s - b_image, with b the greedy caption's reward
     (--scst_baseline greedy, the paper's) or the mean reward of the image's other K - 1
     samples (mean);
  5. step along the gradient of  L = -sum_s A_s log p(s) / (B K)  (plus the L2 term),
     which is the packed cross-entropy of the teacher-forced samples with each word's
     term weighted by its caption's advantage (the generators' row_weights); a caption
     cut at MAX_STEPS never drew END, so its END term gets weight 0.
No dropout anywhere: the gradient must be that of log p under the distribution the
samples were drawn from. The temperature only changes which captions are drawn; p is the
model's own (T = 1), as in the paper and the public implementations.

The training loop is train/loop.py's: solvers, gradient clipping, checkpoints, exact
resume, the progress line (mean reward, greedy reward, advantage, samples/s). Validation
is the CIDEr-D of the greedy captions of the first --eval_max_images val images, with
those images' document frequencies, i.e. what eval_sentence_predictions.py reports at
beam 1 on the val split; the best checkpoint is `..._cider_d<value>.p`.
"""
import time
from collections import namedtuple

import numpy as np

from neuraltalk import models
from neuraltalk.data.batches import Batch
from neuraltalk.errors import NeuralTalkError
from neuraltalk.layers.packed import layout
from neuraltalk.metrics.cider import document_frequencies
from neuraltalk.metrics.cider_reward import CiderD
from neuraltalk.models import captioning

MAX_STEPS = 20  # captions/decoding.py's max_steps: sampled captions are as long as decoded ones
BASELINES = ("greedy", "mean")
# A fresh RMSprop cache makes the first steps ~lr/sqrt(1 - decay) = 30 lr long, which wrecks
# a trained model; Adam's first steps are lr long. Rennie et al. and the public code use
# Adam at 5e-5.
DEFAULTS = {"solver": "adam", "learning_rate": 5e-5}

ImageBatch = namedtuple("ImageBatch", [
    "feats",   # (B, D) float32 image features
    "images",  # (B,) int64 the images' indices in the reward's list of training images
])


def add_arguments(parser):
    group = parser.add_argument_group("self-critical training (--scst 1)")
    group.add_argument("--scst", type=int, default=0,
                       help="1: fine-tune the generator of --init_model_from on CIDEr-D "
                            "(self-critical sequence training); --batch_size counts images")
    group.add_argument("--scst_samples", type=int, default=5,
                       help="captions sampled per image")
    group.add_argument("--scst_temperature", type=float, default=1.0,
                       help="sample each word from softmax(logits / temperature)")
    group.add_argument("--scst_baseline", default="greedy", choices=BASELINES,
                       help="greedy: the reward of the greedy caption; mean: the mean reward "
                            "of the image's other samples")


def check_params(params):
    """NeuralTalkError for SCST flags that cannot make a run (called before any file is read)."""
    if not params.get("scst"):
        return
    if params["scst"] != 1:
        raise NeuralTalkError("--scst is 0 or 1, not %s" % params["scst"])
    if not models.is_generator(params):
        raise NeuralTalkError("--scst 1 trains caption generators on CIDEr-D; --model %s "
                              "is an alignment model" % params["model"])
    if models.module_of(params).NEEDS_REGIONS:
        raise NeuralTalkError("--scst 1 samples captions from whole-image features; the %s "
                              "generator reads regions, which SCST does not carry yet: "
                              "fine-tune it with cross-entropy" % params["generator"])
    if params.get("do_grad_check"):
        raise NeuralTalkError("--do_grad_check 1 checks the cross-entropy gradients: run it "
                              "without --scst (tests/test_scst.py checks SCST's)")
    if not params.get("init_model_from"):
        raise NeuralTalkError("--scst 1 fine-tunes a trained generator: give its checkpoint "
                              "with --init_model_from (train one first without --scst)")
    if params["scst_samples"] < 1:
        raise NeuralTalkError("--scst_samples must be at least 1, not %s"
                              % params["scst_samples"])
    if params["scst_baseline"] == "mean" and params["scst_samples"] < 2:
        raise NeuralTalkError("--scst_baseline mean averages the other samples of an image: "
                              "give --scst_samples 2 or more")
    if not params["scst_temperature"] > 0:
        raise NeuralTalkError("--scst_temperature must be positive, not %s"
                              % params["scst_temperature"])
    for name in ("min_ppl_or_abort", "write_checkpoint_ppl_threshold"):
        if params.get(name, -1) != -1:
            raise NeuralTalkError("--%s is about validation perplexity; --scst 1 validates "
                                  "by CIDEr-D" % name)


def references_of(images):
    """Each image's reference token lists, tokenised as the evaluation does."""
    return [[" ".join(s["tokens"]).split() for s in img["sentences"]] for img in images]


def advantages(rewards, greedy_rewards, baseline):
    """rewards (B, K) of the samples, greedy_rewards (B,) -> advantages (B, K)."""
    if baseline == "greedy":
        return rewards - greedy_rewards[:, None]
    K = rewards.shape[1]
    others = (rewards.sum(1, keepdims=True) - rewards) / (K - 1)
    return rewards - others


def policy_gradient(model, feats, words, lengths, finished, weights, params,
                    compute_grads=True):
    """The cost and gradients of L = -sum_s weights_s log p(caption s | image s) / S (+ L2),
    S = len(lengths), without dropout. feats (S, D); words (S, T), lengths (S,), finished (S,)
    as from captioning.sample; weights (S,) (the advantages)."""
    batch = Batch(feats, words, lengths, np.arange(len(lengths)), np.full(len(lengths), -1))
    lay = layout(words, lengths)
    sentence = lay.order[lay.sentence]  # the caption of each packed row
    row_weights = np.asarray(weights, dtype=np.float64)[sentence]
    # the END row of a caption cut at max length was never drawn: not part of log p
    cut = ~np.asarray(finished, dtype=bool)[sentence]
    row_weights[(lay.step == np.asarray(lengths)[sentence]) & cut] = 0.0
    return models.module_of(params).loss(model, batch, params, None, None, compute_grads,
                                         row_weights=row_weights)


def scst_cost(model, feats, images, scorer, params, rng):
    """One SCST step's cost and gradients on the images (B,) of `scorer` with features
    feats (B, D). The cost dict holds the surrogate ('total_cost', 'loss_cost',
    'reg_cost'), the mean 'reward', 'greedy_reward' and 'advantage', the number of
    'samples' and the 'seconds' spent sampling, decoding greedily, rewarding and in the
    backward pass."""
    K = params["scst_samples"]
    B = len(images)
    t0 = time.perf_counter()
    words, lengths, finished = captioning.sample(model, feats, params, rng, K,
                                                 params["scst_temperature"], MAX_STEPS)
    t1 = time.perf_counter()
    greedy_words, greedy_lengths, _ = captioning.sample(model, feats, params, None, 1, 0,
                                                        MAX_STEPS)
    t2 = time.perf_counter()
    rewards = scorer.scores(words, lengths, np.repeat(images, K)).reshape(B, K)
    greedy = scorer.scores(greedy_words, greedy_lengths, images)
    A = advantages(rewards, greedy, params["scst_baseline"])
    t3 = time.perf_counter()
    cost, grads = policy_gradient(model, np.repeat(np.asarray(feats), K, axis=0), words,
                                  lengths, finished, A.ravel(), params)
    t4 = time.perf_counter()
    cost = {k: cost[k] for k in ("total_cost", "loss_cost", "reg_cost")}
    cost.update(reward=float(rewards.mean()), greedy_reward=float(greedy.mean()),
                advantage=float(A.mean()), samples=B * K,
                mean_length=float(lengths.mean()),
                seconds={"sample": t1 - t0, "greedy": t2 - t1, "reward": t3 - t2,
                         "backward": t4 - t3})
    return cost, grads


def greedy_cider(model, params, feats, scorer, batch_size=100):
    """Mean CIDEr-D of the greedy captions of every image of `scorer`, whose feature rows
    are feats[0 .. len(scorer) - 1] (an array or the dataset's feature rows)."""
    total = 0.0
    n = len(scorer)
    for start in range(0, n, batch_size):
        idx = np.arange(start, min(start + batch_size, n))
        words, lengths, _ = captioning.sample(model, feats[idx], params, None, 1, 0, MAX_STEPS)
        total += float(scorer.scores(words, lengths, idx).sum())
    return total / max(1, n)


class _Rows:
    """Feature rows of some images, indexable from 0."""

    def __init__(self, features, ids):
        self.features, self.ids = features, np.asarray(ids, dtype=np.int64)

    def __getitem__(self, index):
        return self.features[self.ids[index]]


def make_task(params, dataset, rng, vocab=None):
    """The Task (models/task.py) of self-critical training of the generator `params` name:
    the cross-entropy task's model and vocabulary, with batches of images, the SCST step
    as its cost and greedy CIDEr-D as its validation."""
    check_params(params)
    base = models.make_task(params, dataset, rng, vocab)
    train_images = [img for img in dataset.split("train") if img["sentences"]]
    train_refs = references_of(train_images)
    scorer = CiderD(train_refs, base.ixtoword, document_frequencies(dict(enumerate(train_refs))))
    train_ids = np.array([img["imgid"] for img in train_images], dtype=np.int64)
    val_images = [img for img in dataset.split("val") if img["sentences"]]
    if not val_images:
        raise NeuralTalkError("%s/dataset.json: no image of the val split has sentences to "
                              "validate CIDEr-D against" % dataset.folder)
    if params.get("eval_max_images", -1) > 0:
        val_images = val_images[:params["eval_max_images"]]
    val_scorer = CiderD(references_of(val_images), base.ixtoword)
    val_rows = _Rows(dataset.features, [img["imgid"] for img in val_images])

    def sample_batch(batch_size, rng):
        pick = rng.integers(0, len(train_ids), size=batch_size)
        return ImageBatch(dataset.features[train_ids[pick]], pick)

    def cost(model, batch, rng):
        return scst_cost(model, batch.feats, batch.images, scorer, params, rng)

    def validate(model):
        value = greedy_cider(model, params, val_rows, val_scorer,
                             params.get("eval_batch_size", 100))
        return {"name": "cider_d", "value": value, "lower_is_better": False,
                "summary": "validation CIDEr-D = %.4f (greedy captions of %d images)"
                           % (value, len(val_scorer))}

    return base._replace(sample_batch=sample_batch, cost=cost, validate=validate,
                         epoch_size=len(train_ids), watch_cost=False)
