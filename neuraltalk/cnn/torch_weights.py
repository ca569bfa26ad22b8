"""Read a PyTorch checkpoint (.pth) without torch: state dict name -> NumPy array.

Two layouts exist: the zip archive of torch >= 1.6 (`archive/data.pkl` plus one raw file
per storage under `archive/data/`), and the legacy stream (a magic number, a protocol
version and system info, the pickled object, the list of storage keys, then each
storage as an 8-byte element count followed by its raw little-endian bytes). In both,
the pickle references storages by persistent id and rebuilds tensors with
torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...). A restricted
unpickler admits only those callables and OrderedDict, so a .pth file cannot run code.
"""
import collections
import io
import pickle
import zipfile

import numpy as np

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

    def array(self):
        flat = self.storage.data
        itemsize = flat.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset:], shape=self.size, strides=[s * itemsize for s in self.stride])
        return np.array(view)


def _rebuild_tensor(storage, offset, size, stride, *rest):
    return _Tensor(storage, offset, size, stride)


class _StorageType:
    def __init__(self, name):
        self.dtype = STORAGE_DTYPES[name]


class _Unpickler(pickle.Unpickler):
    def __init__(self, f, storages):
        super().__init__(f)
        self.storages = storages

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError("a weights file never holds %s.%s" % (module, name))

    def persistent_load(self, pid):
        # ('storage', storage type, key, location, numel[, view metadata])
        kind, storage_type, key = pid[0], pid[1], str(pid[2])
        if kind != "storage":
            raise pickle.UnpicklingError("unknown persistent id %r" % (kind,))
        dtype = storage_type.dtype if isinstance(storage_type, _StorageType) else np.dtype(storage_type)
        if key not in self.storages:
            self.storages[key] = _Storage(key, dtype)
        return self.storages[key]


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
    except (pickle.UnpicklingError, EOFError, ValueError, KeyError) as e:
        raise NeuralTalkError("%s is not a PyTorch weights file this reader accepts: %s"
                              % (path, e)) from None
    if not isinstance(state, dict):
        raise NeuralTalkError("%s does not hold a state dict (a dict of tensors)" % path)
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return {k: v.array() for k, v in state.items() if isinstance(v, _Tensor)}


def _load_zip(data, storages):
    archive = zipfile.ZipFile(io.BytesIO(data))
    pkl = [n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"][0]
    prefix = pkl[:-len("data.pkl")]
    state = _Unpickler(io.BytesIO(archive.read(pkl)), storages).load()
    for key, storage in storages.items():
        storage.data = np.frombuffer(archive.read(prefix + "data/" + key), dtype=storage.dtype)
    return state


def _load_legacy(data, storages):
    f = io.BytesIO(data)
    plain = lambda: pickle.Unpickler(f).load()  # noqa: E731 (numbers and dicts only)
    if plain() != LEGACY_MAGIC:
        raise ValueError("no PyTorch magic number")
    plain()  # protocol version
    plain()  # system info
    state = _Unpickler(f, storages).load()
    keys = _Unpickler(f, storages).load()
    for key in keys:
        count = int(np.frombuffer(f.read(8), dtype="<i8")[0])
        storage = storages[str(key)]
        nbytes = count * np.dtype(storage.dtype).itemsize
        storage.data = np.frombuffer(f.read(nbytes), dtype=storage.dtype)
        if storage.data.size != count:
            raise ValueError("the file ends inside storage %s" % key)
    return state
