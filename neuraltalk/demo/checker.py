"""Does a caption of a demo scene name only colours and shapes that are there?"""
from neuraltalk.demo.scenes import CANONICAL_SHAPE, COLORS

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


SIZE_WORDS = ("small", "little", "tiny", "large", "big")


def described_objects(tokens, objects):
    """For each token, the index of the one object it names, or -1: a colour word names
    the objects of that colour, narrowed by the shape word right after it (a size word may
    sit between); a shape word the objects of that shape, narrowed by the colour right
    before it. Tokens naming no object, or several, get -1."""
    out = []
    for j, w in enumerate(tokens):
        color = shape = None
        if w in COLORS:
            color = w
            following = [t for t in tokens[j + 1:j + 3] if t not in SIZE_WORDS][:1]
            if following and following[0] in CANONICAL_SHAPE:
                shape = CANONICAL_SHAPE[following[0]]
        elif w in CANONICAL_SHAPE:
            shape = CANONICAL_SHAPE[w]
            before = [t for t in tokens[max(0, j - 2):j] if t not in SIZE_WORDS][-1:]
            if before and before[0] in COLORS:
                color = before[0]
        else:
            out.append(-1)
            continue
        hits = [i for i, o in enumerate(objects)
                if (color is None or o["color"] == color) and (shape is None or o["shape"] == shape)]
        out.append(hits[0] if len(hits) == 1 else -1)
    return out


def attention_hits(tokens, weights, objects):
    """(hits, words): of the caption's colour and shape words that name one object, how
    many have their largest attention weight on that object's region (region 1 + i is
    object i in the demo's regions.h5; region 0 is the whole image). weights (n, R)."""
    hits = words = 0
    for obj, alpha in zip(described_objects(tokens, objects), weights):
        if obj >= 0:
            words += 1
            hits += int(int(alpha.argmax()) == 1 + obj)
    return hits, words
