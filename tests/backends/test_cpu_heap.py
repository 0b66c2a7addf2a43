"""glibc's mmap threshold: fixed in a scoring process only, never over the user's own setting.

A freed tensor of a few MiB goes back to the system once the threshold is fixed; with
glibc's dynamic threshold it stays in the heap. The threshold cannot be set back to
dynamic, so only a process that exists to score (the CLI's scoring commands, a Ray
scoring actor, the benchmarks) fixes it; a library caller's process is left alone.
"""

import os
import subprocess
import sys

import pytest

# In a fresh process: set things up as ``sys.argv[1]`` says, then free one 16 MiB tensor
# (glibc then raises its dynamic threshold to 16 MiB), allocate another 16 MiB tensor A and
# a small tensor B after it, free A, and print how much RSS freeing A gave back. With the
# dynamic threshold A comes from the heap, below B, and its memory stays with the process;
# with a fixed threshold it is a mapping of its own.
PROBE = """
import sys, torch
from eas.backends.hf import heap
mode = sys.argv[1]
if mode == "fix":
    assert heap.fix_mmap_threshold()
if mode in ("library", "scoring"):  # an HFBackend on a CPU, in a process that did / did not claim
    from eas.backends.hf.backend import HFBackend
    from eas.testing.models import make_tiny_llama
    if mode == "scoring":
        heap.claim_for_scoring()
    HFBackend(make_tiny_llama(64), None)
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
USER_KEYS = ("MALLOC_MMAP_THRESHOLD_", "EAS_KEEP_MALLOC", "GLIBC_TUNABLES")


def _env(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if k not in USER_KEYS}, **extra}


def _returned_mib(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, env=_env(), check=True)
    return float(out.stdout.split()[-1])


linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc and /proc are Linux's")


@linux
def test_fixed_threshold_returns_a_freed_tensor_that_the_dynamic_one_keeps():
    kept = _returned_mib("default")
    returned = _returned_mib("fix")
    assert kept < 1.0  # the dynamic threshold: the 16 MiB stay in the heap
    assert returned > 15.0  # fixed at 4 MiB (heap.THRESHOLD_BYTES): the 16 MiB mapping is unmapped


@linux
def test_a_cpu_backend_fixes_it_in_a_scoring_process_only():
    assert _returned_mib("library") < 1.0  # a library caller's malloc is left as it was
    assert _returned_mib("scoring") > 15.0  # the same backend in a process that exists to score


def _fix_under(**env: str) -> str:
    code = "from eas.backends.hf.heap import fix_mmap_threshold; print(fix_mmap_threshold())"
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_env(**env), check=True
    ).stdout.strip()


def test_the_users_own_setting_and_keep_malloc_are_honoured():
    assert _fix_under(EAS_KEEP_MALLOC="1") == "False"
    assert _fix_under(MALLOC_MMAP_THRESHOLD_="262144") == "False"
    assert _fix_under(GLIBC_TUNABLES="glibc.malloc.mmap_threshold=262144") == "False"
    assert _fix_under(GLIBC_TUNABLES="glibc.malloc.trim_threshold=1:glibc.malloc.mmap_threshold=262144") == "False"
    if sys.platform.startswith("linux"):
        assert _fix_under(GLIBC_TUNABLES="glibc.malloc.trim_threshold=262144") == "True"  # another tunable


def test_the_cli_claims_its_process_for_scoring_commands_only(tmp_path):
    code = """
import sys
from eas.backends.hf import heap
from eas.cli import main
main(sys.argv[1:])
print(heap._scoring_process)
"""
    missing = str(tmp_path / "missing.jsonl")
    for argv, claimed in (
        (["score", missing, "--out", str(tmp_path / "s.jsonl")], "True"),
        (["train", missing, "--out", str(tmp_path / "run")], "False"),
        (["view", missing, "--out", str(tmp_path / "v.html")], "False"),
    ):
        out = subprocess.run(
            [sys.executable, "-c", code, *argv], capture_output=True, text=True, env=_env(), check=True
        )
        assert out.stdout.strip().splitlines()[-1] == claimed, (argv, out.stderr)
