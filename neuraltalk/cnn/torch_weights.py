"""Read a PyTorch checkpoint (.pth) without torch: state dict name -> NumPy array.

Two layouts exist: the zip archive of torch >= 1.6 (`archive/data.pkl` plus one raw file
per storage under `archive/data/`), and the legacy stream (a magic number, a protocol
version and system info, the pickled object, the list of storage keys, then each
storage as an 8-byte element count followed by its raw little-endian bytes). In both,
the pickle references storages by persistent id and rebuilds tensors with
torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...). Every record,
the legacy header included, goes through neuraltalk.safe_pickle with an allow-list of
those callables (mapped to NumPy stand-ins here) and OrderedDict, so a .pth file cannot
run code; a tensor must lie inside its storage.
"""
import collections
import io
import pickle
import zipfile

import numpy as np

from neuraltalk import safe_pickle
from neuraltalk.errors import NeuralTalkError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
STORAGE_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64,
                  "HalfStorage": np.float16, "LongStorage": np.int64, "IntStorage": np.int32,
                  "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8,
                  "BoolStorage": np.bool_}


class _Storage:
    def __init__(self, key, dtype):
        self.key, self.dtype, self.data = key, dtype, None


class _Tensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def array(self, name):
        flat = self.storage.data
        if flat is None:
            raise ValueError("tensor %r uses storage %s, which the file does not hold"
                             % (name, self.storage.key))
        # as_strided does no bounds checks: a crafted size or stride would read memory
        # outside the storage, or a zero stride ask for an array of any size
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
        count = int(np.prod(self.size, dtype=object))
        if count and (self.offset < 0 or min(self.stride, default=0) < 0 or last >= flat.size
                      or count > flat.size):
            raise ValueError("tensor %r (offset %d, size %s, stride %s) reaches past the end of "
                             "its storage of %d elements" % (name, self.offset, self.size,
                                                             self.stride, flat.size))
        itemsize = flat.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset:], shape=self.size, strides=[s * itemsize for s in self.stride])
        return np.array(view)


def _rebuild_tensor(storage, offset, size, stride, *rest):
    if not (isinstance(storage, _Storage) and isinstance(offset, int)
            and all(isinstance(n, int) and n >= 0 for n in size)
            and all(isinstance(s, int) for s in stride) and len(size) == len(stride)):
        raise pickle.UnpicklingError("a malformed tensor (offset %.20r, size %.40r, stride %.40r)"
                                     % (offset, size, stride))
    return _Tensor(storage, offset, size, stride)


class _StorageType:
    def __init__(self, name):
        self.dtype = STORAGE_DTYPES[name]


# what torch.save's pickles name, and what each name means here
ALLOWED = {("collections", "OrderedDict"): collections.OrderedDict,
           ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
           **{("torch", name): _StorageType(name) for name in STORAGE_DTYPES}}


def _load_record(f, storages):
    """The next pickle in `f`; its storages (persistent ids) are collected in `storages`."""
    def persistent_load(pid):
        # ('storage', storage type, key, location, numel[, view metadata])
        if not (isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise pickle.UnpicklingError("an unknown persistent id %.60r" % (pid,))
        key = str(pid[2])
        if key not in storages:
            storages[key] = _Storage(key, pid[1].dtype)
        return storages[key]
    return safe_pickle.load(f, ALLOWED, persistent_load)


def load_state_dict(path):
    """dict name -> ndarray of a PyTorch state dict file, read with NumPy only."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise NeuralTalkError("cannot read weights %s: %s" % (path, e.strerror)) from None
    storages = {}
    try:
        if zipfile.is_zipfile(io.BytesIO(data)):
            state = _load_zip(data, storages)
        else:
            state = _load_legacy(data, storages)
        if not isinstance(state, dict):
            raise NeuralTalkError("%s does not hold a state dict (a dict of tensors)" % path)
        if "state_dict" in state and isinstance(state["state_dict"], dict):
            state = state["state_dict"]
        return {k: v.array(k) for k, v in state.items() if isinstance(v, _Tensor)}
    except safe_pickle.Forbidden as e:
        raise NeuralTalkError("refusing to load weights %s: it references %s, which a weights "
                              "file never holds. Only use weights you trust." % (path, e)) from None
    except (pickle.UnpicklingError, EOFError, ValueError, KeyError, TypeError, IndexError,
            zipfile.BadZipFile) as e:
        raise NeuralTalkError("%s is not a PyTorch weights file this reader accepts: %s"
                              % (path, e)) from None


def _load_zip(data, storages):
    archive = zipfile.ZipFile(io.BytesIO(data))
    pkl = [n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
    if not pkl:
        raise ValueError("a zip file without data.pkl")
    prefix = pkl[0][:-len("data.pkl")]
    state = _load_record(io.BytesIO(archive.read(pkl[0])), storages)
    for key, storage in storages.items():
        storage.data = np.frombuffer(archive.read(prefix + "data/" + key), dtype=storage.dtype)
    return state


def _load_legacy(data, storages):
    f = io.BytesIO(data)
    # the header holds numbers and a dict of them only: an empty allow-list
    if safe_pickle.load(f, {}) != LEGACY_MAGIC:
        raise ValueError("no PyTorch magic number")
    safe_pickle.load(f, {})  # protocol version
    safe_pickle.load(f, {})  # system info
    state = _load_record(f, storages)
    keys = _load_record(f, storages)
    for key in keys:
        count = int(np.frombuffer(f.read(8), dtype="<i8")[0])
        storage = storages[str(key)]
        nbytes = count * np.dtype(storage.dtype).itemsize
        storage.data = np.frombuffer(f.read(nbytes), dtype=storage.dtype)
        if storage.data.size != count:
            raise ValueError("the file ends inside storage %s" % key)
    return state
