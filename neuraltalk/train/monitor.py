"""The training monitor: `monitor.html` beside the status JSON files, as NeuralTalk's
monitorcv.html was, but self-contained (inline SVG, no script, no network).

It plots, against iterations, every run of the status folder: the training cost (thin)
and its moving average (thick) in one chart, the validation perplexity (and the alignment
model's retrieval score, if a run reports it) in the next ones. driver.py rewrites it at each validation; open it in a
browser and reload.

A status file (`<host>_<dataset>_<fappend>_status.json`, written by neuraltalk/train.py)
holds `run` (the name), `cost_history` ([iteration, cost, smoothed cost] points,
subsampled to at most ~2000), `val_history` ([iteration, value]) and `val_label`.
"""
import glob
import html
import json
import math
import os

from neuraltalk.atomic import atomic_write_text

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
           "#17becf", "#7f7f7f", "#bcbd22")
WIDTH, HEIGHT = 1100, 340
LEFT, RIGHT, TOP, BOTTOM = 80, 20, 30, 45


def read_runs(folder):
    """The status dicts of `folder`, sorted by run name; unreadable files are left out
    (a run may be rewriting its file, and a page must not fail for that)."""
    runs = []
    for path in sorted(glob.glob(os.path.join(folder, "*_status.json"))):
        try:
            with open(path, encoding="utf-8") as f:
                status = json.load(f)
        except (OSError, ValueError):
            continue
        if isinstance(status, dict):
            status.setdefault("run", os.path.basename(path)[:-len("_status.json")])
            runs.append(status)
    return sorted(runs, key=lambda s: str(s["run"]))


def nice_ticks(lo, hi, n=6):
    """About n round tick values covering [lo, hi]."""
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    raw = (hi - lo) / n
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.ceil(lo / step) * step
    return [round(first + k * step, 12) for k in range(int((hi - first) / step + 1e-9) + 1)]


def format_tick(value):
    if value == 0:
        return "0"
    if abs(value) >= 1e5 or abs(value) < 1e-3:
        return "%.1e" % value
    return ("%.4f" % value).rstrip("0").rstrip(".")


def chart(title, y_label, series):
    """One SVG chart. series: [(run, colour, kind, points [(x, y)], stroke width)]."""
    xs = [x for *_, points, _w in series for x, _ in points]
    ys = [y for *_, points, _w in series for _, y in points]
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img" '
           'aria-label="%s">' % (WIDTH, HEIGHT, html.escape(title))]
    out.append('<text x="%d" y="18" font-size="15" font-weight="bold">%s</text>'
               % (LEFT, html.escape(title)))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    out.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#444"/>'
               % (LEFT, TOP, plot_w, plot_h))
    if not xs:
        out.append('<text x="%d" y="%d" fill="#666">no points yet</text>'
                   % (LEFT + 20, TOP + plot_h // 2))
        return "\n".join(out + ["</svg>"])
    x_lo, x_hi = min(xs), max(xs)
    y_lo, y_hi = min(ys), max(ys)
    x_ticks, y_ticks = nice_ticks(x_lo, x_hi), nice_ticks(y_lo, y_hi)
    x_lo, x_hi = min(x_lo, x_ticks[0]), max(x_hi, x_ticks[-1])
    y_lo, y_hi = min(y_lo, y_ticks[0]), max(y_hi, y_ticks[-1])
    x_span, y_span = (x_hi - x_lo) or 1.0, (y_hi - y_lo) or 1.0

    def px(x):
        return LEFT + (x - x_lo) / x_span * plot_w

    def py(y):
        return TOP + plot_h - (y - y_lo) / y_span * plot_h
    for t in x_ticks:
        out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>'
                   '<text x="%.1f" y="%d" font-size="12" text-anchor="middle">%s</text>'
                   % (px(t), TOP, px(t), TOP + plot_h, px(t), TOP + plot_h + 16, format_tick(t)))
    for t in y_ticks:
        out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>'
                   '<text x="%d" y="%.1f" font-size="12" text-anchor="end">%s</text>'
                   % (LEFT, py(t), LEFT + plot_w, py(t), LEFT - 6, py(t) + 4, format_tick(t)))
    out.append('<text x="%d" y="%d" font-size="13" text-anchor="middle">iteration</text>'
               % (LEFT + plot_w // 2, HEIGHT - 8))
    out.append('<text x="16" y="%d" font-size="13" text-anchor="middle" '
               'transform="rotate(-90 16 %d)">%s</text>'
               % (TOP + plot_h // 2, TOP + plot_h // 2, html.escape(y_label)))
    for run, colour, kind, points, width in series:
        coords = " ".join("%.1f,%.1f" % (px(x), py(y)) for x, y in points)
        opacity = "0.35" if kind == "cost" else "1"
        out.append('<polyline class="%s" data-run="%s" data-points="%d" points="%s" fill="none" '
                   'stroke="%s" stroke-width="%s" stroke-opacity="%s"/>'
                   % (kind, html.escape(str(run)), len(points), coords, colour, width, opacity))
        if kind == "validation":  # few points: mark each
            out += ['<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>' % (px(x), py(y), colour)
                    for x, y in points]
    return "\n".join(out + ["</svg>"])


def render(runs):
    """The page for a list of status dicts (see read_runs)."""
    cost_series, legend = [], []
    val_series = {}  # one chart per kind of validation value: perplexities, scores
    for k, status in enumerate(runs):
        colour = COLOURS[k % len(COLOURS)]
        run = status["run"]
        costs = [p for p in status.get("cost_history") or [] if len(p) >= 3]
        cost_series.append((run, colour, "cost", [(p[0], p[1]) for p in costs], 1))
        cost_series.append((run, colour, "smooth", [(p[0], p[2]) for p in costs], 2.5))
        vals = [(p[0], p[1]) for p in status.get("val_history") or [] if len(p) >= 2]
        label = status.get("val_label") or "validation perplexity"
        val_series.setdefault(label, []).append((run, colour, "validation", vals, 2))
        it = status.get("iter") or ["?", "?"]
        last = "%.3f" % vals[-1][1] if vals else "none yet"
        legend.append('<li><span style="color:%s">&#9632;</span> <b>%s</b>: iteration %s of %s, '
                      'last validation %s, updated %s</li>'
                      % (colour, html.escape(str(run)), it[0], it[1], last,
                         html.escape(str(status.get("time", "")))))
    val_charts = [chart(label, label, val_series[label]) for label in sorted(val_series)]
    return "\n".join([
        "<!DOCTYPE html>", '<html><head><meta charset="utf-8"><title>neuraltalk training '
        "monitor</title>",
        "<style>body{font-family:sans-serif;margin:1em 2em}li{margin:.2em 0}</style>",
        "</head><body>", "<h1>Training monitor</h1>",
        "<p>Rewritten at each validation of every run writing into this folder; reload to "
        "update. Thin lines: the cost of each batch; thick: its moving average.</p>",
        "<ul>", *legend, "</ul>",
        chart("training cost", "cost", cost_series),
        *(val_charts or [chart("validation perplexity", "validation perplexity", [])]),
        "</body></html>", ""])


def write_monitor(folder):
    """Write `<folder>/monitor.html` from the folder's status files; returns its path."""
    path = os.path.join(folder, "monitor.html")
    atomic_write_text(path, render(read_runs(folder)))
    return path
