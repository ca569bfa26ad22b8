"""`shapes`: the embedded demo dataset, rendered from a seed in a few seconds.

Each 64 x 64 image holds one to three coloured shapes (6 colours, 4 shapes, 2 sizes) on
a noisy grey background, with five different captions from a varied grammar (colour,
shape, size, count, relative position, synonyms). The folder is a complete dataset in
Karpathy's format plus what the alignment model needs:

- `dataset.json`: images with `filename`, `filepath` ("images"), `imgid`, `split`,
  `sentids`, `sentences` ({tokens, raw, imgid, sentid, token_region}) and `objects`
  ({shape, color, size, box [x0, y0, x1, y1]}). `token_region[j]` is the region that
  token j describes (1 + object index; region 0 is the whole image), -1 if it describes
  no single object.
- `images/*.png`, `vgg_feats.npy` (N x D float32, row imgid), `features.json`.
- `regions.h5`: `feats` (N, R, D) float32, `boxes` (N, R, 4) int32, `counts` (N,) int32;
  region 0 the whole image, then one region per object.
- `.neuraltalk-shapes`: the generator's mark. The demo is only ever generated into a
  folder that is missing, empty or marked so, and nothing it did not write is deleted.

Features come from `extract_features`, a pure-NumPy extractor: each pixel's membership
of the six colours, pooled on a spatial grid (colour, position, size) and as
histograms of edge orientation per colour (shape), plus the orientation histogram of
all objects' outlines at full resolution (the shape of small objects). A region's
features are those of the image with every colour outside its box removed: a crop left
in place rather than resized, so the words about size and position ("big", "in the top
left") stay readable from a region, as they are from the whole image.
"""
import collections
import json
import os
import shutil
import tempfile
import time

import numpy as np

from neuraltalk.errors import NeuralTalkError

SIZE = 64
COLORS = {
    "red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 70, 220),
    "yellow": (235, 215, 40), "purple": (150, 60, 190), "orange": (245, 140, 30),
}
BACKGROUND = (200, 200, 200)
SHAPES = ("circle", "square", "triangle", "diamond")
RADIUS = {"small": (6, 8), "large": (12, 15)}
PLURAL = {"circle": "circles", "square": "squares", "triangle": "triangles",
          "diamond": "diamonds", "box": "boxes", "ball": "balls"}
SYNONYMS = {"square": ("square", "box"), "circle": ("circle", "ball"),
            "triangle": ("triangle",), "diamond": ("diamond",)}
SIZE_WORDS = {"small": ("small", "little", "tiny"), "large": ("large", "big")}
CANONICAL_SHAPE = {w: s for s, words in SYNONYMS.items() for w in words}
CANONICAL_SHAPE.update({PLURAL[w]: CANONICAL_SHAPE[w] for w in PLURAL})
COUNT_WORDS = {1: "one", 2: "two", 3: "three"}
GRID = 4  # spatial cells per side for the occupancy features
ORIENTATIONS = 8
MARKER = ".neuraltalk-shapes"
GENERATED = ("dataset.json", "images", "vgg_feats.npy", "features.json", "regions.h5", MARKER)


