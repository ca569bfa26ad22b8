"""A training run's files, as the commands that read them see them.

driver.py keeps, per run, its best checkpoint
`model_checkpoint_<dataset>_<host>_<fappend>_<val perplexity>.p` (perplexity %.2f, lower
is better), or for a model validated by another score `..._<score name><value>.p` (the
alignment model's `recall_sum`, self-critical training's `cider_d`, higher is better), a
`..._last.p` and, after Ctrl-C or SIGTERM, a `..._interrupted.p`. eval_sentence_predictions.py and
predict_on_images.py take either a checkpoint file or such a run's folder (`cv/`), whose
best checkpoint they then use.
"""
import os
import re

from neuraltalk.errors import NeuralTalkError

# The score is the last field, so the run's prefix may itself hold underscores and
# digits (host names, --fappend values). `inf` is what %.2f makes of a diverged run.
# Checkpoints written before scores had names carry a negated recall sum (negative).
_BEST = re.compile(r"^model_checkpoint_(?P<run>.+)_(?P<name>recall_sum|cider_d)?"
                   r"(?P<ppl>-?(?:[0-9]+(?:\.[0-9]+)?|inf))\.p$")
HIGHER_IS_BETTER = {"recall_sum", "cider_d"}
_OTHER = re.compile(r"^model_checkpoint_(?P<run>.+)_(?:last|interrupted)\.p$")


def best_checkpoint(folder):
    """The path of the best checkpoint (lowest validation perplexity, or highest recall
    sum, in its name) of the one run whose checkpoints are in `folder`."""
    try:
        names = sorted(os.listdir(folder))
    except OSError as e:
        raise NeuralTalkError("cannot read the folder %s: %s" % (folder, e.strerror)) from None
    best = {}
    for name in names:
        m = _BEST.match(name)
        if m and os.path.isfile(os.path.join(folder, name)):
            value = float(m.group("ppl"))
            if m.group("name") in HIGHER_IS_BETTER:
                value = -value
            best.setdefault(m.group("run"), []).append((value, name))
    if not best:
        others = [n for n in names if _OTHER.match(n)]
        hint = (": it holds %s; give that file instead" % ", ".join(others)) if others else \
            " (train one with python driver.py, or give a checkpoint file)"
        raise NeuralTalkError("%s holds no best checkpoint model_checkpoint_<run>_<val "
                              "perplexity>.p%s" % (folder, hint))
    if len(best) > 1:
        raise NeuralTalkError("%s holds the checkpoints of %d runs (%s): give the checkpoint "
                              "file to use" % (folder, len(best), ", ".join(sorted(best))))
    (candidates,) = best.values()
    return os.path.join(folder, min(candidates)[1])


def checkpoint_file(path):
    """`path` if it is a file; a run's folder stands for its best checkpoint, and the
    file picked is printed."""
    if not os.path.isdir(path):
        return path
    picked = best_checkpoint(path)
    print("using %s, the best checkpoint in %s" % (picked, path))
    return picked


def output_folder(out, flag="--out"):
    """Create the folder `out` a command writes into; a file in its place is an error."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise NeuralTalkError("%s %s is a file, not a folder: give a folder to write into"
                              % (flag, out))
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        raise NeuralTalkError("cannot create the %s folder %s: %s" % (flag, out, e.strerror)) \
            from None
    return out
