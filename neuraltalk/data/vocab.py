"""The vocabulary, built as NeuralTalk's preProBuildWordVocab builds it.

Words seen at least `word_count_threshold` times in the training sentences get an
index from 1 up, in order of first appearance; index 0 is START as an input
('#START#') and END as an output ('.'). The bias vector initialises the decoder bias
`bd` to the log of each word's frequency (END counted once per sentence), shifted so
its largest entry is 0.
"""
import numpy as np


def build_vocab(token_lists, word_count_threshold):
    """token_lists: iterable of token lists. Returns (wordtoix, ixtoword, bias_init_vector (V,))."""
    counts = {}
    n_sentences = 0
    for tokens in token_lists:
        n_sentences += 1
        for w in tokens:
            counts[w] = counts.get(w, 0) + 1
    vocab = [w for w in counts if counts[w] >= word_count_threshold]
    ixtoword = {0: "."}
    wordtoix = {"#START#": 0}
    for ix, w in enumerate(vocab, start=1):
        wordtoix[w] = ix
        ixtoword[ix] = w
    counts["."] = n_sentences
    bias = np.array([counts[ixtoword[i]] for i in range(len(ixtoword))], dtype=np.float64)
    bias /= bias.sum()
    bias = np.log(bias)
    bias -= bias.max()
    return wordtoix, ixtoword, bias
