"""The data layer: Karpathy's dataset.json, feature files (.mat v5/v7.3, .npy, .h5), the
alignment model's regions.h5, the vocabulary, sentence tables and batches, word2vec
vectors, and prepare (raw captions -> dataset.json)."""
