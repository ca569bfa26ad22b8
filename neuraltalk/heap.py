"""Keep freed memory in the process for the next batch instead of handing it back to the OS.

A training or decoding step allocates and frees the same large temporaries every step
(logits, gates, gradients: 1 to 32 MB each). glibc's malloc gives freed memory at the top
of its heap back to the system once more than its trim threshold is free there, and
serves requests above its mmap threshold with new mappings; either way the next step's
arrays start on new pages, and the first touch of each page is a fault. On the 2-core VM
of the benchmarks a fault cost about 2 us: `h @ Wd + bd` on (256, 256) x (256, 2538) took
5.9 ms, 1,250 faults a call, against 3.5 ms with the memory kept, and training steps ran
3-11% faster (bench/train_speed.py).

So importing neuraltalk raises both thresholds (glibc's mallopt): the heap keeps up to
1 GB of freed memory, and requests up to 32 MB (the most mallopt allows) come from it.
The process's resident memory then stays near its peak. Elsewhere than glibc this does
nothing; NEURALTALK_KEEP_HEAP=0 leaves malloc as it is.
"""
import ctypes
import os

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
TRIM_THRESHOLD = 1 << 30
MMAP_THRESHOLD = 32 << 20


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
