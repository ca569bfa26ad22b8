"""The demo's scenes and their captions: one to three coloured shapes (6 colours, 4 shapes,
2 sizes) on a noisy grey 64 x 64 background, and five captions each from a varied grammar
(colour, shape, size, count, relative position, synonyms). `captions` also says which
object each word describes (token_region: 1 + object index, -1 for no single object).
"""
import numpy as np

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


def fresh_scenes(seed, n):
    """n new scenes for trying a model: [(objects, pixels uint8 (SIZE, SIZE, 3))]. Scene k
    comes from its own generator seeded (seed, k), so predict_on_images.py --seed S and the
    web demo's scene of seed S begin with the same picture whatever n is. The dataset's
    seed 0 stream is another, so these scenes are not the training images."""
    out = []
    for k in range(n):
        rng = np.random.default_rng([seed, k])
        objects = random_scene(rng)
        out.append((objects, render(objects, rng)))
    return out
