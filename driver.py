"""Train a caption generator or the alignment model: `python driver.py --dataset flickr8k`.

The flags are NeuralTalk's, with their names and defaults, plus --model, --preset, --seed,
--max_iters, --data_root, --fold_restval, --features, --keep_all_checkpoints and Adam's
betas. `--scst 1 --init_model_from CKPT` fine-tunes a trained generator on CIDEr-D
(self-critical sequence training, neuraltalk/train/scst.py). Exit status: 0 after a run
(best and `_last` checkpoints written), 1 when training went wrong (the cost exploded,
NaN parameters, --min_ppl_or_abort), 2 for a bad flag or input, 130 after Ctrl-C and
143 (128 + SIGTERM) after SIGTERM, both having written an `_interrupted` checkpoint.
"""
import argparse
import math
import os
import sys

from neuraltalk import cli, models
from neuraltalk.errors import NeuralTalkError
from neuraltalk.models import captioning
from neuraltalk.train import scst


def build_parser():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    # global setup settings, and checkpoints
    p.add_argument("-d", "--dataset", default="flickr8k",
                   help="a dataset name under --data_root, or a folder holding dataset.json")
    p.add_argument("--data_root", default="data", help="where dataset folders live")
    p.add_argument("--fold_restval", type=int, default=0,
                   help="1: train on restval too (the COCO Karpathy split)")
    p.add_argument("--features", default="",
                   help="feature file to use instead of the dataset folder's vgg_feats.*")
    p.add_argument("--model", default="generator", choices=models.model_kinds(),
                   help="a caption generator (--generator), or an alignment model: "
                   + "; ".join("%s: %s" % (name, m.PAPER)
                               for name, m in sorted(models.ALIGNMENT_MODELS.items())))
    p.add_argument("--preset", default=None, choices=sorted(models.presets()),
                   help="a model's named set of defaults (flags given still win): " + "; ".join(
                       "%s %s: %s" % (label, name, " ".join(
                           "--%s %s" % kv for kv in sorted(m.PRESETS[name].items())))
                       for name, owners in sorted(models.presets().items())
                       for label, m in owners))
    p.add_argument("-a", "--do_grad_check", type=int, default=0,
                   help="1: check the gradients on a real batch, print the worst error, exit")
    p.add_argument("--fappend", default="baseline", help="appended to checkpoint file names")
    p.add_argument("-o", "--checkpoint_output_directory", default="cv/",
                   help="where checkpoints are written")
    p.add_argument("--worker_status_output_directory", default="status/",
                   help="where the status JSON is written")
    p.add_argument("--write_checkpoint_ppl_threshold", type=float, default=-1,
                   help="write no checkpoint above this validation perplexity (-1: always)")
    p.add_argument("--keep_all_checkpoints", type=int, default=0,
                   help="1: keep a checkpoint at every validation improvement, as NeuralTalk; "
                        "0: only this run's best and its _last")
    p.add_argument("--init_model_from", default="",
                   help="checkpoint to resume from (model, solver state, iteration)")
    p.add_argument("--seed", type=int, default=123, help="random seed: same seed, same run")
    # optimization parameters
    p.add_argument("-c", "--regc", type=float, default=1e-8, help="L2 regularization strength")
    p.add_argument("-m", "--max_epochs", type=float, default=50, help="epochs to train for")
    p.add_argument("--max_iters", type=int, default=-1,
                   help="iterations to train for (-1: from --max_epochs)")
    p.add_argument("--solver", default=None,
                   choices=["vanilla", "rmsprop", "adagrad", "adadelta", "adam"],
                   help="update rule (default: the model's own, "
                   + ", ".join("%s %s" % (m.NAME, m.DEFAULTS["solver"]) for m in models.all_modules())
                   + "; with --scst 1, %s)" % scst.DEFAULTS["solver"])
    p.add_argument("--momentum", type=float, default=0.0, help="momentum for vanilla SGD")
    p.add_argument("--decay_rate", type=float, default=0.999, help="rmsprop/adadelta decay")
    p.add_argument("--smooth_eps", type=float, default=1e-8,
                   help="epsilon of rmsprop/adagrad/adadelta/adam")
    p.add_argument("--adam_beta1", type=float, default=0.9, help="Adam's first-moment decay")
    p.add_argument("--adam_beta2", type=float, default=0.999, help="Adam's second-moment decay")
    p.add_argument("-l", "--learning_rate", type=float, default=None,
                   help="learning rate (default: 1e-3; with --scst 1, %g)"
                   % scst.DEFAULTS["learning_rate"])
    p.add_argument("-b", "--batch_size", type=int, default=100, help="batch size")
    p.add_argument("--grad_clip", type=float, default=5,
                   help="clip each gradient element to [-grad_clip, grad_clip]")
    # data preprocessing parameters
    p.add_argument("--word_count_threshold", type=int, default=5,
                   help="words seen fewer times in training are dropped")
    # evaluation parameters
    p.add_argument("-p", "--eval_period", type=float, default=1.0,
                   help="validate every this many epochs")
    p.add_argument("--eval_batch_size", type=int, default=100, help="validation batch size")
    p.add_argument("--eval_max_images", type=int, default=-1,
                   help="validate on at most this many images (-1: all)")
    p.add_argument("--min_ppl_or_abort", type=float, default=-1,
                   help="abort if validation perplexity is above this (-1: never)")
    # the models' own flags, from the registry
    group = p.add_argument_group("caption generators (--model generator)")
    group.add_argument("--generator", default="lstm", choices=sorted(models.GENERATORS),
                       help="; ".join("%s: %s" % (name, m.PAPER)
                                      for name, m in sorted(models.GENERATORS.items())))
    captioning.add_arguments(group)
    for name, m in sorted(models.GENERATORS.items()):
        m.add_arguments(p.add_argument_group("%s generator (--generator %s)" % (name, name)))
    for name, m in sorted(models.ALIGNMENT_MODELS.items()):
        m.add_arguments(p.add_argument_group("alignment model (--model %s)" % name))
    scst.add_arguments(p)
    return p


