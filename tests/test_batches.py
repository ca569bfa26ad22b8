"""neuraltalk.data.batches: the padded sentence table, NeuralTalk's sampling, evaluation order."""
import numpy as np
import pytest

from neuraltalk.data.batches import SentenceTable, encode_sentences
from neuraltalk.data.dataset import load_dataset
from neuraltalk.errors import NeuralTalkError
from test_dataset import karpathy_images, write_dataset

WORDTOIX = {"#START#": 0, "a": 1, "dog": 2, "runs": 3, "cat": 4, "the": 5}


@pytest.fixture
def tiny(tmp_path):
    """Train: images 0-3 with sentences [a dog runs] / [runs dog a], [a dog sits] / ...,
    [the cat] / [cat the], [a cat runs] / [runs cat a]; feature row i = [3i, 3i+1, 3i+2]."""
    return load_dataset(write_dataset(tmp_path / "tiny"))


def test_encode_drops_unknown_words_and_pads_with_zero():
    words, lengths = encode_sentences([["a", "zebra", "dog"], [], ["dog"], ["#START#", "a"]],
                                      WORDTOIX)
    np.testing.assert_array_equal(words, [[1, 2], [0, 0], [2, 0], [1, 0]])
    np.testing.assert_array_equal(lengths, [2, 0, 1, 1])
    assert words.dtype == np.int32 and lengths.dtype == np.int32


def test_encode_keeps_one_column_when_every_sentence_is_empty():
    words, lengths = encode_sentences([["zebra"], []], WORDTOIX)
    assert words.shape == (2, 1) and (words == 0).all() and (lengths == 0).all()


def test_table_holds_every_sentence_of_the_split_grouped_by_image(tiny):
    table = SentenceTable(tiny, WORDTOIX, "train")
    assert len(table) == 8
    np.testing.assert_array_equal(table.image_ids, [0, 1, 2, 3])
    np.testing.assert_array_equal(table.counts, [2, 2, 2, 2])
    np.testing.assert_array_equal(table.offsets, [0, 2, 4, 6])
    np.testing.assert_array_equal(table.sent_image, [0, 0, 1, 1, 2, 2, 3, 3])
    np.testing.assert_array_equal(table.sent_ids, np.arange(8))
    np.testing.assert_array_equal(table.words[:4], [[1, 2, 3], [3, 2, 1], [1, 2, 0], [2, 1, 0]])
    np.testing.assert_array_equal(table.lengths, [3, 3, 2, 2, 2, 2, 3, 3])


def test_images_without_sentences_are_left_out_of_the_table(tmp_path):
    images = karpathy_images()
    images[1]["sentences"] = []
    table = SentenceTable(load_dataset(write_dataset(tmp_path / "t", images=images)),
                          WORDTOIX, "train")
    np.testing.assert_array_equal(table.image_ids, [0, 2, 3])
    np.testing.assert_array_equal(table.offsets, [0, 2, 4])


def test_a_split_without_sentences_is_an_error(tmp_path):
    images = karpathy_images()
    images[4]["sentences"] = []
    data = load_dataset(write_dataset(tmp_path / "t", images=images))
    with pytest.raises(NeuralTalkError, match="no image of the val split has sentences"):
        SentenceTable(data, WORDTOIX, "val")


def test_sampled_batch_is_padded_trimmed_and_matches_its_images(tiny):
    batch = SentenceTable(tiny, WORDTOIX, "train").sample(64, np.random.default_rng(3))
    B, T = batch.words.shape
    assert (B, T) == (64, batch.lengths.max()) and batch.feats.shape == (64, 3)
    assert batch.feats.dtype == np.float32 and batch.words.dtype == np.int32
    assert batch.lengths.dtype == np.int32 and batch.image_ids.dtype == np.int64
    real = np.arange(T) < batch.lengths[:, None]
    assert (batch.words[~real] == 0).all() and (batch.words[real] > 0).all()
    np.testing.assert_array_equal(batch.feats, 3 * batch.image_ids[:, None] + np.arange(3))
    for imgid, sentid, words, n in zip(batch.image_ids, batch.sent_ids, batch.words,
                                       batch.lengths):
        (sentence,) = [s for s in tiny.images[imgid]["sentences"] if s["sentid"] == sentid]
        kept = [WORDTOIX[w] for w in sentence["tokens"] if w in WORDTOIX]
        assert list(words[:n]) == kept


