"""Captions from a trained generator: greedy and beam decoding, captioning a folder of
images, evaluating a split, and the result pages."""
