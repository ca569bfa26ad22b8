"""neuraltalk/runtime.py: freed memory stays in the process, and OpenBLAS threads stop spinning soon."""
import os
import subprocess
import sys

import pytest

PROBE = """
import resource, numpy as np
import neuraltalk
a = np.ones((256, 2538), np.float32)
def step():  # two live temporaries of 2.6 MB each, freed together: what `h @ Wd + bd` does
    b = a * 2
    c = b + 1
    return float(c[0, 0])
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(keep):
    env = dict(os.environ, NEURALTALK_KEEP_HEAP="1" if keep else "0")
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                         text=True, check=True)
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_temporaries_are_reused_without_page_faults():
    kept, given_back = _faults(True), _faults(False)
    # 20 steps x 2 arrays x 635 pages when the memory goes back to the system each time
    assert given_back > 10000
    assert kept < 500


def test_the_setting_can_be_left_off(monkeypatch):
    from neuraltalk.runtime import keep_freed_memory
    monkeypatch.setenv("NEURALTALK_KEEP_HEAP", "0")
    assert keep_freed_memory() is False


SPIN_PROBE = """
import os, sys, time
import numpy as np
if sys.argv[1] == "after":
    import neuraltalk  # noqa: F401  (numpy's OpenBLAS already loaded)
a = np.ones((1024, 1024), np.float32)
def ticks():  # CPU ticks of every thread but this one
    me = str(os.getpid())
    return sum(int(open("/proc/self/task/%s/stat" % t).read().rsplit(")", 1)[1].split()[11])
               for t in os.listdir("/proc/self/task") if t != me)
spun = 0
for _ in range(3):
    a @ a  # threaded: its worker then waits for the next call
    before = ticks()
    time.sleep(0.15)
    spun += ticks() - before
print(spun)
"""


def _spin_ticks(order, timeout=None):
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    env.update(OPENBLAS_NUM_THREADS="2")
    if timeout:
        env["OPENBLAS_THREAD_TIMEOUT"] = timeout
    out = subprocess.run([sys.executable, "-c", SPIN_PROBE, order], env=env,
                         capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1])


@pytest.mark.skipif((os.cpu_count() or 1) < 2 or not sys.platform.startswith("linux"),
                    reason="OpenBLAS threads on Linux")
def test_openblas_threads_stop_spinning_even_when_numpy_was_imported_first():
    from neuraltalk.layers.blas import _library
    if _library() is None:
        pytest.skip("numpy's BLAS is not OpenBLAS")
    spinning = _spin_ticks("without", timeout="28")  # OpenBLAS's default: ~0.1 s a call
    assert spinning >= 10
    assert _spin_ticks("after") <= 3


def test_a_timeout_of_the_users_own_is_kept(monkeypatch):
    from neuraltalk.runtime import shorten_blas_spin
    monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", "25")
    assert shorten_blas_spin() is False
    assert os.environ["OPENBLAS_THREAD_TIMEOUT"] == "25"
