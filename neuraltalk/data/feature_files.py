"""CNN feature files: one row of D floats per image, row `imgid`.

Formats, all with the width D read from the file:
- `.mat` MATLAB v5 (scipy.io.loadmat): key `feats`, D x N. The format can only be read
  whole; the N x D result is the transposed view of the one array scipy makes, not a copy.
- `.mat` MATLAB v7.3 (an HDF5 file): MATLAB's D x N matrix is stored as an (N, D) dataset
  (HDF5 is row-major, MATLAB column-major), so rows are read lazily.
- `.npy`: N x D. Opened with np.load(mmap_mode='r') to read its header, then rows are
  read from the file on demand with os.pread: a memory map's touched pages would stay
  resident (2 GB for COCO after one evaluation pass), pread's buffers do not.
- `.h5`: dataset `feats`, N x D, read lazily.

`load_features` returns a `FeatureRows`: `rows[idx]` reads just those rows as float32
and refuses NaN or infinite values (checking only what is read costs nothing extra), so
a COCO-sized file (123,287 x 4096 float32, 2 GB) is never held twice in memory, and in
the lazy formats not even once. `check_finite()` scans a whole file in chunks.
"""
import os

import numpy as np

from neuraltalk.atomic import atomic_write
from neuraltalk.errors import NeuralTalkError

FEATURE_FILE_NAMES = ("vgg_feats.mat", "vgg_feats.npy", "vgg_feats.h5")


class FeatureRows:
    """Row access to an (N, D) feature matrix held in memory, in a .npy file or in HDF5.

    `rows[i]` -> (D,) float32, `rows[index_array]` / `rows[a:b]` -> (len, D) float32, in the
    order asked for (repeats allowed)."""

    def __init__(self, array, path, h5file=None, sorted_reads=False):
        self._array = array
        self._h5file = h5file  # kept open while the rows are in use
        # h5py and NpyRows read increasing, unique indices only
        self._sorted_reads = sorted_reads or h5file is not None
        self.path = path
        self.shape = tuple(int(n) for n in array.shape)
        self.dtype = np.dtype(np.float32)

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, index):
        if isinstance(index, (int, np.integer)):
            return self[np.array([index])][0]
        if isinstance(index, slice):
            index = np.arange(*index.indices(self.shape[0]))
        index = np.asarray(index)
        if index.dtype == bool or index.ndim != 1 or not (index.size == 0 or
                                                         np.issubdtype(index.dtype, np.integer)):
            raise IndexError("feature rows take an int, a slice or a 1-d array of ints")
        index = index.astype(np.int64)
        n = self.shape[0]
        if index.size and (index.min() < -n or index.max() >= n):
            raise IndexError("feature row out of range of %s (%d rows)" % (self.path, n))
        index = np.where(index < 0, index + n, index)
        if not self._sorted_reads:
            rows = np.asarray(self._array[index], dtype=np.float32)
        elif index.size < 2 or (np.diff(index) > 0).all():  # no re-ordering, no extra copy
            rows = np.asarray(self._read_sorted(index), dtype=np.float32)
        else:
            unique, inverse = np.unique(index, return_inverse=True)
            rows = np.asarray(self._read_sorted(unique), dtype=np.float32)[inverse.ravel()]
        # a row's float64 sum is finite iff all its values are (it cannot overflow), and
        # costs B floats where np.isfinite(rows) would cost a (B, D) mask
        finite = np.isfinite(rows.sum(axis=1, dtype=np.float64))
        if not finite.all():
            raise NeuralTalkError(
                "%s holds NaN or infinite values (rows %s): recompute the features"
                % (self.path, ", ".join(str(b) for b in np.unique(index[~finite])[:5])))
        return rows

    def _read_sorted(self, unique):
        if unique.size == 0:
            return np.zeros((0, self.shape[1]), np.float32)
        first, last = int(unique[0]), int(unique[-1])
        if last - first + 1 == unique.size:  # one run: a slice is h5py's fastest read
            return self._array[first:last + 1]
        return self._array[unique]

    def check_finite(self, chunk_rows=4096):
        """Scan every row in chunks; raise NeuralTalkError at the first NaN or inf."""
        for start in range(0, self.shape[0], chunk_rows):
            self[start:start + chunk_rows]


