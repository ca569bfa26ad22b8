"""HTML pages of captioned images: predict_on_images.py's and the evaluation's."""
import html
import json
import os

from neuraltalk.atomic import atomic_write_text

STYLE = """
body { font-family: sans-serif; margin: 1em 2em; }
table { border-collapse: collapse; }
td, th { border-bottom: 1px solid #ddd; padding: 4px 8px; vertical-align: top; }
th { cursor: pointer; background: #f3f3f3; }
img { max-width: 224px; max-height: 224px; }
.candidate { font-size: 1.1em; font-weight: bold; }
.refs { color: #555; font-size: 0.9em; }
.metrics td { border: none; padding: 2px 12px 2px 0; }
.strip { max-width: 760px; overflow-x: auto; margin-top: 4px; }
.attention { display: block; max-width: none; max-height: none; }
"""

TILE = 96  # pixels of each word's copy of the image in an attention strip
LABEL = 16


def attention_map(weights, boxes, size):
    """(h, w) float in [0, 1]: each pixel's summed weight of the regions whose box holds
    it, scaled so the most attended pixel is 1. weights (R,), boxes (R, 4) [x0, y0, x1, y1]
    in pixels of an image of `size` (w, h)."""
    import numpy as np
    w, h = size
    m = np.zeros((h, w))
    for weight, (x0, y0, x1, y1) in zip(weights, boxes):  # a few regions or grid cells
        m[max(0, y0):max(0, y1), max(0, x0):max(0, x1)] += weight
    return m / max(m.max(), 1e-12)


def is_grid(boxes, size):
    """A CNN grid's cells (no region covers the whole image), not regions.h5's boxes
    (region 0 is the whole image)."""
    w, h = size
    return not any(x0 <= 0 and y0 <= 0 and x1 >= w and y1 >= h for x0, y0, x1, y1 in boxes)


def write_attention_strip(path, image_path, words, weights, boxes):
    """attention_strip of the image file `image_path`, saved as the PNG `path`."""
    from PIL import Image
    attention_strip(Image.open(image_path), words, weights, boxes).save(path)


