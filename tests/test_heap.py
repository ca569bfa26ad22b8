"""neuraltalk/heap.py: freed memory stays in the process, so a step's temporaries reuse it."""
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
    from neuraltalk.heap import keep_freed_memory
    monkeypatch.setenv("NEURALTALK_KEEP_HEAP", "0")
    assert keep_freed_memory() is False
