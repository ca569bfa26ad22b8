"""neuraltalk: Deep Visual-Semantic Alignments for Generating Image Descriptions, in NumPy."""
from neuraltalk.heap import keep_freed_memory

__version__ = "0.1.0"
keep_freed_memory()  # before the first large array (see heap.py)
