"""neuraltalk.data.feature_files: MATLAB v5 and v7.3 .mat, .npy and .h5 feature rows."""
import os

import h5py
import numpy as np
import pytest
import scipy.io

from neuraltalk.errors import NeuralTalkError
from neuraltalk.data.feature_files import NpyRows, load_features, save_features_mat

MATLAB_73_HEADER = (b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 "
                    b"2024 HDF5 schema 1.00 .")


def write_v73(path, feats_nd):
    """A MATLAB v7.3 file as MATLAB writes `save -v7.3 f.mat feats` of a D x N matrix: HDF5
    behind a 512-byte userblock that starts with MATLAB's header text, the column-major
    D x N matrix stored as a row-major (N, D) dataset."""
    with h5py.File(path, "w", userblock_size=512) as f:
        dset = f.create_dataset("feats", data=feats_nd, chunks=(2, feats_nd.shape[1]),
                                compression="gzip")
        dset.attrs["MATLAB_class"] = np.bytes_("single")
    with open(path, "r+b") as f:
        f.write(MATLAB_73_HEADER.ljust(116) + b"\x00" * 8 + b"\x00\x02IM")


def write_format(tmp_path, fmt, feats):
    if fmt == "v5":
        path = str(tmp_path / "f.mat")
        scipy.io.savemat(path, {"feats": feats.T})
    elif fmt == "v7.3":
        path = str(tmp_path / "f.mat")
        write_v73(path, feats)
    elif fmt == "npy":
        path = str(tmp_path / "f.npy")
        np.save(path, feats)
    else:
        path = str(tmp_path / "f.h5")
        with h5py.File(path, "w") as f:
            f["feats"] = feats
    return path


FORMATS = ["v5", "v7.3", "npy", "h5"]


# ---- the real file -----------------------------------------------------------------------

def test_real_matlab_v5_file_loads_as_a_view_of_scipys_array(example_images):
    path = os.path.join(example_images, "vgg_feats.mat")
    raw = scipy.io.loadmat(path)["feats"]
    rows = load_features(path)
    assert raw.shape == (4096, 16) and rows.shape == (16, 4096) and len(rows) == 16
    np.testing.assert_array_equal(rows[np.arange(16)], raw.T)
    assert rows[[3, 0]].dtype == np.float32
    # the N x D matrix is the transpose of scipy's D x N array, not a copy of it
    held = rows._array
    root = held
    while isinstance(root.base, np.ndarray):
        root = root.base
    assert not held.flags.owndata and root.nbytes == held.nbytes == 16 * 4096 * 4


# ---- every format ------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_gives_the_same_rows_in_the_order_asked(tmp_path, fmt):
    feats = np.random.default_rng(0).normal(size=(9, 5)).astype(np.float32)
    rows = load_features(write_format(tmp_path, fmt, feats))
    assert rows.shape == (9, 5)
    index = np.array([4, 1, 4, 8, 0])  # unsorted, repeated: h5py alone refuses this
    got = rows[index]
    assert got.dtype == np.float32 and got.shape == (5, 5)
    np.testing.assert_array_equal(got, feats[index])
    np.testing.assert_array_equal(rows[2], feats[2])
    np.testing.assert_array_equal(rows[-1], feats[8])
    np.testing.assert_array_equal(rows[3:7], feats[3:7])
    np.testing.assert_array_equal(rows[[2, 3, 4, 5]], feats[2:6])  # one run of rows
    assert rows[np.array([], dtype=np.int64)].shape == (0, 5)
    with pytest.raises(IndexError, match="out of range"):
        rows[np.array([0, 9])]


def test_v73_file_is_the_hdf5_kind_scipy_cannot_read(tmp_path):
    path = write_format(tmp_path, "v7.3", np.ones((3, 2), np.float32))
    with open(path, "rb") as f:
        assert f.read(19) == b"MATLAB 7.3 MAT-file"
    with pytest.raises(NotImplementedError):
        scipy.io.loadmat(path)
    assert load_features(path).shape == (3, 2)


def test_v73_rows_are_read_lazily_from_the_open_file(tmp_path):
    rows = load_features(write_format(tmp_path, "v7.3", np.ones((3, 2), np.float32)))
    assert isinstance(rows._array, h5py.Dataset) and rows._h5file.id.valid


def test_npy_rows_are_read_from_the_file_when_asked_for(tmp_path):
    feats = np.arange(400, dtype=np.float32).reshape(100, 4)
    path = str(tmp_path / "f.npy")
    np.save(path, feats)
    rows = load_features(path)
    # change row 50 on disk after opening: a loaded copy would not see it
    offset = os.path.getsize(path) - feats.nbytes + 50 * 16
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(np.full(4, -1.0, np.float32).tobytes())
    np.testing.assert_array_equal(rows[np.array([49, 50, 99])],
                                  [feats[49], [-1, -1, -1, -1], feats[99]])


def test_npy_of_float64_reads_as_float32(tmp_path):
    np.save(tmp_path / "f.npy", np.full((2, 3), 0.1))
    got = load_features(str(tmp_path / "f.npy"))[[1]]
    assert got.dtype == np.float32 and np.allclose(got, 0.1)


def test_npy_reads_of_scattered_rows_come_in_runs(tmp_path):
    feats = np.arange(60, dtype=np.float32).reshape(20, 3)
    np.save(tmp_path / "f.npy", feats)
    raw = NpyRows(str(tmp_path / "f.npy"))
    rows = np.array([0, 1, 2, 7, 9, 10, 19])
    np.testing.assert_array_equal(raw[rows], feats[rows])
    np.testing.assert_array_equal(raw[5:8], feats[5:8])


