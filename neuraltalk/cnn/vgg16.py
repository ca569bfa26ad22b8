"""VGG-16 to fc7 (4096-d, after ReLU): the features of the paper and of NeuralTalk.

Weights: the widely distributed Keras file `vgg16_weights_tf_dim_ordering_tf_kernels.h5`
(VGG-16 converted from the original Caffe model; one HDF5 group per layer, block1_conv1
... block5_conv3, fc1, fc2, predictions, each with `<layer>/kernel:0` (kernels
(kh, kw, in, out); fc1's rows follow the (7, 7, 512) channels-last flatten order) and
`<layer>/bias:0`), or an .npz with arrays `<layer>/kernel` and `<layer>/bias` in the
same layout. Users bring the file (the Keras applications' VGG16 release; the
`_notop` file lacks fc1/fc2 and does not do).

Preprocessing as NeuralTalk's Matlab script made its released features: the whole image
resized straight to 224 x 224 (bicubic, no crop, aspect ratio not kept), RGB to BGR,
the mean pixel (B 103.939, G 116.779, R 123.68) subtracted; one crop, not ten.
"""
import os

import numpy as np

from neuraltalk.cnn import layers
from neuraltalk.errors import NeuralTalkError

BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512))
CONV_LAYERS = ["block%d_conv%d" % (b, i + 1) for b, n, _ in BLOCKS for i in range(n)]
FC_LAYERS = ("fc1", "fc2")
MEAN_BGR = np.array([103.939, 116.779, 123.68], dtype=np.float32)
FEATURE_WIDTH = 4096


def load(path):
    """{layer: (kernel, bias)} from the Keras .h5 file or an .npz of the same layout."""
    if not path:
        raise NeuralTalkError("VGG-16 needs its weights: --weights "
                              "vgg16_weights_tf_dim_ordering_tf_kernels.h5 (the Keras "
                              "applications' VGG16 file) or an .npz of the same layout")
    if not os.path.exists(path):
        raise NeuralTalkError("VGG-16 weights %s do not exist" % path)
    net = {}
    try:
        if path.endswith(".npz"):
            with np.load(path) as f:
                for name in CONV_LAYERS + list(FC_LAYERS):
                    net[name] = (f[name + "/kernel"].astype(np.float32),
                                 f[name + "/bias"].astype(np.float32))
        else:
            import h5py
            with h5py.File(path, "r") as f:
                root = f["model_weights"] if "model_weights" in f else f
                for name in CONV_LAYERS + list(FC_LAYERS):
                    group = root[name]
                    if name in group:  # Keras 2 nests the layer's own group
                        group = group[name]
                    net[name] = (group["kernel:0"][...].astype(np.float32),
                                 group["bias:0"][...].astype(np.float32))
    except (KeyError, OSError) as e:
        raise NeuralTalkError("%s is not a VGG-16 weights file in the Keras layout: %s"
                              % (path, e)) from None
    if net["fc1"][0].shape != (7 * 7 * 512, 4096):
        raise NeuralTalkError("%s: fc1 has shape %s, expected (25088, 4096)"
                              % (path, net["fc1"][0].shape))
    return net


def preprocess(images, size=224):
    """PIL images -> (N, size, size, 3) float32 BGR minus the mean pixel."""
    from neuraltalk.cnn.images import resize_whole
    rgb = np.stack([resize_whole(img, size) for img in images]).astype(np.float32)
    return rgb[..., ::-1] - MEAN_BGR


def forward(net, x):
    """x (N, 224, 224, 3) preprocessed -> fc7 (N, 4096), after ReLU."""
    for b, n, _ in BLOCKS:
        for i in range(n):
            x = layers.relu(layers.conv2d(x, *net["block%d_conv%d" % (b, i + 1)], padding=1))
        x = layers.max_pool(x, 2)
    x = x.reshape(len(x), -1)  # (7, 7, 512) channels-last, as fc1's rows expect
    x = layers.relu(layers.dense(x, *net["fc1"]))
    return layers.relu(layers.dense(x, *net["fc2"]))