def test_batch_columns_are_trimmed_to_its_longest_sentence(tiny):
    table = SentenceTable(tiny, WORDTOIX, "train")
    assert table.words.shape[1] == 3
    batch = table.batch(np.array([2, 4, 5]))  # lengths 2, 2, 2
    assert batch.words.shape == (3, 2)
    np.testing.assert_array_equal(batch.words, [[1, 2], [5, 4], [4, 5]])


def test_the_same_seed_gives_the_same_batches(tiny):
    table = SentenceTable(tiny, WORDTOIX, "train")

    def run(seed):
        rng = np.random.default_rng(seed)
        return [table.sample(16, rng) for _ in range(5)]

    for a, b in zip(run(11), run(11)):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    assert any((a.sent_ids != b.sent_ids).any() for a, b in zip(run(11), run(12)))


def test_sampling_picks_an_image_uniformly_then_one_of_its_sentences(tmp_path):
    images = [{"imgid": 0, "split": "train",
               "sentences": [{"tokens": ["a"], "sentid": i} for i in range(9)]},
              {"imgid": 1, "split": "train", "sentences": [{"tokens": ["dog"], "sentid": 9}]}]
    data = load_dataset(write_dataset(tmp_path / "t", images=images,
                                      feats=np.ones((2, 2), np.float32)))
    batch = SentenceTable(data, WORDTOIX, "train").sample(20000, np.random.default_rng(0))
    # per image 1/2 (not 1/10 as sampling sentences would give); per sentence of image 0 1/18
    assert abs(np.mean(batch.image_ids == 1) - 0.5) < 0.015
    per_sentence = np.bincount(batch.sent_ids[batch.image_ids == 0], minlength=9) / 20000
    assert np.all(np.abs(per_sentence - 1 / 18) < 0.008)


def test_evaluation_batches_cover_every_sentence_once_in_order(tiny):
    table = SentenceTable(tiny, WORDTOIX, "train")
    batches = list(table.iter_batches(3))
    assert [len(b.sent_ids) for b in batches] == [3, 3, 2]
    np.testing.assert_array_equal(np.concatenate([b.sent_ids for b in batches]), np.arange(8))
    again = list(table.iter_batches(3))
    for a, b in zip(batches, again):
        np.testing.assert_array_equal(a.words, b.words)
    np.testing.assert_array_equal(batches[0].feats, [[0, 1, 2], [0, 1, 2], [3, 4, 5]])


def test_evaluation_can_stop_after_max_images(tiny):
    table = SentenceTable(tiny, WORDTOIX, "train")
    ids = np.concatenate([b.image_ids for b in table.iter_batches(3, max_images=2)])
    np.testing.assert_array_equal(ids, [0, 0, 1, 1])
    assert list(table.iter_batches(3, max_images=0)) == []


def test_batches_carry_their_images_regions_when_the_table_has_them(shapes_root):
    from neuraltalk.data.dataset import load_dataset
    from neuraltalk.data.regions import load_regions
    dataset = load_dataset("shapes", data_root=shapes_root)
    regions = load_regions(dataset.folder, len(dataset.images))
    table = SentenceTable(dataset, {"#START#": 0, "a": 1}, "train", regions)
    batch = table.batch(np.array([0, 7, 3]))
    feats, counts = regions.rows(batch.image_ids)
    np.testing.assert_array_equal(batch.regions, feats)
    np.testing.assert_array_equal(batch.region_counts, counts)
    assert SentenceTable(dataset, {"#START#": 0}, "train").batch(np.array([0])).regions is None
