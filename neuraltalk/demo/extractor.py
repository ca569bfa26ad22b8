"""The demo's feature extractor, in pure NumPy: the `shapes-extractor` CNN.

Each pixel's membership of the six colours, pooled on a spatial grid (colour, position,
size) and as histograms of edge orientation per colour (shape), plus the orientation
histogram of all objects' outlines at full resolution (the shape of small objects). A
region's features are those of the image with every colour outside its box removed: a
crop left in place rather than resized, so the words about size and position ("big", "in
the top left") stay readable from a region, as they are from the whole image. They end
with the box itself (how far each side lies inside the image's, 0 for the whole image):
without it the whole image of a one-object scene and that object's box have the same
features, and a model attending over the regions could not tell the object from the
whole picture.
"""
import numpy as np

from neuraltalk.demo.scenes import BACKGROUND, COLORS, SIZE

GRID = 4  # spatial cells per side for the occupancy features
ORIENTATIONS = 8


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
        h, w = member.shape[-2:]
        box = (np.tile([0, 0, w, h], (len(member), 1)) if boxes is None
               else np.asarray(boxes[i:i + chunk]))
        if boxes is not None:
            member *= box_masks(box, member.shape[-1])[:, None]
        out.append(np.concatenate([describe(member), geometry(box, w, h)], axis=1))
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
            out[i + has, r] = np.concatenate(
                [describe(member[has] * masks), geometry(boxes[i + has, r], *member.shape[:-3:-1])],
                axis=1)
    return out
BOX_WIDTH = 4
FEATURE_WIDTH = len(COLORS) * (GRID * GRID + 1 + ORIENTATIONS * (4 + 1 + 1)) + BOX_WIDTH


def geometry(boxes, width, height):
    """(N, 4) boxes [x0, y0, x1, y1) in pixels -> (N, 4) float32: how far each side of the
    box lies inside the image's (x0 / W, y0 / H, 1 - x1 / W, 1 - y1 / H), x 4 (the scale of
    the occupancy grid): where the region is and how big. The whole image gives zeros, so
    whole-image features (what the generators without attention read) carry no constant
    columns: with constant ones, Adam's first steps of self-critical training shifted
    every image's encoding alike and lowered CIDEr-D."""
    size = np.array([width, height, width, height], dtype=np.float32)
    inset = np.asarray(boxes, dtype=np.float32) / size
    inset[:, 2:] = 1 - inset[:, 2:]
    return np.float32(4.0) * inset


def preprocess(images):
    """PIL images -> uint8 (N, 64, 64, 3), as neuraltalk.cnn.extract feeds a CNN."""
    from PIL import Image
    return np.stack([np.asarray(img.resize((SIZE, SIZE), Image.BILINEAR)) for img in images])


def forward(net, pixels):
    """The extractor in the CNN interface of neuraltalk.cnn.extract (net is unused)."""
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
