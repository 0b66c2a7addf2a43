"""Stop glibc's heap from keeping the memory of freed tensors (scoring on a CPU).

glibc serves an allocation larger than its mmap threshold with a mapping of its own,
returned to the system when freed, and a smaller one from the heap, whose freed memory
stays with the process. The threshold starts at 128 KiB but is dynamic: each mapped
block that is freed raises it to that block's size (up to 32 MiB). After the first
tensors of a forward pass are freed, tensors of a few MiB (a layer's keys, a chunk's
activations) therefore come from the heap, and that heap fragments (the sizes keep
changing: prefill segments, probe chunks, a cache that grows). Scoring one T = 4096
trace on the embedded model then peaked at 250 to 700 MiB beyond its KV cache, varying
from run to run.

A fixed threshold trades time for memory: every tensor above it is a fresh mapping
that the kernel faults in page by page. Measured with benchmarks/bench_eas.py (one run
each, 2 cores), beyond the KV cache at T = 4096 / 8000 and the time of the same trace
against the dynamic threshold: 4 MiB (the default here): 130 / 244 MiB, 1.18x; 8 MiB:
172 / 324 MiB, 1.13x; 1 MiB (before the buffered KV cache): 138 / 153 MiB, 1.24x.
``EAS_KEEP_MALLOC=1`` gives the time back where memory is plentiful (on a GPU nothing
is changed).

``fix_mmap_threshold`` fixes the threshold (``mallopt(M_MMAP_THRESHOLD, ...)``, which
also turns the dynamic rise off) for the whole process, once. It does nothing where libc
is not glibc, where the user set ``MALLOC_MMAP_THRESHOLD_`` themselves, or where
``EAS_KEEP_MALLOC=1`` asks to leave malloc alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc's malloc.h
THRESHOLD_BYTES = 4 << 20

_applied: bool | None = None


def fix_mmap_threshold(threshold: int = THRESHOLD_BYTES) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes; True when it is (now or before) in force."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if os.environ.get("EAS_KEEP_MALLOC") == "1" or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018 - only glibc has it
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _applied = mallopt(M_MMAP_THRESHOLD, threshold) == 1
    if _applied:
        log.debug("glibc mmap threshold fixed at %d bytes", threshold)
    return _applied
