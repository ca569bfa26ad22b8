"""Checkpoints: NeuralTalk's pickled dict, written atomically, read with a restricted unpickler.

A checkpoint is a dict with NeuralTalk's keys (`model`, `params`, `wordtoix`,
`ixtoword`, `it`, `epoch`, `perplexity`) and, when this project wrote it, the solver
state (`solver_cache`) and the random state so that training resumes exactly.

A checkpoint is untrusted input: `load_checkpoint` admits only NumPy arrays, dtypes and
scalars and the builtin containers, numbers and strings, so a pickle that names any
other callable is refused before anything runs. NeuralTalk's model-zoo files are
Python 2 pickles, read with `encoding="latin1"`.
"""
import codecs
import collections
import io
import pickle

import numpy as np

from neuraltalk import safe_pickle
from neuraltalk.atomic import atomic_write
from neuraltalk.errors import NeuralTalkError

try:
    from numpy._core import multiarray as _multiarray, numeric as _numeric
except ImportError:  # NumPy 1
    from numpy.core import multiarray as _multiarray, numeric as _numeric

# The names a checkpoint may reference: how NumPy pickles arrays, dtypes and scalars
# (numpy.core became numpy._core in NumPy 2; both spellings occur), how Python 3 pickles
# bytes at protocol 2, and OrderedDict.
ALLOWED = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    **{(core + ".multiarray", name): getattr(_multiarray, name)
       for core in ("numpy.core", "numpy._core") for name in ("_reconstruct", "scalar")},
    **{(core + ".numeric", "_frombuffer"): _numeric._frombuffer
       for core in ("numpy.core", "numpy._core")},
    ("_codecs", "encode"): codecs.encode,
    ("collections", "OrderedDict"): collections.OrderedDict,
}


def load_checkpoint(path):
    """Read a checkpoint written by this project or by NeuralTalk (Python 2 or 3)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise NeuralTalkError("cannot read checkpoint %s: %s" % (path, e.strerror)) from None
    try:
        checkpoint = safe_pickle.load(io.BytesIO(data), ALLOWED, encoding="latin1")
    except safe_pickle.Forbidden as e:
        raise NeuralTalkError(
            "refusing to load checkpoint %s: it references %s, which a checkpoint never "
            "holds. Only load checkpoints you trust, written by neuraltalk or NeuralTalk."
            % (path, e)) from None
    except Exception as e:  # truncated or not a pickle at all
        raise NeuralTalkError(
            "checkpoint %s is corrupt or not a checkpoint (%s: %s)"
            % (path, type(e).__name__, e)) from None
    if not isinstance(checkpoint, dict) or "model" not in checkpoint or "params" not in checkpoint:
        raise NeuralTalkError(
            "%s is not a neuraltalk checkpoint: expected a dict with 'model' and 'params'" % path)
    return checkpoint


def save_checkpoint(path, checkpoint):
    """Pickle `checkpoint` to `path` atomically (see atomic_write)."""
    atomic_write(path, lambda f: pickle.dump(checkpoint, f, protocol=pickle.HIGHEST_PROTOCOL))


def model_as(model, dtype):
    """A copy of a model dict with every array cast to `dtype`."""
    return {k: np.asarray(v, dtype=dtype) for k, v in model.items()}