def test_save_features_mat_writes_neuraltalks_layout(tmp_path):
    feats = np.random.default_rng(1).normal(size=(6, 4))
    path = str(tmp_path / "out" / "vgg_feats.mat")
    save_features_mat(path, feats)
    raw = scipy.io.loadmat(path)["feats"]
    assert raw.shape == (4, 6) and raw.dtype == np.float32
    np.testing.assert_array_equal(raw, feats.T.astype(np.float32))
    np.testing.assert_array_equal(load_features(path)[np.arange(6)], feats.astype(np.float32))
    assert os.listdir(str(tmp_path / "out")) == ["vgg_feats.mat"]


# ---- bad files ---------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_features_are_refused_when_read(tmp_path, fmt, bad):
    feats = np.ones((40, 3), np.float32)
    feats[21, 1] = bad
    path = write_format(tmp_path, fmt, feats)
    rows = load_features(path)
    rows[[0, 1, 39]]  # clean rows read fine
    with pytest.raises(NeuralTalkError) as e:
        rows[[1, 21, 21]]
    assert str(e.value) == ("%s holds NaN or infinite values (rows 21): recompute the "
                            "features" % path)
    with pytest.raises(NeuralTalkError, match="rows 21"):
        rows.check_finite(chunk_rows=8)


def test_check_finite_passes_a_clean_file(tmp_path):
    rows = load_features(write_format(tmp_path, "npy", np.ones((10, 2), np.float32)))
    rows.check_finite(chunk_rows=3)


def test_missing_file_and_unknown_extension(tmp_path):
    with pytest.raises(NeuralTalkError, match="feature file .*nope.npy does not exist"):
        load_features(str(tmp_path / "nope.npy"))
    (tmp_path / "x.csv").write_text("1,2")
    with pytest.raises(NeuralTalkError, match="unknown feature file type '.csv'; use .mat"):
        load_features(str(tmp_path / "x.csv"))


def test_files_without_feats(tmp_path):
    scipy.io.savemat(str(tmp_path / "x.mat"), {"other": np.ones((2, 2))})
    with pytest.raises(NeuralTalkError, match="x.mat has no variable 'feats'"):
        load_features(str(tmp_path / "x.mat"))
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f["features"] = np.ones((2, 2))
    with pytest.raises(NeuralTalkError, match=r"x.h5 has no dataset 'feats' \(it has \['features'\]\)"):
        load_features(str(tmp_path / "x.h5"))


def test_damaged_files(tmp_path):
    (tmp_path / "x.mat").write_bytes(b"not a mat file at all" * 10)
    with pytest.raises(NeuralTalkError, match="cannot read .*x.mat as a MATLAB file"):
        load_features(str(tmp_path / "x.mat"))
    (tmp_path / "x.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(NeuralTalkError, match="x.npy is not a valid .npy file"):
        load_features(str(tmp_path / "x.npy"))
    np.save(tmp_path / "y.npy", np.ones((10, 4), np.float32))
    with open(tmp_path / "y.npy", "r+b") as f:
        f.truncate(os.path.getsize(tmp_path / "y.npy") - 16)
    with pytest.raises(NeuralTalkError, match="y.npy is not a valid .npy file"):
        load_features(str(tmp_path / "y.npy"))
    (tmp_path / "x.h5").write_bytes(b"no hdf5 here")
    with pytest.raises(NeuralTalkError, match="cannot open .*x.h5 as HDF5"):
        load_features(str(tmp_path / "x.h5"))


def test_wrong_shapes_are_refused(tmp_path):
    np.save(tmp_path / "x.npy", np.ones(5, np.float32))
    with pytest.raises(NeuralTalkError, match="expected an N x D array of numbers"):
        load_features(str(tmp_path / "x.npy"))
    np.save(tmp_path / "x.npy", np.asfortranarray(np.ones((3, 4), np.float32)))
    with pytest.raises(NeuralTalkError, match="Fortran order"):
        load_features(str(tmp_path / "x.npy"))
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f["feats"] = np.ones((0, 4), np.float32)
    with pytest.raises(NeuralTalkError, match=r"shape \(0, 4\); expected a non-empty N x D"):
        load_features(str(tmp_path / "x.h5"))


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_save_features_mat_new_file_gets_the_mode_the_umask_gives(tmp_path, umask_022):
    path = tmp_path / "vgg_feats.mat"
    save_features_mat(str(path), np.ones((3, 2)))
    assert oct(os.stat(path).st_mode & 0o7777) == "0o644"


def test_save_features_mat_rewritten_file_keeps_its_mode(tmp_path, umask_022):
    path = tmp_path / "vgg_feats.mat"
    save_features_mat(str(path), np.ones((3, 2)))
    path.chmod(0o640)
    save_features_mat(str(path), np.zeros((3, 2)))
    assert oct(os.stat(path).st_mode & 0o7777) == "0o640"
    np.testing.assert_array_equal(load_features(str(path))[0:3], np.zeros((3, 2)))


def test_failed_save_features_mat_keeps_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "vgg_feats.mat"
    save_features_mat(str(path), np.ones((3, 2)))
    before = path.read_bytes()

    savemat = scipy.io.savemat

    def savemat_then_disk_full(*args, **kwargs):
        savemat(*args, **kwargs)
        raise OSError("disk full")
    monkeypatch.setattr(scipy.io, "savemat", savemat_then_disk_full)
    with pytest.raises(OSError, match="disk full"):
        save_features_mat(str(path), np.zeros((3, 2)))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["vgg_feats.mat"]