class NpyRows:
    """Rows of a C-ordered 2-d .npy file, read with os.pread: indexable by a slice or by
    increasing unique row indices."""

    def __init__(self, path):
        try:
            header = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise NeuralTalkError("%s is not a valid .npy file: %s" % (path, e)) from None
        if not isinstance(header, np.memmap):
            raise NeuralTalkError("%s is not a .npy file (np.load found an archive)" % path)
        if header.ndim != 2 or header.dtype.kind not in "fiu":
            raise NeuralTalkError("%s: expected an N x D array of numbers, found shape %s, "
                                  "dtype %s" % (path, header.shape, header.dtype))
        if not header.flags.c_contiguous and header.shape[0] > 1 and header.shape[1] > 1:
            raise NeuralTalkError("%s: the array is stored in Fortran order; save it in C "
                                  "order (np.save(path, np.ascontiguousarray(feats)))" % path)
        self.shape, self.dtype, self.offset = header.shape, header.dtype, header.offset
        self.path = path
        self.row_bytes = self.shape[1] * self.dtype.itemsize
        del header  # unmaps the file

    def __getitem__(self, rows):
        if isinstance(rows, slice):
            rows = np.arange(*rows.indices(self.shape[0]))
        out = np.empty((len(rows), self.shape[1]), dtype=self.dtype)
        if not len(rows):
            return out
        # one pread per run of consecutive rows
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        starts = np.concatenate([[0], breaks])
        ends = np.concatenate([breaks, [len(rows)]])
        buffer = memoryview(out.reshape(-1).view(np.uint8))
        fd = os.open(self.path, os.O_RDONLY)
        try:
            for a, b in zip(starts.tolist(), ends.tolist()):
                # straight into `out`: no intermediate bytes object
                done, end = a * self.row_bytes, b * self.row_bytes
                offset = self.offset + int(rows[a]) * self.row_bytes - done
                while done < end:
                    got = os.preadv(fd, [buffer[done:end]], offset + done)
                    if got == 0:
                        raise NeuralTalkError("%s is truncated: row %d is past its end"
                                              % (self.path, int(rows[b - 1])))
                    done += got
        finally:
            os.close(fd)
        return out


def find_feature_file(folder):
    """The first of FEATURE_FILE_NAMES present in `folder`."""
    for name in FEATURE_FILE_NAMES:
        path = os.path.join(folder, name)
        if os.path.exists(path):
            return path
    raise NeuralTalkError(
        "no feature file in %s: expected one of %s (one row of CNN features per image, in "
        "imgid order). Make one with `python -m neuraltalk.features %s --cnn "
        "efficientnet-lite0`" % (folder, ", ".join(FEATURE_FILE_NAMES), folder))


def load_features(path):
    """Open the feature file at `path`; returns FeatureRows of shape (N, D)."""
    if not os.path.isfile(path):
        raise NeuralTalkError("feature file %s does not exist" % path)
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npy":
        return _checked(FeatureRows(NpyRows(path), path, sorted_reads=True), path, "the array")
    if ext in (".h5", ".hdf5"):
        return _load_h5(path, "feats", what="dataset 'feats'")
    if ext == ".mat":
        import h5py
        if h5py.is_hdf5(path):  # MATLAB v7.3
            return _load_h5(path, "feats",
                            what="dataset 'feats' (MATLAB's D x N, stored as N x D)")
        return _load_mat_v5(path)
    raise NeuralTalkError(
        "%s: unknown feature file type %r; use .mat (v5 or v7.3), .npy or .h5" % (path, ext))


def _checked(rows, path, what):
    if len(rows.shape) != 2 or rows.shape[0] == 0 or rows.shape[1] == 0:
        raise NeuralTalkError("%s: %s has shape %s; expected a non-empty N x D matrix"
                              % (path, what, rows.shape))
    return rows


def _load_h5(path, key, what):
    import h5py
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise NeuralTalkError("cannot open %s as HDF5: %s" % (path, e)) from None
    if key not in f or not isinstance(f[key], h5py.Dataset):
        keys = list(f.keys())
        f.close()
        raise NeuralTalkError("%s has no dataset %r (it has %s): the features must be "
                              "stored under %r" % (path, key, keys, key))
    dset = f[key]
    if dset.dtype.kind not in "fiu":
        f.close()
        raise NeuralTalkError("%s: %s holds %s, not numbers" % (path, what, dset.dtype))
    return _checked(FeatureRows(dset, path, h5file=f), path, what)


def _load_mat_v5(path):
    import scipy.io
    try:
        mat = scipy.io.loadmat(path, variable_names=["feats"])
    except Exception as e:  # scipy raises several types for a damaged file
        raise NeuralTalkError("cannot read %s as a MATLAB file: %s" % (path, e)) from None
    if "feats" not in mat:
        raise NeuralTalkError("%s has no variable 'feats' (D x N CNN features)" % path)
    feats = mat["feats"]
    if feats.ndim != 2 or feats.dtype.kind not in "fiu":
        raise NeuralTalkError("%s: 'feats' is %s of shape %s; expected a D x N matrix of "
                              "numbers" % (path, feats.dtype, feats.shape))
    return _checked(FeatureRows(feats.T, path), path, "'feats' transposed")


def save_features_mat(path, feats):
    """Write an (N, D) matrix as NeuralTalk's vgg_feats.mat (v5, key `feats`, D x N float32),
    atomically."""
    import scipy.io
    feats = np.asarray(feats, dtype=np.float32)
    if feats.ndim != 2:
        raise ValueError("save_features_mat wants an (N, D) matrix, got shape %s" % (feats.shape,))
    if feats.nbytes >= 2 ** 31:
        raise NeuralTalkError(
            "%s: %.1f GB of features do not fit a MATLAB v5 file (2 GB at most); "
            "write .npy instead" % (path, feats.nbytes / 1e9))
    def write(f):
        scipy.io.savemat(f, {"feats": feats.T}, do_compression=False)
        # the header's text says when the file was made; a fixed one makes the same
        # features the same bytes (one process or the ranks of an MPI job, any day)
        f.seek(0)
        f.write(MAT_HEADER_TEXT)
    atomic_write(path, write)


MAT_HEADER_TEXT = b"MATLAB 5.0 MAT-file, written by neuraltalk".ljust(116)  # v5: 116 bytes
