"""Process-wide settings made when neuraltalk is imported: how malloc keeps freed memory,
and how long OpenBLAS's threads spin after a call. Both were measured to matter on the
2-core VM of the benchmarks; each can be turned off.

Freed memory stays in the process. A training or decoding step allocates and frees the
same large temporaries every step (logits, gates, gradients: 1 to 32 MB each). glibc's
malloc gives freed memory at the top of its heap back to the system once more than its
trim threshold is free there, and serves requests above its mmap threshold with new
mappings; either way the next step's arrays start on new pages, and the first touch of
each page is a fault (about 2 us each): `h @ Wd + bd` on (256, 256) x (256, 2538) took
5.9 ms, 1,250 faults a call, against 3.5 ms with the memory kept. So the heap keeps up
to 1 GB of freed memory, and requests up to 32 MB (the most mallopt allows) come from it;
the resident memory then stays near its peak. NEURALTALK_KEEP_HEAP=0 leaves malloc alone.

OpenBLAS's threads stop spinning soon after a call. After a threaded product OpenBLAS's
worker keeps a core busy for about 0.1 s (2^28 cycles, its default) waiting for the
next one; the project's own threads (the recurrences' sequence groups, the row chunks
of the softmax and the solver: see layers/blas.py) then share that core with it. An
LSTM forward pass at E = H = 512 took 27.6 ms alone and 45.9 ms right after a threaded
product. With OPENBLAS_THREAD_TIMEOUT=16 (2^16 cycles, some 25 us) training steps ran
10-22% faster (bench/train_speed.py). It is set unless the environment already sets it;
an OpenBLAS loaded before neuraltalk is made to reread it.
"""
import ctypes
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
TRIM_THRESHOLD = 1 << 30
MMAP_THRESHOLD = 32 << 20
THREAD_TIMEOUT = "16"  # OpenBLAS spins 2^16 cycles after a call before sleeping


def keep_freed_memory():
    """Set glibc's trim and mmap thresholds as above; True when they were set."""
    if os.environ.get("NEURALTALK_KEEP_HEAP", "1") == "0":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
                and mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def shorten_blas_spin():
    """OPENBLAS_THREAD_TIMEOUT=16 unless already set; an OpenBLAS already loaded (numpy
    imported first) rereads it. True when the setting was made."""
    if "OPENBLAS_THREAD_TIMEOUT" in os.environ:
        return False
    os.environ["OPENBLAS_THREAD_TIMEOUT"] = THREAD_TIMEOUT
    if "numpy" in sys.modules:
        from neuraltalk.layers.blas import reread_environment
        reread_environment()
    return True
