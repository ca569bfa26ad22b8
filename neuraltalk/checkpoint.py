"""Checkpoints: NeuralTalk's pickled dict, written atomically, read with a restricted unpickler.

A checkpoint is a dict with NeuralTalk's keys (`model`, `params`, `wordtoix`,
`ixtoword`, `it`, `epoch`, `perplexity`) and, when this project wrote it, the solver
state (`solver_cache`) and the random state so that training resumes exactly.

A checkpoint is untrusted input: `load_checkpoint` admits only NumPy arrays, dtypes and
scalars and the builtin containers, numbers and strings, so a pickle that names any
other callable is refused before anything runs. NeuralTalk's model-zoo files are
Python 2 pickles, read with `encoding="latin1"`.
"""
import io
import os
import pickle
import tempfile

import numpy as np

from neuraltalk.errors import NeuralTalkError

# (module, name) pairs a checkpoint may reference: how NumPy pickles arrays, dtypes
# and scalars (numpy.core became numpy._core in NumPy 2; both spellings occur), and
# how Python 3 pickles bytes at protocol 2.
_ALLOWED = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),
    ("collections", "OrderedDict"),
}


class _Forbidden(pickle.UnpicklingError):
    """A pickle that names a callable a checkpoint never holds."""


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            if module.startswith("numpy.core"):
                module = "numpy._core" + module[len("numpy.core"):]
            return super().find_class(module, name)
        raise _Forbidden(
            "it references %s.%s, which a checkpoint never holds" % (module, name))


def load_checkpoint(path):
    """Read a checkpoint written by this project or by NeuralTalk (Python 2 or 3)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise NeuralTalkError("cannot read checkpoint %s: %s" % (path, e.strerror)) from None
    try:
        checkpoint = _RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
    except _Forbidden as e:
        raise NeuralTalkError(
            "refusing to load checkpoint %s: %s. Only load checkpoints you trust, "
            "written by neuraltalk or NeuralTalk." % (path, e)) from None
    except Exception as e:  # truncated or not a pickle at all
        raise NeuralTalkError(
            "checkpoint %s is corrupt or not a checkpoint (%s: %s)"
            % (path, type(e).__name__, e)) from None
    if not isinstance(checkpoint, dict) or "model" not in checkpoint or "params" not in checkpoint:
        raise NeuralTalkError(
            "%s is not a neuraltalk checkpoint: expected a dict with 'model' and 'params'" % path)
    return checkpoint


def save_checkpoint(path, checkpoint):
    """Pickle `checkpoint` to `path` atomically: a crash never leaves half a file there."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".p", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(checkpoint, f, protocol=pickle.HIGHEST_PROTOCOL)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # including KeyboardInterrupt: remove the partial file
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write_text(path, text):
    """Write a text file (JSON, HTML) atomically, as checkpoints are."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def model_as(model, dtype):
    """A copy of a model dict with every array cast to `dtype`."""
    return {k: np.asarray(v, dtype=dtype) for k, v in model.items()}
