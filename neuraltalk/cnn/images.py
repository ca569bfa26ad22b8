"""Reading and resizing images for the CNNs (Pillow)."""
import numpy as np


def open_rgb(path):
    """An image file as an RGB PIL image (greyscale replicated to three channels)."""
    from PIL import Image
    with Image.open(path) as img:
        return img.convert("RGB")


def resize_and_crop(img, short_side, crop):
    """Resize so the short side is `short_side` (bicubic), then a centre crop -> uint8 array."""
    from PIL import Image
    w, h = img.size
    scale = short_side / min(w, h)
    img = img.resize((max(crop, round(w * scale)), max(crop, round(h * scale))), Image.BICUBIC)
    w, h = img.size
    left, top = (w - crop) // 2, (h - crop) // 2
    return np.asarray(img.crop((left, top, left + crop, top + crop)))


def resize_whole(img, size):
    """Resize the whole image straight to size x size (no crop, aspect not kept), bicubic,
    as NeuralTalk's Matlab feature script did."""
    from PIL import Image
    return np.asarray(img.resize((size, size), Image.BICUBIC))
