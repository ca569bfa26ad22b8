"""The region-feature file: a round trip, lazy rows, and a clear error for each way it can be wrong."""
import os

import h5py
import numpy as np
import pytest

from neuraltalk.errors import NeuralTalkError
from neuraltalk.data.regions import load_regions, save_regions


def _write(tmp_path, n=4, r=3, d=5, counts=None, seed=0):
    rng = np.random.default_rng(seed)
    counts = np.array(counts if counts is not None else [1, 3, 2, 3][:n])
    feats = rng.normal(size=(n, r, d)).astype(np.float32)
    feats[np.arange(r)[None, :] >= counts[:, None]] = 0
    boxes = rng.integers(0, 64, size=(n, r, 4))
    save_regions(str(tmp_path / "regions.h5"), feats, boxes, counts)
    return feats, boxes, counts


def test_round_trip_by_folder_and_by_file(tmp_path):
    feats, boxes, counts = _write(tmp_path)
    for where in (str(tmp_path), str(tmp_path / "regions.h5")):
        regions = load_regions(where, n_images=4)
        assert len(regions) == 4 and regions.width == 5 and regions.max_regions == 3
        np.testing.assert_array_equal(regions.boxes, boxes)
        got, got_counts = regions.rows(np.arange(4))
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, feats)
        np.testing.assert_array_equal(got_counts, counts)


def test_rows_in_any_order_with_repeats(tmp_path):
    feats, _, counts = _write(tmp_path)
    got, got_counts = load_regions(str(tmp_path)).rows([3, 0, 3, 1])
    np.testing.assert_array_equal(got, feats[[3, 0, 3, 1]])
    assert got_counts.tolist() == counts[[3, 0, 3, 1]].tolist()


def test_features_are_read_lazily(tmp_path):
    _write(tmp_path)
    regions = load_regions(str(tmp_path))
    assert isinstance(regions.feats, h5py.Dataset)  # not an in-memory copy


def test_missing_file_names_it(tmp_path):
    with pytest.raises(NeuralTalkError, match="regions.h5 do not exist"):
        load_regions(str(tmp_path))


def test_missing_datasets(tmp_path):
    with h5py.File(tmp_path / "regions.h5", "w") as f:
        f["feats"] = np.zeros((2, 3, 4))
    with pytest.raises(NeuralTalkError, match="lacks boxes, counts"):
        load_regions(str(tmp_path))


def test_not_an_hdf5_file(tmp_path):
    (tmp_path / "regions.h5").write_text("not hdf5")
    with pytest.raises(NeuralTalkError, match="cannot open region features"):
        load_regions(str(tmp_path))


def test_wrong_shapes(tmp_path):
    with h5py.File(tmp_path / "regions.h5", "w") as f:
        f["feats"] = np.zeros((2, 3))
        f["boxes"] = np.zeros((2, 3, 4))
        f["counts"] = np.ones(2)
    with pytest.raises(NeuralTalkError, match=r"expected \(N, R, D\)"):
        load_regions(str(tmp_path))
    save_regions(str(tmp_path / "regions.h5"), np.zeros((2, 3, 4)), np.zeros((2, 2, 4)),
                 np.array([1, 1]))
    with pytest.raises(NeuralTalkError, match="do not fit feats"):
        load_regions(str(tmp_path))


def test_counts_out_of_range(tmp_path):
    _write(tmp_path, n=2, counts=[1, 4])
    with pytest.raises(NeuralTalkError, match="every count must be in 1..3"):
        load_regions(str(tmp_path))
    _write(tmp_path, n=2, counts=[0, 2])
    with pytest.raises(NeuralTalkError, match="every count must be in 1..3"):
        load_regions(str(tmp_path))


def test_image_count_must_match_the_dataset(tmp_path):
    _write(tmp_path, n=2, counts=[1, 3])
    with pytest.raises(NeuralTalkError, match="regions of 2 images but the dataset has 5"):
        load_regions(str(tmp_path), n_images=5)


def test_non_finite_features(tmp_path):
    feats, boxes, counts = _write(tmp_path)
    feats[2, 0, 1] = np.nan
    save_regions(str(tmp_path / "regions.h5"), feats, boxes, counts)
    regions = load_regions(str(tmp_path))
    regions.rows([0, 1])  # the bad row is not read
    with pytest.raises(NeuralTalkError, match="NaN or infinite"):
        regions.rows([2])


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_new_file_gets_the_mode_the_umask_gives(tmp_path, umask_022):
    _write(tmp_path)
    assert oct(os.stat(tmp_path / "regions.h5").st_mode & 0o7777) == "0o644"
    assert os.listdir(tmp_path) == ["regions.h5"]


def test_rewritten_file_keeps_its_mode(tmp_path, umask_022):
    _write(tmp_path, seed=0)
    (tmp_path / "regions.h5").chmod(0o640)
    feats, _, _ = _write(tmp_path, seed=1)
    assert oct(os.stat(tmp_path / "regions.h5").st_mode & 0o7777) == "0o640"
    np.testing.assert_array_equal(load_regions(str(tmp_path)).rows(np.arange(4))[0], feats)


def test_failed_save_keeps_the_old_file_and_no_temporary(tmp_path):
    _write(tmp_path)
    before = (tmp_path / "regions.h5").read_bytes()
    with pytest.raises(ValueError):  # counts that are not numbers fail after feats is written
        save_regions(str(tmp_path / "regions.h5"), np.zeros((4, 3, 5)), np.zeros((4, 3, 4)),
                     np.array(["one", "two", "three", "four"]))
    assert (tmp_path / "regions.h5").read_bytes() == before
    assert os.listdir(tmp_path) == ["regions.h5"]
