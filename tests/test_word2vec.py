import numpy as np
import pytest

from neuraltalk.errors import NeuralTalkError
from neuraltalk.data.word2vec import read_word2vec, vectors_for_vocabulary

VECS = {"dog": [0.5, -1.0, 2.0], "cat": [1.0, 0.0, -0.25], "é": [3.0, 3.0, 3.0]}


def _binary(path):
    with open(path, "wb") as f:
        f.write(b"3 3\n")
        for w, v in VECS.items():
            f.write(w.encode() + b" " + np.array(v, "<f4").tobytes() + b"\n")


def _text(path, header=True):
    with open(path, "w", encoding="utf-8") as f:
        if header:
            f.write("3 3\n")
        for w, v in VECS.items():
            f.write(w + " " + " ".join(str(x) for x in v) + "\n")


@pytest.mark.parametrize("writer", [_binary, _text, lambda p: _text(p, header=False)],
                         ids=["binary", "text", "text-no-header"])
def test_reads_both_word2vec_formats(tmp_path, writer):
    path = str(tmp_path / "vectors")
    writer(path)
    vectors = read_word2vec(path)
    assert set(vectors) == set(VECS)
    for w, v in VECS.items():
        np.testing.assert_array_equal(vectors[w], np.array(v, np.float32))


def test_vocabulary_rows_come_from_the_file_or_stay_random(tmp_path):
    path = str(tmp_path / "v.bin")
    _binary(path)
    table = vectors_for_vocabulary(path, {0: ".", 1: "dog", 2: "zebra"}, 3,
                                   np.random.default_rng(0))
    np.testing.assert_array_equal(table[1], VECS["dog"])
    assert table.shape == (3, 3) and not np.allclose(table[2], 0)


def test_wrong_size_and_truncated_file(tmp_path):
    path = str(tmp_path / "v.bin")
    _binary(path)
    with pytest.raises(NeuralTalkError, match="3-d vectors but --word_vector_size is 300"):
        vectors_for_vocabulary(path, {0: ".", 1: "dog"}, 300, np.random.default_rng(0))
    data = open(path, "rb").read()
    open(path, "wb").write(data[:20])
    with pytest.raises(NeuralTalkError, match="ends"):
        read_word2vec(path)
