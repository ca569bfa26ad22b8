"""neuraltalk: Deep Visual-Semantic Alignments for Generating Image Descriptions, in NumPy."""

__version__ = "0.1.0"
