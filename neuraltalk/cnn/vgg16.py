"""VGG-16 to fc7 (4096-d, after ReLU): the features of the paper and of NeuralTalk.

Weights: the widely distributed Keras file `vgg16_weights_tf_dim_ordering_tf_kernels.h5`
(VGG-16 converted from the original Caffe model: layers block1_conv1 ... block5_conv3,
fc1, fc2, predictions; kernels (kh, kw, in, out), fc1's rows in the (7, 7, 512)
channels-last flatten order), read as Keras reads it: the layer groups the file's
`layer_names` attribute lists, each group's datasets in the order of its `weight_names`
attribute (kernel, bias), whatever they are called and however nested. That file is
Keras 1's (`block1_conv1/block1_conv1_W_1:0`); Keras 2 writes
`block1_conv1/block1_conv1/kernel:0`. Or an .npz with arrays `<layer>/kernel` and
`<layer>/bias` in the same layout. Users bring the file (the Keras applications' VGG16
release; the `_notop` file lacks fc1/fc2 and does not do).

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


def weight_shapes():
    """{layer: (kernel shape, bias shape)} of VGG-16 up to fc2."""
    shapes, cin = {}, 3
    for b, n, c in BLOCKS:
        for i in range(n):
            shapes["block%d_conv%d" % (b, i + 1)] = ((3, 3, cin, c), (c,))
            cin = c
    shapes["fc1"] = ((7 * 7 * 512, 4096), (4096,))
    shapes["fc2"] = ((4096, 4096), (4096,))
    return shapes


def load(path):
    """{layer: (kernel, bias)} from the Keras .h5 file or an .npz of the same layout."""
    if not path:
        raise NeuralTalkError("VGG-16 needs its weights: --weights "
                              "vgg16_weights_tf_dim_ordering_tf_kernels.h5 (the Keras "
                              "applications' VGG16 file) or an .npz of the same layout")
    if not os.path.exists(path):
        raise NeuralTalkError("VGG-16 weights %s do not exist" % path)
    net, shapes = {}, weight_shapes()
    for name, arrays in _read(path, list(shapes)):
        if len(arrays) != 2:
            raise NeuralTalkError("%s: layer %s holds %d weights, expected a kernel and a bias"
                                  % (path, name, len(arrays)))
        for what, array, shape in zip(("kernel", "bias"), arrays, shapes[name]):
            if array.shape != shape:
                raise NeuralTalkError(
                    "%s: %s has a %s of shape %s, expected %s (the Keras applications' "
                    "vgg16_weights_tf_dim_ordering_tf_kernels.h5 has these)"
                    % (path, name, what, array.shape, shape))
        net[name] = tuple(a.astype(np.float32) for a in arrays)
    return net


def read_keras_weights(path, names):
    """{layer: [its weight arrays, in Keras's order]} of the layers `names` of a file."""
    return dict(_read(path, names))


def _read(path, names):
    """(layer, [arrays]) for each of `names`, in order, from the .h5 or .npz at `path`."""
    try:
        if path.endswith(".npz"):
            with np.load(path, allow_pickle=False) as f:
                for name in names:
                    if name + "/kernel" not in f or name + "/bias" not in f:
                        raise NeuralTalkError("%s has no arrays %s/kernel and %s/bias"
                                              % (path, name, name))
                    yield name, [f[name + "/kernel"], f[name + "/bias"]]
            return
        import h5py
        with h5py.File(path, "r") as f:
            # as Keras's load_weights_from_hdf5_group: a whole-model file keeps the
            # weights under model_weights
            root = f["model_weights"] if "layer_names" not in f.attrs and "model_weights" in f else f
            in_file = _string_list(root, "layer_names")
            if in_file is None:
                raise NeuralTalkError("%s is not a Keras weights file (no layer_names attribute)"
                                      % path)
            for name in names:
                if name not in in_file:
                    raise NeuralTalkError(
                        "%s has no layer %s (the _notop file lacks fc1 and fc2: use "
                        "vgg16_weights_tf_dim_ordering_tf_kernels.h5)" % (path, name))
                group = root[name]
                weight_names = _string_list(group, "weight_names") or []
                yield name, [group[w][...] for w in weight_names]
    except (KeyError, OSError, ValueError) as e:
        raise NeuralTalkError("%s is not a VGG-16 weights file in the Keras layout: %s"
                              % (path, e)) from None


def _string_list(group, name):
    """An HDF5 attribute holding a list of names, or None. Keras splits long lists over
    `name0`, `name1`, ... (an HDF5 object header holds 64 KB)."""
    if name in group.attrs:
        chunks = [group.attrs[name]]
    else:
        chunks = []
        while "%s%d" % (name, len(chunks)) in group.attrs:
            chunks.append(group.attrs["%s%d" % (name, len(chunks))])
        if not chunks:
            return None
    return [n.decode("utf-8") if isinstance(n, bytes) else str(n)
            for chunk in chunks for n in np.atleast_1d(chunk)]


def preprocess(images, size=224):
    """PIL images -> (N, size, size, 3) float32 BGR minus the mean pixel."""
    from neuraltalk.cnn.images import resize_whole
    rgb = np.stack([resize_whole(img, size) for img in images]).astype(np.float32)
    return rgb[..., ::-1] - MEAN_BGR


def forward(net, x):
    """x (N, 224, 224, 3) preprocessed -> fc7 (N, 4096), after ReLU."""
    return from_map(net, feature_map(net, x))


def feature_map(net, x):
    """x (N, 224, 224, 3) preprocessed -> conv5_3 after ReLU (N, 14, 14, 512): Show,
    Attend and Tell's annotation vectors."""
    for b, n, _ in BLOCKS:
        for i in range(n):
            x = layers.conv2d(x, *net["block%d_conv%d" % (b, i + 1)], padding=1,
                              activation="relu")
        if b < len(BLOCKS):
            x = layers.max_pool(x, 2)
    return x


def from_map(net, x):
    """conv5_3 (N, 14, 14, 512) -> fc7 (N, 4096), after ReLU."""
    x = layers.max_pool(x, 2)
    x = x.reshape(len(x), -1)  # (7, 7, 512) channels-last, as fc1's rows expect
    x = layers.relu(layers.dense(x, *net["fc1"]))
    return layers.relu(layers.dense(x, *net["fc2"]))


def input_box(size):
    """The box [x0, y0, x1, y1] of an image of `size` (w, h) that the network sees: all
    of it (resized straight to 224 x 224)."""
    return (0.0, 0.0, float(size[0]), float(size[1]))
