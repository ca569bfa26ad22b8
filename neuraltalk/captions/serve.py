"""A local web page to try a checkpoint (Python's http.server only):

    python -m neuraltalk.serve CHECKPOINT [--port 8000] [--host 127.0.0.1]

Upload a photo, or ask for a random demo scene when the checkpoint was trained on the
demo's features, and see the image with its captions: greedy, or the top beams of a beam
search, each with its log-probability. An alignment checkpoint shows the sentences of the
test split that score highest with the image (models/brnn.py score_matrix). A generator
that attends (--generator attention) reads the whole image and a demo scene's object boxes
(or its CNN's grid) and the page adds a strip of where each word looks (report.py's
attention_strip, drawn in memory). Features come from the checkpoint's CNN. The model and the CNN load once, before the server listens.

Routes (nothing else exists; no parameter is ever used as a file path, and nothing is
written to disk: the image goes back to the browser inside the page):

    GET  /                      the page (plain HTML forms, no script)
    POST /caption, /caption.json    multipart/form-data with `image` (and `decoding`,
                                `beam_size`), or the raw image bytes (Content-Type image/*
                                or application/octet-stream) with those as query fields
    GET  /demo, /demo.json      a demo scene: `seed` (random when absent), `decoding`,
                                `beam_size`

Refused with a 4xx and a one-line message: a body over --max_bytes (413), no
Content-Length (411), a body that is not an image Pillow reads (415), more than
--max_pixels pixels (a decompression bomb, 422), a side more than --max_aspect times the
other (422), bad fields (400). Requests run on a pool of --workers threads; a connection
that waits is left in the kernel's listen queue, so the number of requests in memory is
bounded too.
"""
import base64
import email.parser
import email.policy
import html
import io
import json
import secrets
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlsplit

import numpy as np

from neuraltalk.errors import NeuralTalkError

MAX_BEAM_SIZE = 20
DEFAULT_BEAM_SIZE = 5
NEAREST = 5  # sentences shown for an alignment checkpoint
DEMO_CNN = "shapes-extractor"
IMAGE_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP")
SOCKET_TIMEOUT = 30  # seconds a client may stall before its worker is freed


