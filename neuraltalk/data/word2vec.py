"""Word vectors from a word2vec file, to initialise the alignment model's x_t = Ww 1_t.

Both of word2vec's formats: binary (a "V dim" header line, then each word, a space and
dim little-endian float32s, perhaps a newline) and text (an optional "V dim" header,
then "word v1 ... v_dim" lines). Vocabulary words missing from the file keep a random
vector.
"""
import numpy as np

from neuraltalk.errors import NeuralTalkError


def read_word2vec(path, wanted=None):
    """dict word -> vector (float32) of the words in `wanted` (all words if None)."""
    try:
        with open(path, "rb") as f:
            head = f.readline()
            parts = head.split()
            is_header = len(parts) == 2 and all(p.isdigit() for p in parts)
            binary = is_header and _looks_binary(f)
            if binary:
                return _read_binary(f, int(parts[0]), int(parts[1]), wanted, path)
        return _read_text(path, wanted, skip_header=is_header)
    except OSError as e:
        raise NeuralTalkError("cannot read word vectors %s: %s" % (path, e.strerror)) from None


def _looks_binary(f):
    position = f.tell()
    sample = f.read(4096)
    f.seek(position)
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _read_binary(f, count, dim, wanted, path):
    vectors = {}
    for _ in range(count):
        word = bytearray()
        while True:
            ch = f.read(1)
            if not ch:
                raise NeuralTalkError("%s ends early: the header promised %d words" % (path, count))
            if ch == b" ":
                break
            if ch != b"\n":
                word += ch
        data = f.read(4 * dim)
        if len(data) != 4 * dim:
            raise NeuralTalkError("%s ends inside the vector of %r" % (path, word.decode(errors="replace")))
        w = word.decode("utf-8", errors="replace")
        if wanted is None or w in wanted:
            vectors[w] = np.frombuffer(data, dtype="<f4").astype(np.float32)
    return vectors


def _read_text(path, wanted, skip_header):
    vectors = {}
    dim = None
    with open(path, encoding="utf-8", errors="replace") as f:
        if skip_header:
            f.readline()
        for n, line in enumerate(f, 2 if skip_header else 1):
            parts = line.rstrip().split(" ")
            if len(parts) < 2:
                continue
            if dim is None:
                dim = len(parts) - 1
            if len(parts) - 1 != dim:
                raise NeuralTalkError("%s line %d has %d numbers, earlier lines %d"
                                      % (path, n, len(parts) - 1, dim))
            if wanted is None or parts[0] in wanted:
                try:
                    vectors[parts[0]] = np.array(parts[1:], dtype=np.float32)
                except ValueError:
                    raise NeuralTalkError("%s line %d is not a word and numbers" % (path, n)) from None
    return vectors


def vectors_for_vocabulary(path, ixtoword, size, rng):
    """(V, size) word vectors in vocabulary order; rows the file lacks are random."""
    vectors = read_word2vec(path, set(ixtoword.values()))
    if vectors:
        dim = len(next(iter(vectors.values())))
        if dim != size:
            raise NeuralTalkError("%s holds %d-d vectors but --word_vector_size is %d"
                                  % (path, dim, size))
    table = ((rng.random((len(ixtoword), size)) * 2 - 1) * 0.5).astype(np.float32)
    found = 0
    for ix, word in ixtoword.items():
        if word in vectors:
            table[ix] = vectors[word]
            found += 1
    print("word vectors: %d of %d vocabulary words found in %s" % (found, len(ixtoword), path))
    return table
