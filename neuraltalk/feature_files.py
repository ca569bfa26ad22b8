"""CNN feature files: one row of D floats per image, row `imgid`.

Formats, all with the width D read from the file:
- `.mat` MATLAB v5 (scipy): key `feats`, D x N. Read whole (the format allows nothing
  else); the N x D result is a transposed view, not a copy.
- `.mat` MATLAB v7.3 (an HDF5 file): MATLAB's D x N matrix is stored as an (N, D) dataset
  (HDF5 is row-major, MATLAB column-major), so rows are read lazily.
- `.npy`: N x D, rows read from the file on demand (no memory map, whose touched pages
  would stay resident while streaming through a big file).
- `.h5`: dataset `feats`, N x D, read lazily.

`load_features` returns a `FeatureRows`: `rows[idx]` reads just those rows as float32
and refuses NaN or infinite values, so a COCO-sized file (123,287 x 4096 float32, 2 GB)
is never held twice in memory, and for the lazy formats not even once.
"""
import os

import numpy as np

from neuraltalk.errors import NeuralTalkError

FEATURE_FILE_NAMES = ("vgg_feats.mat", "vgg_feats.npy", "vgg_feats.h5")


class FeatureRows:
    """Row access to an (N, D) feature matrix held in memory, a memory map or HDF5."""

    def __init__(self, array, path, h5file=None, sorted_reads=False):
        self._array = array
        self._h5file = h5file  # kept open while the rows are in use
        self._sorted_reads = sorted_reads or h5file is not None
        self.path = path
        self.shape = tuple(int(n) for n in array.shape)

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, index):
        if isinstance(index, (int, np.integer)):
            return self[np.array([index])][0]
        if isinstance(index, slice):
            index = np.arange(*index.indices(self.shape[0]))
        index = np.asarray(index, dtype=np.int64)
        if index.size and (index.min() < -self.shape[0] or index.max() >= self.shape[0]):
            raise IndexError("feature row out of range of %s (%d rows)" % (self.path, self.shape[0]))
        index = np.where(index < 0, index + self.shape[0], index)
        if self._sorted_reads:
            # h5py (and NpyRows) read increasing, unique indices: read those, then re-order
            unique, inverse = np.unique(index, return_inverse=True)
            rows = self._array[unique] if unique.size else np.zeros((0, self.shape[1]))
            rows = np.asarray(rows, dtype=np.float32)[inverse.ravel()]
        else:
            rows = np.asarray(self._array[index], dtype=np.float32)
        if not np.isfinite(rows).all():
            bad = index[~np.isfinite(rows).all(axis=1)]
            raise NeuralTalkError(
                "%s holds NaN or infinite values (rows %s): recompute the features"
                % (self.path, ", ".join(str(b) for b in bad[:5])))
        return rows

    def check_finite(self, chunk_rows=4096):
        """Scan every row in chunks; raise NeuralTalkError at the first NaN or inf."""
        for start in range(0, self.shape[0], chunk_rows):
            self[np.arange(start, min(start + chunk_rows, self.shape[0]))]


class NpyRows:
    """Rows of a C-ordered 2-d .npy file, read with os.pread: (N, D) indexable by sorted rows."""

    def __init__(self, path):
        try:
            with open(path, "rb") as f:
                version = np.lib.format.read_magic(f)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, fortran, dtype = read_header(f)
                self.offset = f.tell()
        except (ValueError, OSError) as e:
            raise NeuralTalkError("%s is not a valid .npy file: %s" % (path, e)) from None
        if fortran or len(shape) != 2:
            raise NeuralTalkError("%s: expected a C-ordered N x D array, found shape %s%s"
                                  % (path, shape, " in Fortran order" if fortran else ""))
        self.shape, self.dtype, self.path = shape, dtype, path
        self.row_bytes = shape[1] * dtype.itemsize

    def __getitem__(self, rows):
        """rows: increasing unique indices. Reads each run of consecutive rows at once."""
        out = np.empty((len(rows), self.shape[1]), dtype=self.dtype)
        if not len(rows):
            return out
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        fd = os.open(self.path, os.O_RDONLY)
        try:
            for run in np.split(np.arange(len(rows)), breaks):
                first, count = int(rows[run[0]]), len(run)
                data = os.pread(fd, count * self.row_bytes, self.offset + first * self.row_bytes)
                out[run[0]:run[0] + count] = np.frombuffer(data, self.dtype).reshape(count, -1)
        finally:
            os.close(fd)
        return out