class Refused(Exception):
    """A request the server will not serve: an HTTP status and a one-line reason."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class Captioner:
    """The checkpoint, its CNN and (alignment checkpoints) the test sentences, loaded once.
    Every method reads them only, so the worker threads share one Captioner."""

    def __init__(self, checkpoint_path, weights=None, data_root=None):
        from neuraltalk.cnn.extract import CNNS, Extractor
        from neuraltalk.models import captioning, is_generator, module_of
        from neuraltalk.train.checkpoint import load_checkpoint
        checkpoint = load_checkpoint(checkpoint_path)
        self.path = checkpoint_path
        self.model, self.params = checkpoint["model"], checkpoint["params"]
        self.ixtoword = checkpoint["ixtoword"]
        self.is_generator = is_generator(self.params)
        # NeuralTalk's own checkpoints name no CNN: theirs is VGG-16's fc7
        self.cnn = self.params.get("cnn") or "vgg16"
        if self.cnn not in CNNS:
            raise NeuralTalkError("%s was trained on features of %r, which neuraltalk.cnn does "
                                  "not compute, so it cannot caption new images here"
                                  % (checkpoint_path, self.cnn))
        if self.cnn == "vgg16" and not weights:
            raise NeuralTalkError("%s was trained on VGG-16 features: give the VGG-16 weights "
                                  "with --weights FILE (see python -m neuraltalk.features "
                                  "--help)" % checkpoint_path)
        self.extractor = Extractor(self.cnn, weights)
        # a generator that attends reads regions: the demo scene's boxes, or a CNN's grid
        self.attends = self.is_generator and getattr(module_of(self.params), "NEEDS_REGIONS",
                                                     False)
        self.grid = self.attends and self.cnn != DEMO_CNN
        if self.grid and not hasattr(self.extractor.module, "feature_map"):
            raise NeuralTalkError("%s attends over regions, and %s has no convolutional map "
                                  "to give them" % (checkpoint_path, self.cnn))
        width = (captioning.input_width(self.model) if self.is_generator
                 else self.model["Wm"].shape[0])
        if not self.grid and width != self.extractor.width:
            raise NeuralTalkError("%s was trained on %d-d features but %s gives %d-d ones"
                                  % (checkpoint_path, width, self.cnn, self.extractor.width))
        self.has_demo = self.cnn == DEMO_CNN
        if not self.is_generator:
            self._load_test_sentences(data_root, checkpoint["wordtoix"])

    def _load_test_sentences(self, data_root, wordtoix):
        from neuraltalk.data.batches import SentenceTable
        from neuraltalk.data.dataset import load_dataset
        dataset = load_dataset(self.params["dataset"],
                               data_root=data_root or self.params.get("data_root", "data"))
        self.table = SentenceTable(dataset, wordtoix, "test")
        # the table's rows, in its order: the test images that have sentences, grouped
        self.sentences = [(" ".join(s["tokens"]), img["filename"])
                          for img in dataset.split("test") if img["sentences"]
                          for s in img["sentences"]]

    def describe(self, image, decoding, beam_size, boxes=None):
        """What the page shows about one RGB PIL image: its captions (a generator) or its
        nearest test sentences (an alignment model). `boxes` (R, 4): the demo scene's
        objects, regions for the alignment model and an attending generator besides the
        whole image. An attending generator's result also has 'regions' (their boxes) and
        'attention': per word of the best beam, the word and its weights over them."""
        beam_size = 1 if decoding == "greedy" else beam_size
        result = {"checkpoint": self.path, "width": image.size[0], "height": image.size[1]}
        t0 = time.time()
        if self.is_generator:
            from neuraltalk.captions.decoding import beam_search, caption_text
            regions = region_boxes = None
            if self.attends:
                feats, regions, region_boxes = self.regions(image, boxes)
            else:
                feats = self.extractor.features([image])
            beams = beam_search(self.model, self.params, feats, beam_size, regions=regions,
                                return_weights=self.attends)[0]
            result.update(kind="captions", decoding=decoding, beam_size=beam_size,
                          beams=[{"text": caption_text(self.ixtoword, b[1]), "logprob": b[0]}
                                 for b in beams])
            result["caption"] = result["beams"][0]["text"]
            if self.attends:
                seq, weights = beams[0][1], beams[0][2]
                result["regions"] = region_boxes.tolist()
                result["attention"] = [
                    {"word": self.ixtoword[ix] if ix > 0 else "END",
                     "weights": [round(float(x), 4) for x in alpha]}
                    for ix, alpha in zip(seq, weights)]
        else:
            result.update(kind="nearest sentences", nearest=self.nearest(image, boxes))
        result["seconds"] = round(time.time() - t0, 3)
        return result

    def regions(self, image, boxes=None):
        """(feats (1, D), (regions (1, R, D), counts (1,)), boxes (R, 4)) of one image for
        a generator that attends: the whole image and the demo scene's `boxes` (just the
        whole image for a photo), or the cells of the CNN's last convolutional map."""
        from neuraltalk.models.captioning import input_width
        if self.grid:
            feats, cells, cell_boxes = self.extractor.features_and_grid([image])
            if cells.shape[2] != input_width(self.model):
                raise NeuralTalkError("%s attends over %d-d regions but %s's grid cells are "
                                      "%d-d" % (self.path, input_width(self.model), self.cnn,
                                                cells.shape[2]))
            return feats, (cells, np.array([cells.shape[1]])), cell_boxes[0]
        from neuraltalk.demo.extractor import preprocess, region_features
        # boxes in the image's pixels (a demo scene's are those of its 64 x 64 render)
        shown = np.array([[0, 0, image.size[0], image.size[1]]] + list(boxes or []))
        if boxes:
            pixels, in_pixels = np.asarray(image)[None], shown
        else:  # a photo: the extractor's resized copy, whose one region is all of it
            pixels = preprocess([image])
            in_pixels = np.array([[0, 0, pixels.shape[2], pixels.shape[1]]])
        regions = region_features(pixels, in_pixels[None], np.array([len(in_pixels)]))
        return regions[:, 0], (regions, np.array([len(in_pixels)])), shown

    def nearest(self, image, boxes=None):
        """The test split's sentences scored highest with the image (eq. 8's S_kl): its
        regions are the whole image plus `boxes`."""
        from neuraltalk.models.brnn import score_matrix
        if boxes is not None and len(boxes) and self.cnn == DEMO_CNN:
            from neuraltalk.demo.extractor import region_features
            pixels = np.asarray(image)[None]
            all_boxes = np.array([[[0, 0, image.size[0], image.size[1]]] + list(boxes)])
            regions = region_features(pixels, all_boxes, np.array([len(all_boxes[0])]))
        else:
            regions = self.extractor.features([image])[:, None]
        width = max(1, int(self.table.lengths.max(initial=0)))
        S = score_matrix(self.model, self.params, regions, np.array([regions.shape[1]]),
                         self.table.words[:, :width], self.table.lengths)[0]
        best = np.argsort(-S, kind="stable")[:NEAREST]
        return [{"text": self.sentences[i][0], "image": self.sentences[i][1],
                 "score": float(S[i])} for i in best]


