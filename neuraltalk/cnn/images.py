"""Reading and resizing images for the CNNs (Pillow)."""
import warnings

import numpy as np

from neuraltalk.errors import NeuralTalkError


def open_rgb(path):
    """An image file as an RGB PIL image (greyscale replicated to three channels).

    Refuses, with a NeuralTalkError naming the file, a file Pillow cannot read and an
    image of more than PIL.Image.MAX_IMAGE_PIXELS pixels: a small compressed file can
    decode to gigabytes (a decompression bomb), and Pillow itself only warns below twice
    that limit."""
    from PIL import Image
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                return img.convert("RGB")
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise NeuralTalkError(
            "image %s has more pixels than PIL.Image.MAX_IMAGE_PIXELS (%s) allows: a "
            "decompression bomb, or raise that limit if you trust the file"
            % (path, Image.MAX_IMAGE_PIXELS)) from None
    except Exception as e:  # Pillow raises many types for a damaged file
        raise NeuralTalkError("cannot read image %s: %s" % (path, e)) from None


def resize_and_crop(img, short_side, crop):
    """Resize so the short side is `short_side` (bicubic), then a centre crop -> uint8 array."""
    from PIL import Image
    w, h = img.size
    scale = short_side / min(w, h)
    new_w, new_h = max(crop, round(w * scale)), max(crop, round(h * scale))
    left, top = (new_w - crop) // 2, (new_h - crop) // 2
    # Resample only the crop's source box: resizing the whole image first costs
    # new_w x new_h pixels, 4 GB for a 1 x 16000 image scaled to a short side of 256.
    sx, sy = new_w / w, new_h / h
    box = (left / sx, top / sy, (left + crop) / sx, (top + crop) / sy)
    return np.asarray(img.resize((crop, crop), Image.BICUBIC, box=box))


def resize_whole(img, size):
    """Resize the whole image straight to size x size (no crop, aspect not kept), bicubic,
    as NeuralTalk's Matlab feature script did."""
    from PIL import Image
    return np.asarray(img.resize((size, size), Image.BICUBIC))