def attention_strip(image, words, weights, boxes):
    """A PIL image of one tile per caption word: a small copy of `image` (PIL), dark where
    the word's attention weights are low (boxes summed for regions, a smoothed heat map for
    a grid), the word written under it. weights (len(words), R) over the regions `boxes`
    (R, 4)."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter

    image = image.convert("RGB")
    grid = is_grid(boxes, image.size)
    scale = TILE / max(image.size)
    tw, th = max(1, round(image.size[0] * scale)), max(1, round(image.size[1] * scale))
    small = np.asarray(image.resize((tw, th), Image.BILINEAR), dtype=np.float64)
    scaled = np.round(np.asarray(boxes, np.float64) * scale).astype(int)
    strip = Image.new("RGB", (max(1, len(words)) * (tw + 4), th + LABEL), "white")
    draw = ImageDraw.Draw(strip)
    for j, (word, alpha) in enumerate(zip(words, weights)):
        m = attention_map(alpha, scaled, (tw, th))
        if grid:  # cells as a heat map, not as blocks
            blurred = Image.fromarray(np.uint8(255 * m)).filter(
                ImageFilter.GaussianBlur(radius=max(1.0, tw / 28)))
            m = np.asarray(blurred, np.float64) / 255
        tile = Image.fromarray(np.uint8(small * (0.15 + 0.85 * m[:, :, None])))
        x = j * (tw + 4)
        strip.paste(tile, (x, 0))
        if not grid:
            best = int(np.argmax(alpha))
            draw.rectangle([x + scaled[best][0], scaled[best][1], x + scaled[best][2] - 1,
                            scaled[best][3] - 1], outline=(255, 220, 0))
        draw.text((x + 2, th + 2), word, fill="black")
    return strip


def attention_cell(blob, folder):
    """The attention strip of a blob ('attention_png': its path), or nothing."""
    path = blob.get("attention_png")
    if not path or not os.path.exists(path):
        return ""
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(folder))
    return ('<div class="strip"><img class="attention" src="%s" alt="where each word looks">'
            '</div>' % html.escape(rel))

SORT_SCRIPT = """
function sortBy(col) {
  var table = document.getElementById('results');
  var rows = Array.prototype.slice.call(table.tBodies[0].rows);
  var down = table.getAttribute('data-sorted') !== String(col);
  rows.sort(function (a, b) {
    var x = parseFloat(a.cells[col].getAttribute('data-value'));
    var y = parseFloat(b.cells[col].getAttribute('data-value'));
    return down ? y - x : x - y;
  });
  rows.forEach(function (r) { table.tBodies[0].appendChild(r); });
  table.setAttribute('data-sorted', down ? String(col) : '');
}
"""


def image_cell(path, folder):
    """An <img> with a path relative to the page, or a note when the file is absent."""
    if path and os.path.exists(path):
        rel = os.path.relpath(os.path.abspath(path), os.path.abspath(folder))
        return '<img src="%s">' % html.escape(rel)
    return '<span class="refs">(no image file)</span>'


def write_prediction_page(path, blobs, image_folder):
    """predict_on_images.py's result.html: each image with its caption and log-probability."""
    folder = os.path.dirname(os.path.abspath(path))
    rows = []
    for blob in blobs:
        rows.append('<tr><td>%s</td><td><div class="candidate">%s</div>'
                    '<div class="refs">log-probability %.3f</div>%s</td></tr>'
                    % (image_cell(os.path.join(image_folder, blob["img_path"]), folder),
                       html.escape(blob["candidate"]["text"]), blob["candidate"]["logprob"],
                       attention_cell(blob, folder)))
    atomic_write_text(path, "<!DOCTYPE html><html><head><meta charset='utf-8'>"
                      "<title>captions</title><style>%s</style></head><body>"
                      "<h1>Predicted captions</h1><table>%s</table></body></html>"
                      % (STYLE, "\n".join(rows)))


def write_evaluation_page(path, blobs, metrics, notes, title):
    """The evaluation page: corpus metrics on top; images, captions, references and
    per-image scores below, sortable by any score (click a column heading)."""
    folder = os.path.dirname(os.path.abspath(path))
    score_keys = sorted({k for blob in blobs for k in blob.get("scores", {})})
    head = "".join('<th onclick="sortBy(%d)">%s</th>' % (i + 2, html.escape(k))
                   for i, k in enumerate(["logprob"] + score_keys))
    rows = []
    for blob in blobs:
        values = [blob["candidate"]["logprob"]] + [blob.get("scores", {}).get(k, float("nan"))
                                                   for k in score_keys]
        cells = "".join('<td data-value="%r">%.3f</td>' % (v, v) for v in values)
        refs = "<br>".join(html.escape(r) for r in blob.get("references", []))
        rows.append('<tr><td>%s</td><td><div class="candidate">%s</div><div class="refs">%s'
                    '</div>%s</td>%s</tr>' % (image_cell(blob.get("img_file"), folder),
                                              html.escape(blob["candidate"]["text"]), refs,
                                              attention_cell(blob, folder), cells))
    metric_rows = "".join("<tr><td>%s</td><td>%.4f</td></tr>" % (html.escape(k), v)
                          for k, v in metrics.items() if isinstance(v, (int, float)))
    note_rows = "".join("<p>%s</p>" % html.escape(n) for n in notes)
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>%s</title>"
            "<style>%s</style><script>%s</script></head><body><h1>%s</h1>"
            "<table class='metrics'>%s</table>%s"
            "<table id='results'><thead><tr><th>image</th><th>caption and references</th>%s"
            "</tr></thead><tbody>%s</tbody></table></body></html>"
            % (html.escape(title), STYLE, SORT_SCRIPT, html.escape(title), metric_rows,
               note_rows, head, "\n".join(rows)))
    atomic_write_text(path, page)


def write_json(path, blob):
    atomic_write_text(path, json.dumps(blob, indent=1))