def read_image(data, max_pixels, max_aspect):
    """The uploaded bytes as an RGB PIL image, or Refused: the size is checked from the
    header, before a pixel is decoded."""
    from PIL import Image
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # only formats Pillow decodes itself (EPS, for one, would run Ghostscript)
            img = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise Refused(HTTPStatus.UNPROCESSABLE_ENTITY, "the image has more pixels than Pillow "
                      "allows (a decompression bomb): send a smaller image") from None
    except Exception:  # Pillow raises many types for bytes that are no image
        raise Refused(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "the upload is not an image Pillow "
                      "can read: send a JPEG, PNG, GIF, BMP, TIFF or WebP file") from None
    w, h = img.size
    if w * h > max_pixels:
        raise Refused(HTTPStatus.UNPROCESSABLE_ENTITY, "the image is %d x %d = %d pixels, more "
                      "than this server's limit of %d (--max_pixels): send a smaller image"
                      % (w, h, w * h, max_pixels))
    if max(w, h) > max_aspect * min(w, h):
        raise Refused(HTTPStatus.UNPROCESSABLE_ENTITY, "the image is %d x %d: one side is "
                      "more than %g times the other (--max_aspect)" % (w, h, max_aspect))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return img.convert("RGB")
    except Exception:  # truncated or corrupt pixel data
        raise Refused(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "the image's pixel data cannot be "
                      "decoded (truncated or damaged file)") from None


def decoding_options(fields):
    """(decoding, beam_size) from the request's fields, or Refused."""
    decoding = fields.get("decoding", "beam")
    if decoding not in ("greedy", "beam"):
        raise Refused(HTTPStatus.BAD_REQUEST, "decoding must be greedy or beam, not %.40r"
                      % decoding)
    raw = fields.get("beam_size", str(DEFAULT_BEAM_SIZE)) or str(DEFAULT_BEAM_SIZE)
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_BEAM_SIZE):
        raise Refused(HTTPStatus.BAD_REQUEST, "beam_size must be a whole number from 1 to %d, "
                      "not %.40r" % (MAX_BEAM_SIZE, raw))
    return decoding, int(raw)


def demo_seed(fields):
    raw = fields.get("seed", "")
    if raw == "":
        return secrets.randbelow(10 ** 6)
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9):
        raise Refused(HTTPStatus.BAD_REQUEST, "seed must be a whole number below 10^9, not "
                      "%.40r" % raw)
    return int(raw)


def png_data_uri(image, longest=512):
    """The image as a data: URI (a PNG, at most `longest` pixels a side), so the page needs
    no file and the server writes none."""
    from PIL import Image
    shown = image.copy()
    shown.thumbnail((longest, longest), Image.BICUBIC)
    buf = io.BytesIO()
    shown.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


