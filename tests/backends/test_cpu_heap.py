"""A freed tensor of a few MiB goes back to the system once the mmap threshold is fixed (glibc)."""

import os
import subprocess
import sys

import pytest

# In a fresh process: free one 16 MiB tensor (glibc then raises its dynamic threshold to
# 16 MiB), allocate another 16 MiB tensor A and a small tensor B after it, free A, and print
# how much RSS freeing A gave back. With the dynamic threshold A comes from the heap, below
# B, and its memory stays with the process; with a fixed threshold it is a mapping of its own.
PROBE = """
import sys, torch
from eas.backends.hf.heap import fix_mmap_threshold
if sys.argv[1] == "fix":
    assert fix_mmap_threshold()
def rss():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) / 1024
n = 4 * 2**20  # float32: 16 MiB
first = torch.ones(n); del first
a = torch.ones(n)
b = torch.ones(1024)
before = rss()
del a
print(round(before - rss(), 1))
"""


def _returned_mib(mode: str) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("MALLOC_MMAP_THRESHOLD_", "EAS_KEEP_MALLOC")}
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, env=env, check=True)
    return float(out.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc and /proc are Linux's")
def test_fixed_threshold_returns_a_freed_tensor_that_the_dynamic_one_keeps():
    kept = _returned_mib("default")
    returned = _returned_mib("fix")
    assert kept < 1.0  # the dynamic threshold: the 16 MiB stay in the heap
    assert returned > 15.0  # fixed at 4 MiB (cpu_heap.THRESHOLD_BYTES): the 16 MiB mapping is unmapped


def test_keep_malloc_leaves_malloc_alone():
    code = "from eas.backends.hf.heap import fix_mmap_threshold; print(fix_mmap_threshold())"
    env = {**os.environ, "EAS_KEEP_MALLOC": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "False"
