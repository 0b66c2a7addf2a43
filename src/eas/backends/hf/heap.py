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
also turns the dynamic rise off) once. glibc cannot turn the dynamic rise back on, so
the change cannot be undone after scoring: it is made only in a process that exists to
score, which says so with ``claim_for_scoring()`` (the CLI's scoring commands, a Ray
scoring actor, the benchmarks); ``HFBackend`` on a CPU then calls ``fix_for_scoring``.
A library caller's process (a notebook, a training script, ``eas experiment``, which
trains after it scores) is left alone unless it calls ``fix_mmap_threshold`` itself.
Nothing is changed where libc is not glibc, where the user set the threshold
themselves (``MALLOC_MMAP_THRESHOLD_``, or ``glibc.malloc.mmap_threshold`` in
``GLIBC_TUNABLES``), or where ``EAS_KEEP_MALLOC=1`` asks to leave malloc alone.
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
_scoring_process = False


def claim_for_scoring() -> None:
    """Declare this process a scoring process: ``HFBackend`` on a CPU may then fix the threshold."""
    global _scoring_process
    _scoring_process = True


def fix_for_scoring() -> bool:
    """``fix_mmap_threshold()`` in a process that ``claim_for_scoring`` claimed; False elsewhere."""
    return _scoring_process and fix_mmap_threshold()


def user_threshold() -> str | None:
    """How the user set glibc's mmap threshold for this process, if they did."""
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return "MALLOC_MMAP_THRESHOLD_"
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    if any(t.split("=", 1)[0].strip() == "glibc.malloc.mmap_threshold" for t in tunables.split(":")):
        return "GLIBC_TUNABLES=glibc.malloc.mmap_threshold"
    return None


def fix_mmap_threshold(threshold: int = THRESHOLD_BYTES) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes for the rest of the process; True
    when it is (now or before) in force. Only for a process that exists to score (see the
    module docstring)."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if os.environ.get("EAS_KEEP_MALLOC") == "1":
        return False
    if user_threshold():
        log.debug("glibc mmap threshold left as the user set it (%s)", user_threshold())
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