STYLE = """
body { font-family: sans-serif; margin: 1em 2em; max-width: 60em; }
form { margin: 0.5em 0 1em; padding: 0.6em 1em; background: #f3f3f3; }
.result img { max-width: 448px; max-height: 448px; border: 1px solid #ccc; }
.result img.scene { width: 256px; image-rendering: pixelated; }
.caption { font-size: 1.4em; font-weight: bold; margin: 0.3em 0; }
table { border-collapse: collapse; }
td, th { border-bottom: 1px solid #ddd; padding: 4px 10px; text-align: left; }
.error { color: #a00; font-weight: bold; }
.note { color: #555; font-size: 0.9em; }
.strip { max-width: 100%; overflow-x: auto; }
.result img.attention { max-width: none; max-height: none; border: none; }
"""


def shown_text(caption):
    """A caption as the page shows it: an empty one (END as the first word, as an
    untrained model may say) is named rather than left blank."""
    return html.escape(caption) if caption else "(an empty caption)"


def render_page(captioner, result=None, image_uri=None, error=None, seed=None, strip_uri=None):
    """The one page: the forms, and the last result or error above them."""
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>neuraltalk</title>"
             "<style>%s</style></head><body><h1>neuraltalk</h1>" % STYLE,
             "<p class='note'>%s (%s, features: %s)</p>" % (
                 html.escape(captioner.path), "caption generator" if captioner.is_generator
                 else "alignment model", html.escape(captioner.cnn))]
    if error:
        parts.append("<p class='error' id='error'>%s</p>" % html.escape(error))
    if result:
        parts.append("<div class='result'><img alt='the image' class='%s' src='%s'>"
                     % ("scene" if seed is not None else "photo", image_uri))
        if seed is not None:
            parts.append("<p class='note'>demo scene, seed %d: %s</p>" % (
                seed, html.escape(", ".join("a %s %s %s" % (o["size"], o["color"], o["shape"])
                                            for o in result["objects"]))))
        if result["kind"] == "captions":
            parts.append("<p class='caption' id='caption'>%s</p>" % shown_text(result["caption"]))
            parts.append("<table id='beams'><tr><th>%s</th><th>log-probability</th></tr>"
                         % ("greedy" if result["decoding"] == "greedy"
                            else "beam search, %d beams" % result["beam_size"]))
            parts += ["<tr><td>%s</td><td>%.3f</td></tr>" % (shown_text(b["text"]), b["logprob"])
                      for b in result["beams"]]
            parts.append("</table>")
            if strip_uri:  # an attending generator: where each word of the best beam looks
                parts.append("<p class='note'>where each word looks (bright: high attention "
                             "weight; the yellow box: the most attended region)</p><div "
                             "class='strip'><img alt='where each word looks' class='attention' "
                             "id='attention' src='%s'></div>" % strip_uri)
        else:
            parts.append("<table id='nearest'><tr><th>nearest test sentences</th><th>image"
                         "</th><th>score</th></tr>")
            parts += ["<tr><td>%s</td><td>%s</td><td>%.3f</td></tr>"
                      % (html.escape(n["text"]), html.escape(n["image"]), n["score"])
                      for n in result["nearest"]]
            parts.append("</table>")
        parts.append("<p class='note'>%.2fs</p></div>" % result["seconds"])
    # the forms keep the last request's choices
    decoding = result.get("decoding", "beam") if result else "beam"
    beam_size = result.get("beam_size", DEFAULT_BEAM_SIZE) if result else DEFAULT_BEAM_SIZE
    if decoding == "greedy":
        beam_size = DEFAULT_BEAM_SIZE
    options = ("<label><input type='radio' name='decoding' value='greedy'%s> greedy</label> "
               "<label><input type='radio' name='decoding' value='beam'%s> beam search</label>, "
               "<label>beam size <input type='number' name='beam_size' min='1' max='%d' "
               "value='%d'></label> " % (" checked" if decoding == "greedy" else "",
                                         " checked" if decoding == "beam" else "",
                                         MAX_BEAM_SIZE, beam_size)
               if captioner.is_generator else "")
    parts.append("<form method='post' action='/caption' enctype='multipart/form-data'>"
                 "<p><b>Your image</b> <input type='file' name='image' accept='image/*' "
                 "required></p><p>%s<button type='submit'>%s</button></p></form>"
                 % (options, "caption this image" if captioner.is_generator
                    else "find its nearest test sentences"))
    if captioner.has_demo:
        parts.append("<form method='get' action='/demo'><p><b>A scene of the demo dataset</b>"
                     "</p><p>%s<label>seed <input type='number' name='seed' min='0' "
                     "placeholder='random'></label> <button type='submit'>a random demo scene"
                     "</button></p></form>" % options)
    parts.append("</body></html>")
    return "".join(parts)


