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
"""

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
                    '<div class="refs">log-probability %.3f</div></td></tr>'
                    % (image_cell(os.path.join(image_folder, blob["img_path"]), folder),
                       html.escape(blob["candidate"]["text"]), blob["candidate"]["logprob"]))
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
                    '</div></td>%s</tr>' % (image_cell(blob.get("img_file"), folder),
                                            html.escape(blob["candidate"]["text"]), refs, cells))
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
