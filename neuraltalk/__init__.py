"""neuraltalk: Deep Visual-Semantic Alignments for Generating Image Descriptions, in NumPy."""
from neuraltalk.runtime import keep_freed_memory, shorten_blas_spin

__version__ = "0.1.0"
keep_freed_memory()  # before the first large array, and before numpy's OpenBLAS loads,
shorten_blas_spin()  # where it can (see runtime.py)
