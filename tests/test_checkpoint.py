import os
import pickle

import numpy as np
import pytest

from neuraltalk.atomic import atomic_write_text
from neuraltalk.train.checkpoint import load_checkpoint, save_checkpoint
from neuraltalk.errors import NeuralTalkError


def _checkpoint():
    return {"model": {"We": np.arange(6, dtype=np.float32).reshape(2, 3)},
            "params": {"generator": "lstm", "hidden_size": 3}, "it": 7, "epoch": 0.5,
            "perplexity": 12.5, "wordtoix": {"#START#": 0, "a": 1}, "ixtoword": {0: ".", 1: "a"},
            "rng_state": np.random.default_rng(0).bit_generator.state}


def test_round_trip_keeps_arrays_and_keys(tmp_path):
    path = str(tmp_path / "c.p")
    save_checkpoint(path, _checkpoint())
    loaded = load_checkpoint(path)
    assert loaded["it"] == 7 and loaded["ixtoword"] == {0: ".", 1: "a"}
    np.testing.assert_array_equal(loaded["model"]["We"], _checkpoint()["model"]["We"])
    assert loaded["model"]["We"].dtype == np.float32
    assert loaded["rng_state"] == _checkpoint()["rng_state"]


def test_save_leaves_no_temporary_file(tmp_path):
    save_checkpoint(str(tmp_path / "c.p"), _checkpoint())
    assert os.listdir(tmp_path) == ["c.p"]


def test_failed_save_keeps_the_previous_file(tmp_path):
    path = str(tmp_path / "c.p")
    save_checkpoint(path, _checkpoint())
    before = open(path, "rb").read()
    bad = _checkpoint()
    bad["unpicklable"] = lambda: None
    with pytest.raises(Exception):
        save_checkpoint(path, bad)
    assert open(path, "rb").read() == before
    assert os.listdir(tmp_path) == ["c.p"]


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


WRITERS = {"checkpoint": lambda path: save_checkpoint(path, _checkpoint()),
           "text": lambda path: atomic_write_text(path, "{}")}


@pytest.mark.parametrize("write", WRITERS.values(), ids=WRITERS.keys())
def test_new_file_gets_the_mode_the_umask_gives(tmp_path, umask_022, write):
    path = str(tmp_path / "new")
    write(path)
    assert oct(os.stat(path).st_mode & 0o7777) == "0o644"


@pytest.mark.parametrize("write", WRITERS.values(), ids=WRITERS.keys())
def test_rewritten_file_keeps_its_mode(tmp_path, umask_022, write):
    path = tmp_path / "old"
    path.write_text("before")
    path.chmod(0o640)
    write(str(path))
    assert oct(os.stat(path).st_mode & 0o7777) == "0o640" and path.read_bytes() != b"before"


class _CreatesFile:
    """Unpickling this with the plain pickle module creates the file at `path`."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_malicious_pickle_is_refused_before_it_runs(tmp_path):
    path = tmp_path / "evil.p"
    path.write_bytes(pickle.dumps({"model": _CreatesFile(tmp_path / "owned"), "params": {}}))
    with pytest.raises(NeuralTalkError, match="refusing to load checkpoint .*evil.p.*io.open"):
        load_checkpoint(str(path))
    assert not (tmp_path / "owned").exists()


def test_checkpoint_with_a_persistent_id_is_refused(tmp_path):
    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return "x" if isinstance(obj, _CreatesFile) else None
    path = tmp_path / "pid.p"
    with open(path, "wb") as f:
        Pickler(f).dump({"model": _CreatesFile(tmp_path / "owned"), "params": {}})
    with pytest.raises(NeuralTalkError, match="pid.p is corrupt"):
        load_checkpoint(str(path))


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "cut.p"
    path.write_bytes(pickle.dumps(_checkpoint())[:100])
    with pytest.raises(NeuralTalkError, match="cut.p is corrupt"):
        load_checkpoint(str(path))


def test_missing_checkpoint_names_the_file(tmp_path):
    with pytest.raises(NeuralTalkError, match="cannot read checkpoint .*nothere.p"):
        load_checkpoint(str(tmp_path / "nothere.p"))


def test_python2_latin1_pickle_loads(tmp_path):
    # Python 2 pickled str as 8-bit strings; protocol 2 with a non-ASCII byte in a word.
    path = tmp_path / "py2.p"
    payload = (b"\x80\x02}q\x00(U\x05modelq\x01}q\x02U\x06paramsq\x03}q\x04"
               b"U\x08ixtowordq\x05}q\x06K\x01U\x04caf\xe9q\x07su.")
    path.write_bytes(payload)
    loaded = load_checkpoint(str(path))
    assert loaded["ixtoword"] == {1: "caf\xe9"}


def test_neuraltalk_checkpoint_loads(neuraltalk_checkpoint_dir):
    c = load_checkpoint(os.path.join(neuraltalk_checkpoint_dir, "neuraltalk_lstm.p"))
    assert set(c["model"]) == {"We", "be", "Ws", "WLSTM", "Wd", "bd"}
    assert c["model"]["WLSTM"].shape == (1 + 256 + 256, 4 * 256)
    assert c["params"]["generator"] == "lstm" and c["ixtoword"][0] == "."