def check_flags(parser, params):
    """Refuse, before anything is read, every flag value that cannot make a meaningful run."""
    defaults = dict(models.module_of(params).DEFAULTS, learning_rate=1e-3)
    if params.get("scst"):  # fine-tuning: small steps from the first one on
        defaults.update(scst.DEFAULTS)
    for key, value in defaults.items():
        if params[key] is None:
            params[key] = value
    for name, value in sorted(params.items()):
        if isinstance(value, float) and not math.isfinite(value):
            parser.error("--%s must be a finite number, not %s" % (name, value))
    for name in ("batch_size", "image_encoding_size", "word_encoding_size", "hidden_size",
                 "eval_batch_size", "embedding_size", "word_vector_size", "learning_rate",
                 "eval_period", "smooth_eps", "margin"):
        if name in params and params[name] <= 0:
            parser.error("--%s must be positive, not %s" % (name, params[name]))
    for name in ("drop_prob_encoder", "drop_prob_decoder", "momentum", "decay_rate",
                 "adam_beta1", "adam_beta2"):
        if not 0 <= params[name] < 1:
            parser.error("--%s must be in [0, 1), not %s" % (name, params[name]))
    for name in ("seed", "regc", "word_count_threshold", "beta"):
        if name in params and params[name] < 0:
            parser.error("--%s must not be negative, not %s" % (name, params[name]))
    if params["max_iters"] <= 0 and params["max_epochs"] <= 0:
        parser.error("--max_epochs must be positive (or give --max_iters), not %s"
                     % params["max_epochs"])
    if params["eval_max_images"] == 0 or params["eval_max_images"] < -1:
        parser.error("--eval_max_images must be positive, or -1 for all, not %s"
                     % params["eval_max_images"])
    if not models.is_generator(params):
        for name in ("min_ppl_or_abort", "write_checkpoint_ppl_threshold"):
            if params[name] != -1:
                parser.error("--%s is about a caption generator's validation perplexity; "
                             "--model %s validates by retrieval recall" % (name, params["model"]))
    try:
        scst.check_params(params)
    except NeuralTalkError as e:
        parser.error(str(e))
    fappend = params["fappend"]
    if not fappend or any(sep and sep in fappend for sep in ("/", os.sep, os.altsep)):
        parser.error("--fappend goes into checkpoint file names: give a name without a path "
                     "separator, not %r (put the folder in --checkpoint_output_directory)"
                     % fappend)


def parse_flags(parser, argv=None):
    """The flags as a dict; with --preset, the preset's values are the defaults, so that
    flags given on the command line still win."""
    params = vars(parser.parse_args(argv))
    try:
        preset = models.preset_values(params)
    except NeuralTalkError as e:
        parser.error(str(e))
    if preset:
        parser.set_defaults(**preset)
        params = vars(parser.parse_args(argv))
        print("--preset %s: %s" % (params["preset"], " ".join(
            "--%s %s" % (k, params[k]) for k in sorted(preset))))
    return params


def main(argv=None):
    parser = build_parser()
    params = parse_flags(parser, argv)
    check_flags(parser, params)
    from neuraltalk.train import loop as train
    try:
        return cli.run_reporting_errors(train.run, params)
    except KeyboardInterrupt as e:  # before training started: nothing to save
        terminated = isinstance(e, train.Terminated)
        print("terminated" if terminated else "interrupted", file=sys.stderr)
        return 143 if terminated else 130


if __name__ == "__main__":
    sys.exit(main())