def parse_multipart(content_type, body):
    """{field name: bytes} of a multipart/form-data body (the email package's parser: the
    standard library's cgi module is gone from Python 3.13). File names are ignored."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    if not message.is_multipart():
        raise Refused(HTTPStatus.BAD_REQUEST, "the multipart/form-data body cannot be parsed")
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name and name not in fields:
            fields[name] = part.get_payload(decode=True) or b""
    return fields


class Handler(BaseHTTPRequestHandler):
    """One request; the server's Captioner and limits are on self.server."""
    server_version = "neuraltalk"
    timeout = SOCKET_TIMEOUT

    def do_GET(self):
        self._serve(self._get)

    def do_POST(self):
        self._serve(self._post)

    def _serve(self, route):
        url = urlsplit(self.path)
        as_json = url.path.endswith(".json")
        try:
            try:
                query = parse_qs(url.query, max_num_fields=10)
            except ValueError:  # more than max_num_fields
                raise Refused(HTTPStatus.BAD_REQUEST, "too many query fields") from None
            route(url.path, {k: v[0] for k, v in query.items()}, as_json)
        except Refused as e:
            self._send_error(e.status, e.message, as_json)
        except TimeoutError:  # the client stopped sending: free the worker
            self.close_connection = True
            self._send_error(HTTPStatus.REQUEST_TIMEOUT, "the request stalled for %ds"
                             % SOCKET_TIMEOUT, as_json)
        except Exception as e:  # a bug must not stop the server: report it, serve on
            self.log_error("internal error: %r", e)
            self._send_error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error: %s"
                             % type(e).__name__, as_json)

    def _get(self, path, fields, as_json):
        captioner = self.server.captioner
        if path == "/":
            return self._send(HTTPStatus.OK, render_page(captioner), "text/html")
        if path not in ("/demo", "/demo.json"):
            raise Refused(HTTPStatus.NOT_FOUND, "no such page: the pages are /, /caption "
                          "and /demo")
        if not captioner.has_demo:
            raise Refused(HTTPStatus.NOT_FOUND, "demo scenes are for checkpoints trained on "
                          "the demo dataset; this one reads %s features" % captioner.cnn)
        from PIL import Image
        from neuraltalk.demo.scenes import fresh_scenes
        decoding, beam_size = decoding_options(fields)
        seed = demo_seed(fields)
        ((objects, pixels),) = fresh_scenes(seed, 1)
        image = Image.fromarray(pixels)
        result = captioner.describe(image, decoding, beam_size,
                                    boxes=[o["box"] for o in objects])
        result.update(seed=seed, objects=objects)
        self._send_result(result, image, as_json, seed)

    def _post(self, path, fields, as_json):
        if path not in ("/caption", "/caption.json"):
            raise Refused(HTTPStatus.NOT_FOUND, "no such page: POST an image to /caption")
        body = self._read_body()
        content_type = self.headers.get("Content-Type", "")
        kind = content_type.split(";")[0].strip().lower()
        if kind == "multipart/form-data":
            parts = parse_multipart(content_type, body)
            if "image" not in parts or not parts["image"]:
                raise Refused(HTTPStatus.BAD_REQUEST, "the form has no image: choose a file")
            for name in ("decoding", "beam_size"):
                if name in parts:
                    fields[name] = parts[name].decode("utf-8", "replace").strip()
            data = parts["image"]
        elif kind.startswith("image/") or kind == "application/octet-stream":
            data = body
        else:
            raise Refused(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send the image as multipart/"
                          "form-data (field image) or as the body with Content-Type image/*")
        decoding, beam_size = decoding_options(fields)
        image = read_image(data, self.server.max_pixels, self.server.max_aspect)
        self._send_result(self.server.captioner.describe(image, decoding, beam_size), image,
                          as_json)

    def _read_body(self):
        """The request body, at most max_bytes: a larger one is refused unread (drained
        first if it is not much larger, so the client hears the 413 before a reset)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise Refused(HTTPStatus.LENGTH_REQUIRED, "send a Content-Length, not a chunked body")
        raw = self.headers.get("Content-Length")
        if raw is None:
            raise Refused(HTTPStatus.LENGTH_REQUIRED, "send a Content-Length header")
        if not (raw.strip().isascii() and raw.strip().isdigit()):
            raise Refused(HTTPStatus.BAD_REQUEST, "Content-Length %.40r is not a number" % raw)
        length, limit = int(raw), self.server.max_bytes
        if length > limit:
            self.close_connection = True
            left = length if length <= 4 * limit else 0
            while left > 0:
                got = len(self.rfile.read(min(1 << 16, left)))
                left = left - got if got else 0
            raise Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "the body is %d bytes, more "
                          "than this server's limit of %d (--max_bytes)" % (length, limit))
        body = self.rfile.read(length)
        if len(body) != length:
            raise Refused(HTTPStatus.BAD_REQUEST, "the body ended after %d of its %d bytes"
                          % (len(body), length))
        return body

    def _send_result(self, result, image, as_json, seed=None):
        if as_json:
            return self._send(HTTPStatus.OK, json.dumps(result), "application/json")
        strip_uri = None
        if result.get("attention"):
            from neuraltalk.captions.report import attention_strip
            attention = result["attention"]
            strip = attention_strip(image, [a["word"] for a in attention],
                                    np.array([a["weights"] for a in attention]),
                                    np.array(result["regions"]))
            strip_uri = png_data_uri(strip, longest=max(strip.size))
        page = render_page(self.server.captioner, result, png_data_uri(image), seed=seed,
                           strip_uri=strip_uri)
        self._send(HTTPStatus.OK, page, "text/html")

    def _send_error(self, status, message, as_json):
        if as_json:
            body = json.dumps({"error": message, "status": int(status)})
            return self._send(status, body, "application/json")
        self._send(status, render_page(self.server.captioner, error=message), "text/html")

    def _send(self, status, text, content_type):
        data = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type + "; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Content-Type-Options", "nosniff")
        # the page is self-contained: no script, no request to anywhere but this server
        self.send_header("Content-Security-Policy", "default-src 'none'; img-src data:; "
                         "style-src 'unsafe-inline'; form-action 'self'")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, format, *args):
        if not self.server.quiet:
            super().log_message(format, *args)


class Server(HTTPServer):
    """http.server with a bounded worker pool: the accept loop takes a connection only when
    one of `workers` threads is free; the rest wait in the listen queue."""

    def __init__(self, address, captioner, workers=2, max_bytes=5 << 20,
                 max_pixels=25_000_000, max_aspect=20.0, quiet=False):
        self.captioner = captioner
        self.max_bytes, self.max_pixels, self.max_aspect = max_bytes, max_pixels, max_aspect
        self.quiet = quiet
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="neuraltalk-serve")
        self.slots = threading.BoundedSemaphore(workers)
        super().__init__(address, Handler)

    def process_request(self, request, client_address):
        self.slots.acquire()
        self.pool.submit(self._work, request, client_address)

    def _work(self, request, client_address):
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            self.slots.release()

    def server_close(self):
        super().server_close()
        self.pool.shutdown(wait=True)


def serve(args):
    from neuraltalk.train.runs import checkpoint_file
    captioner = Captioner(checkpoint_file(args.checkpoint_path), args.weights, args.data_root)
    try:
        server = Server((args.host, args.port), captioner, args.workers, args.max_bytes,
                        args.max_pixels, args.max_aspect)
    except OSError as e:
        raise NeuralTalkError("cannot listen on %s port %d: %s (choose another --port)"
                              % (args.host, args.port, e.strerror or e)) from None
    host, port = server.server_address[:2]
    print("serving %s on http://%s:%d/ (Ctrl-C stops)" % (captioner.path, host, port), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped")
    finally:
        server.server_close()
    return 0