def ensure_shapes(folder, seed=0, n_images=3000):
    """Render the dataset into `folder` unless its dataset.json exists already.

    Default 3,000 images: 300 test, 300 val, 2,400 train (15,000 sentences). That is
    each colour x shape x size (48 kinds) about 125 times (20 of them alone), a few
    hundred test objects for the retrieval and snippet figures, little enough for a
    generator to learn in minutes, and rendered in ~10 s.
    Written into a temporary sibling folder renamed into place at the end, so an
    interrupted run leaves nothing behind. A folder that holds anything the generator
    did not write is refused, never emptied.
    """
    if os.path.exists(os.path.join(folder, "dataset.json")):
        return
    check_replaceable(folder)
    t0 = time.time()
    parent = os.path.dirname(os.path.abspath(folder))
    try:
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".shapes-", dir=parent)
    except OSError as e:
        raise NeuralTalkError("cannot write the demo dataset into %s (%s): choose a writable "
                              "--data_root" % (folder, e.strerror or e)) from None
    try:
        summary = write_dataset(tmp, seed, n_images)
        if os.path.exists(folder):  # empty, or the generator's own without its dataset.json
            check_replaceable(folder)  # again: generating took seconds
            for name in os.listdir(folder):
                path = os.path.join(folder, name)
                if os.path.isdir(path):
                    shutil.rmtree(path)
                else:
                    os.remove(path)
            os.rmdir(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print("generated the demo dataset %s: %d images, %d sentences, %d words seen 5+ times in "
          "train, %d-d features, in %.1fs" % (folder, summary["images"], summary["sentences"],
                                              summary["vocabulary"], summary["feature_width"],
                                              time.time() - t0))


def check_replaceable(folder):
    """Refuse to generate into `folder` unless it is missing, empty or holds only files
    the generator wrote (its marker among them)."""
    if not os.path.exists(folder):
        return
    if not os.path.isdir(folder):
        raise NeuralTalkError("%s is a file, so the demo dataset cannot be generated there: "
                              "choose another --dataset or --data_root" % folder)
    entries = os.listdir(folder)
    if entries and MARKER not in entries:
        raise NeuralTalkError(
            "%s has no dataset.json and was not made by the demo generator (it has no %s), so "
            "it is left alone: put your dataset's dataset.json there, or generate the demo "
            "elsewhere (--dataset shapes --data_root DIR)" % (folder, MARKER))
    foreign = sorted(set(entries) - set(GENERATED))
    if foreign:
        raise NeuralTalkError("%s holds files the demo generator did not write (%s): move them "
                              "away to generate the demo there again"
                              % (folder, ", ".join(foreign[:5])))


def write_dataset(folder, seed, n_images):
    import h5py
    from PIL import Image

    rng = np.random.default_rng(seed)
    scenes = [random_scene(rng) for _ in range(n_images)]
    pixels = np.stack([render(scene, rng) for scene in scenes])
    os.makedirs(os.path.join(folder, "images"))
    n_val = n_test = max(1, n_images // 10)
    images = []
    sentid = 0
    for imgid, objects in enumerate(scenes):
        filename = "%05d.png" % imgid
        Image.fromarray(pixels[imgid]).save(os.path.join(folder, "images", filename),
                                            compress_level=1)
        split = ("test" if imgid < n_test else "val" if imgid < n_test + n_val else "train")
        sentences = []
        for tokens, regions in captions(objects, rng):
            sentences.append({"tokens": tokens, "raw": " ".join(tokens).capitalize() + ".",
                              "imgid": imgid, "sentid": sentid, "token_region": regions})
            sentid += 1
        images.append({"filename": filename, "filepath": "images", "imgid": imgid,
                       "split": split, "sentids": [s["sentid"] for s in sentences],
                       "sentences": sentences, "objects": objects})
    with open(os.path.join(folder, "dataset.json"), "w") as f:
        json.dump({"dataset": "shapes", "images": images}, f)

    n_regions = 1 + max(len(objs) for objs in scenes)
    counts = np.array([1 + len(objs) for objs in scenes], dtype=np.int32)
    boxes = np.zeros((n_images, n_regions, 4), dtype=np.int32)
    boxes[:, 0] = (0, 0, SIZE, SIZE)
    for n, objects in enumerate(scenes):
        for i, obj in enumerate(objects):
            boxes[n, 1 + i] = obj["box"]
    region_feats = region_features(pixels, boxes, counts)
    feats = region_feats[:, 0]
    np.save(os.path.join(folder, "vgg_feats.npy"), feats)
    with open(os.path.join(folder, "features.json"), "w") as f:
        json.dump({"cnn": "shapes-extractor"}, f)
    with open(os.path.join(folder, MARKER), "w") as f:
        f.write("written by neuraltalk.shapes.ensure_shapes: this folder may be regenerated\n")
    with h5py.File(os.path.join(folder, "regions.h5"), "w") as f:
        f["feats"] = region_feats
        f["boxes"] = boxes
        f["counts"] = counts
    counts_of = collections.Counter(w for img in images if img["split"] == "train"
                                    for sent in img["sentences"] for w in sent["tokens"])
    return {"images": n_images, "sentences": sentid, "feature_width": feats.shape[1],
            "vocabulary": sum(c >= 5 for c in counts_of.values())}


def random_scene(rng, n=None):
    """One to three objects (n if given) whose boxes do not overlap."""
    objects = []
    n = int(rng.integers(1, 4)) if n is None else n
    while len(objects) < n:
        size = ("small", "large")[rng.integers(2)]
        r = int(rng.integers(*RADIUS[size], endpoint=True))
        cx, cy = (int(v) for v in rng.integers(r + 1, SIZE - r - 1, size=2))
        box = [cx - r, cy - r, cx + r + 1, cy + r + 1]
        if any(box[0] < o["box"][2] + 2 and o["box"][0] < box[2] + 2 and
               box[1] < o["box"][3] + 2 and o["box"][1] < box[3] + 2 for o in objects):
            if rng.random() < 0.05:  # crowded: start the scene again
                objects = []
            continue
        objects.append({"shape": SHAPES[rng.integers(len(SHAPES))],
                        "color": list(COLORS)[rng.integers(len(COLORS))],
                        "size": size, "box": box})
    return objects


def render(objects, rng):
    from PIL import Image, ImageDraw
    noise = rng.normal(0, 6, size=(SIZE, SIZE, 3))
    background = np.clip(np.array(BACKGROUND) + noise, 0, 255).astype(np.uint8)
    image = Image.fromarray(background)
    draw = ImageDraw.Draw(image)
    for obj in objects:
        x0, y0, x1, y1 = obj["box"]
        x1, y1 = x1 - 1, y1 - 1
        color = COLORS[obj["color"]]
        if obj["shape"] == "circle":
            draw.ellipse([x0, y0, x1, y1], fill=color)
        elif obj["shape"] == "square":
            draw.rectangle([x0 + 1, y0 + 1, x1 - 1, y1 - 1], fill=color)
        elif obj["shape"] == "triangle":
            draw.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=color)
        else:
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            draw.polygon([(cx, y0), (x1, cy), (cx, y1), (x0, cy)], fill=color)
    return np.asarray(image)


def noun_phrase(obj, region, rng, article=True, size=None):
    """Tokens and their regions for one object: 'a large red box'. The size is named
    always (size=True), never (False) or half the time (None)."""
    tokens, regions = [], []
    if article:
        tokens.append("a")
        regions.append(-1)
    if size or (size is None and rng.random() < 0.5):
        tokens.append(SIZE_WORDS[obj["size"]][rng.integers(len(SIZE_WORDS[obj["size"]]))])
        regions.append(region)
    tokens += [obj["color"], SYNONYMS[obj["shape"]][rng.integers(len(SYNONYMS[obj["shape"]]))]]
    regions += [region, region]
    if article and tokens[1][0] in "aeiou":
        tokens[0] = "an"  # an orange box
    return tokens, regions


def relation(a, b):
    """How object a sits relative to object b, by their centres."""
    ax, ay = (a["box"][0] + a["box"][2]) / 2, (a["box"][1] + a["box"][3]) / 2
    bx, by = (b["box"][0] + b["box"][2]) / 2, (b["box"][1] + b["box"][3]) / 2
    if abs(ax - bx) >= abs(ay - by):
        return ["to", "the", "left", "of"] if ax < bx else ["to", "the", "right", "of"]
    return ["above"] if ay < by else ["below"]


def place(obj):
    cx, cy = (obj["box"][0] + obj["box"][2]) / 2, (obj["box"][1] + obj["box"][3]) / 2
    vertical = "top" if cy < SIZE / 3 else "bottom" if cy > 2 * SIZE / 3 else ""
    horizontal = "left" if cx < SIZE / 3 else "right" if cx > 2 * SIZE / 3 else ""
    if not vertical and not horizontal:
        return ["the", "center"]
    return ["the"] + [w for w in (vertical, horizontal) if w]


def one_caption(objects, rng):
    """A caption (tokens, token regions) from one of the grammar's templates."""
    n = len(objects)
    rng.permutation(n)  # (the draw of an older random order, kept so the data stays put)
    # objects named left to right, as people read a scene: a generator then learns which
    # object comes next instead of guessing a random order
    order = sorted(range(n), key=lambda i: objects[i]["box"][0] + objects[i]["box"][2])
    # a lone object is always described with its size, as people would
    phrases = [noun_phrase(objects[i], i + 1, rng, size=True if n == 1 else None)
               for i in order]
    t = rng.integers(6)
    none = lambda words: (list(words), [-1] * len(words))  # noqa: E731

    def join(*parts):
        tokens, regions = [], []
        for part in parts:
            tokens += part[0]
            regions += part[1]
        return tokens, regions

    if n == 1:
        (obj,) = objects
        if t == 0:
            return join(none(["there", "is"]), phrases[0])
        if t == 1:
            return join(phrases[0], none(["in"]), none(place(obj)))
        if t == 2:
            return join(none(["a", "picture", "of"]), phrases[0])
        if t == 3:
            return join(phrases[0], none(["on", "a", "gray", "background"]))
        if t == 4:
            shape = SYNONYMS[obj["shape"]][rng.integers(len(SYNONYMS[obj["shape"]]))]
            size = SIZE_WORDS[obj["size"]][rng.integers(len(SIZE_WORDS[obj["size"]]))]
            return join(none(["the"]), ([size, shape], [1, 1]), none(["is"]),
                        ([obj["color"]], [1]))
        return join(none(["a", "single"]), noun_phrase(obj, 1, rng, article=False, size=True))
    same = len({(o["color"], o["shape"]) for o in objects}) == 1
    if same and t < 2:
        word = PLURAL[SYNONYMS[objects[0]["shape"]][0]]
        return none([COUNT_WORDS[n], objects[0]["color"], word])
    if t == 0 or t == 1:
        a, b = order[0], order[1]
        return join(phrases[0], none(relation(objects[a], objects[b])), phrases[1])
    if t == 2:
        return join(none(["there", "are", COUNT_WORDS[n], "shapes"]), *interleave(phrases))
    if t == 3:
        return join(*interleave(phrases), none(["on", "a", "gray", "background"]))
    if t == 4:
        return join(none(["a", "picture", "with"]), *interleave(phrases))
    return join(*interleave(phrases))


def interleave(phrases):
    """'x , y and z' without punctuation: 'x y and z' reads badly, so 'x and y and z'."""
    parts = [phrases[0]]
    for p in phrases[1:]:
        parts += [(["and"], [-1]), p]
    return parts


def captions(objects, rng, n=5):
    """Five different captions of a scene."""
    seen = {}
    for _ in range(200):
        tokens, regions = one_caption(objects, rng)
        seen.setdefault(tuple(tokens), regions)
        if len(seen) == n:
            break
    return [(list(t), r) for t, r in seen.items()]


def box_masks(boxes, size=SIZE):
    """(N, size, size) float32 masks, 1 inside each image's box [x0, y0, x1, y1)."""
    boxes = np.asarray(boxes)
    r = np.arange(size)
    inside_y = (r >= boxes[:, 1, None]) & (r < boxes[:, 3, None])
    inside_x = (r >= boxes[:, 0, None]) & (r < boxes[:, 2, None])
    return (inside_y[:, :, None] & inside_x[:, None, :]).astype(np.float32)


def extract_features(images, boxes=None, chunk=500):
    """images: uint8 (N, 64, 64, 3); boxes: optional (N, 4) regions. Returns (N, D) float32.

    For each colour c, a membership map m_c (soft nearest-prototype assignment of each
    pixel, zero outside the box when one is given) is pooled on a GRID x GRID grid
    (where and how much of the colour) and summarised by histograms of the orientation
    of grad m_c weighted by its magnitude, over the whole image and over its 2 x 2
    quadrants (which shape, and where), on the map at half resolution.
    """
    out = []
    for i in range(0, len(images), chunk):
        member = colour_membership(images[i:i + chunk])
        if boxes is not None:
            member *= box_masks(boxes[i:i + chunk], member.shape[-1])[:, None]
        out.append(describe(member))
    return np.concatenate(out) if out else np.zeros((0, feature_width()), np.float32)


def region_features(images, boxes, counts, chunk=500):
    """Features of every region: images uint8 (N, H, W, 3), boxes int (N, R, 4), counts
    (N,) -> (N, R, D) float32, rows past counts[n] zero. Equal to extract_features(images,
    boxes[:, r]) for each region r, with each image's colour maps computed once."""
    n, n_regions = boxes.shape[:2]
    out = np.zeros((n, n_regions, FEATURE_WIDTH), dtype=np.float32)
    for i in range(0, n, chunk):
        member = colour_membership(images[i:i + chunk])
        for r in range(n_regions):
            has = np.flatnonzero(counts[i:i + chunk] > r)
            masks = box_masks(boxes[i + has, r], member.shape[-1])[:, None]
            out[i + has, r] = describe(member[has] * masks)
    return out


FEATURE_WIDTH = len(COLORS) * (GRID * GRID + 1 + ORIENTATIONS * (4 + 1 + 1))


def preprocess(images):
    """PIL images -> uint8 (N, 64, 64, 3), as neuraltalk.features feeds a CNN."""
    from PIL import Image
    return np.stack([np.asarray(img.resize((SIZE, SIZE), Image.BILINEAR)) for img in images])


def forward(net, pixels):
    """The extractor in the CNN interface of neuraltalk.features (net is unused)."""
    return extract_features(pixels)


def feature_width():
    return FEATURE_WIDTH


def colour_membership(images):
    """images: (N, H, W, 3) uint8 or float -> (N, C, H, W) float32: how much each pixel is
    of each colour, a softmax over the colour prototypes and the background of
    -|x - p|^2 / 800 (the pixel's own |x|^2 cancels, so it is left out)."""
    n, h, w, _ = images.shape
    x = np.asarray(images, dtype=np.float32).reshape(-1, 3)
    prototypes = np.array(list(COLORS.values()) + [BACKGROUND], dtype=np.float32)
    # prototype-major (K, pixels): the reductions over K are then fast row operations
    logits = 2 * prototypes @ x.T - (prototypes ** 2).sum(1)[:, None]
    logits -= logits.max(0)
    member = np.exp(logits * np.float32(1 / 800.0), out=logits)
    member /= member.sum(0)
    return np.ascontiguousarray(member[:len(COLORS)].reshape(-1, n, h, w).transpose(1, 0, 2, 3))


def describe(member):
    """(N, C, H, W) colour maps -> (N, D) features, per colour: its mean on a GRID x GRID
    grid and sqrt(area) (where, how much), histograms of the orientation of its edges per
    quadrant at half resolution (which shape where), and over the whole image at full
    resolution (small shapes), as they are and normalised to a distribution (the shape
    whatever its size)."""
    n, c, h, w = member.shape
    half = (member[:, :, 0::2, 0::2] + member[:, :, 1::2, 0::2] +
            member[:, :, 0::2, 1::2] + member[:, :, 1::2, 1::2]) * np.float32(0.25)
    cell = h // 2 // GRID
    grid = half.reshape(n, c, GRID, cell, GRID, cell).mean((3, 5))  # (N, C, G, G)
    area = grid.mean((2, 3))
    quadrants = orientation_histograms(half, cells=True)  # (N, C, ORIENTATIONS, 4)
    edges = colour_edge_orientations(member)  # (N, C, ORIENTATIONS)
    scale = 4.0 / h  # histograms grow with the perimeter: about unit scale for a large shape
    return np.concatenate([
        grid.reshape(n, -1) * 4.0,
        np.sqrt(area) * 4.0,
        quadrants.reshape(n, -1) * scale * 2.0,
        edges.reshape(n, -1) * scale,
        (edges / (edges.sum(2, keepdims=True) + 1.0)).reshape(n, -1) * 4.0,
    ], axis=1).astype(np.float32)


def orientation_histograms(maps, cells):
    """maps: (N, K, H, W) -> (N, K, ORIENTATIONS, 4) if cells else (N, K, ORIENTATIONS):
    |grad map| summed per orientation of the gradient, per 2 x 2 quadrant when `cells`."""
    n, k, h, w = maps.shape
    gx, gy = gradients(maps)
    gx, gy = gx.ravel(), gy.ravel()
    # edges are a few percent of the pixels: bin only those (the rest add < 1e-4 each)
    edge = np.flatnonzero(gx * gx + gy * gy > 1e-8)
    n_cells = 4 if cells else 1
    quadrant = 2 * (np.arange(h) >= h // 2)[:, None] + (np.arange(w) >= w // 2)[None, :]
    cell = quadrant.ravel()[edge % (h * w)] if cells else 0
    hist = binned_orientations(gx[edge], gy[edge], edge // (h * w) * ORIENTATIONS,
                               n * k * ORIENTATIONS * n_cells, n_cells, cell)
    return hist.reshape(n, k, ORIENTATIONS, n_cells) if cells else hist.reshape(n, k, ORIENTATIONS)


def gradients(maps):
    """Central differences (d/dx, d/dy) over the last two axes, zero on the border."""
    gy = np.zeros_like(maps)
    gx = np.zeros_like(maps)
    gy[..., 1:-1, :] = maps[..., 2:, :] - maps[..., :-2, :]
    gx[..., 1:-1] = maps[..., 2:] - maps[..., :-2]
    return gx, gy


def orientation_edges(maps):
    """Flat indices of the pixels of maps (N, H, W) where the map changes."""
    gx, gy = gradients(maps)
    return np.flatnonzero(gx * gx + gy * gy > 1e-8)


def binned_orientations(gx, gy, offset, size, n_cells=1, cell=0):
    """Histogram of gradients (gx, gy) by orientation modulo 180 degrees, weighted by
    magnitude and soft-binned between the two nearest of ORIENTATIONS bins; gradient i
    goes to bin ((offset[i] + orientation bin) * n_cells + cell[i]) of `size` bins."""
    magnitude = np.sqrt(gx * gx + gy * gy)
    angle = np.arctan2(gy, gx) % np.float32(np.pi)
    angle *= np.float32(ORIENTATIONS / np.pi)
    low = angle.astype(np.int64)
    frac = angle - low
    hist = np.zeros(size)
    for b, weight in ((low % ORIENTATIONS, 1 - frac), ((low + 1) % ORIENTATIONS, frac)):
        hist += np.bincount((offset + b) * n_cells + cell, magnitude * weight, minlength=size)
    return hist


def colour_edge_orientations(member):
    """(N, C, H, W) colour maps -> (N, C, ORIENTATIONS): orientation_histograms of each
    colour at full resolution, computed only at the pixels where the sum of the maps
    changes. Shapes never touch, so every edge of a colour is one of those few pixels."""
    n, c, h, w = member.shape
    edge = orientation_edges(member.sum(1))
    image, y, x = np.unravel_index(edge, (n, h, w))
    # central differences of every colour at the edge pixels, zero on the border as above
    gx = member[image, :, y, np.minimum(x + 1, w - 1)] - member[image, :, y, np.maximum(x - 1, 0)]
    gy = member[image, :, np.minimum(y + 1, h - 1), x] - member[image, :, np.maximum(y - 1, 0), x]
    gx[(x == 0) | (x == w - 1)] = 0
    gy[(y == 0) | (y == h - 1)] = 0
    index = (image[:, None] * c + np.arange(c)) * ORIENTATIONS
    hist = binned_orientations(gx.ravel(), gy.ravel(), index.ravel(), n * c * ORIENTATIONS)
    return hist.reshape(n, c, ORIENTATIONS)


def caption_is_correct(tokens, objects):
    """Does the caption name at least one colour and one shape, and only true ones?

    Every colour word and shape word (synonyms and plurals mapped) must belong to an
    object of the image, and a colour directly followed by a shape (a size word may sit
    between) must be the colour of an object of that shape.
    """
    colors = {o["color"] for o in objects}
    shapes = {o["shape"] for o in objects}
    pairs = {(o["color"], o["shape"]) for o in objects}
    named_color = named_shape = False
    for j, w in enumerate(tokens):
        if w in COLORS:
            named_color = True
            if w not in colors:
                return False
            following = [t for t in tokens[j + 1:j + 3] if t not in ("small", "little", "tiny",
                                                                     "large", "big")][:1]
            if following and following[0] in CANONICAL_SHAPE and \
                    (w, CANONICAL_SHAPE[following[0]]) not in pairs:
                return False
        elif w in CANONICAL_SHAPE:
            named_shape = True
            if CANONICAL_SHAPE[w] not in shapes:
                return False
    return named_color and named_shape
