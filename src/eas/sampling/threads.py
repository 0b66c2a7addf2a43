"""CPU threads of the sampling commands: idle OpenMP threads sleep instead of spinning."""

from __future__ import annotations

import os
import sys


def passive_openmp() -> None:
    """Let idle OpenMP threads sleep instead of spin (unless the user chose otherwise).

    On cores shared with other processes, spinning threads stall each other: a 64x576 by
    576x1536 matmul took 20 ms with two spinning threads under load and 1.4 ms with
    passive ones. It only takes effect when called before torch is first imported.
    """
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