def find_feature_file(folder):
    for name in FEATURE_FILE_NAMES:
        path = os.path.join(folder, name)
        if os.path.exists(path):
            return path
    raise NeuralTalkError(
        "no feature file in %s: expected one of %s (one row of CNN features per image). "
        "Make one with `python -m neuraltalk.features %s --cnn efficientnet-lite0`"
        % (folder, ", ".join(FEATURE_FILE_NAMES), folder))


def load_features(path):
    """Open the feature file at `path`; returns FeatureRows of shape (N, D)."""
    if not os.path.exists(path):
        raise NeuralTalkError("feature file %s does not exist" % path)
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npy":
        return _checked(FeatureRows(NpyRows(path), path, sorted_reads=True), path, "the array")
    if ext in (".h5", ".hdf5"):
        return _load_h5(path, "feats", transpose_note="")
    if ext == ".mat":
        import h5py
        if h5py.is_hdf5(path):  # MATLAB v7.3
            return _load_h5(path, "feats", transpose_note=" (MATLAB D x N appears as N x D)")
        return _load_mat_v5(path)
    raise NeuralTalkError(
        "%s: unknown feature file type %r; use .mat (v5 or v7.3), .npy or .h5" % (path, ext))


def _checked(rows, path, what):
    if len(rows.shape) != 2 or rows.shape[0] == 0 or rows.shape[1] == 0:
        raise NeuralTalkError("%s: %s has shape %s; expected a non-empty N x D matrix"
                              % (path, what, rows.shape))
    return rows


def _load_h5(path, key, transpose_note):
    import h5py
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise NeuralTalkError("cannot open %s as HDF5: %s" % (path, e)) from None
    if key not in f:
        keys = list(f.keys())
        f.close()
        raise NeuralTalkError("%s has no dataset %r (it has %s)" % (path, key, keys))
    return _checked(FeatureRows(f[key], path, h5file=f), path, "dataset %r%s" % (key, transpose_note))


def _load_mat_v5(path):
    import scipy.io
    try:
        mat = scipy.io.loadmat(path, variable_names=["feats"])
    except Exception as e:  # scipy raises several types for a damaged file
        raise NeuralTalkError("cannot read %s as a MATLAB file: %s" % (path, e)) from None
    if "feats" not in mat:
        raise NeuralTalkError("%s has no variable 'feats' (D x N CNN features)" % path)
    feats = mat["feats"]
    if feats.ndim != 2:
        raise NeuralTalkError("%s: 'feats' has shape %s; expected D x N" % (path, feats.shape))
    return _checked(FeatureRows(feats.T, path), path, "'feats' transposed")


def save_features_mat(path, feats):
    """Write an (N, D) matrix as NeuralTalk's vgg_feats.mat (v5, key `feats`, D x N float32)."""
    import scipy.io
    feats = np.asarray(feats, dtype=np.float32)
    if feats.nbytes >= 2 ** 31:
        raise NeuralTalkError(
            "%s: %.1f GB of features do not fit a MATLAB v5 file (2 GB at most); "
            "write .npy instead" % (path, feats.nbytes / 1e9))
    tmp = path + ".tmp"
    scipy.io.savemat(tmp, {"feats": feats.T}, appendmat=False, do_compression=False)
    os.replace(tmp, path)
