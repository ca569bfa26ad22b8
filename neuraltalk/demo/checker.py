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
