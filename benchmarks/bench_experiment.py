"""Wall time and table of the miniature selection experiment (issue 4).

Runs ``eas experiment selection --builtin --quick`` as a user would (a subprocess, a
fresh output folder) and prints the Table 3-style result, the wall time against the
30-minute target on 2 CPU cores, the CPU time used, the load average around the run
(other work on the machine stretches the wall time) and where the time went, from the
experiment's ``timings.json``.

Usage: python benchmarks/bench_experiment.py [--out DIR] [--keep] [-- extra eas options]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 30 * 60


def eas_command() -> list[str]:
    """The ``eas`` of this interpreter's environment (falls back to ``python -c``)."""
    script = Path(sys.executable).with_name("eas")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from eas.cli import main; sys.exit(main())"]


def breakdown(timings: dict) -> list[str]:
    """Per-step seconds, grouped by strategy (summed over seeds)."""
    by_strategy: dict[str, float] = {}
    for key, seconds in timings["runs_s"].items():
        strategy = key.split("/")[0]
        by_strategy[strategy] = by_strategy.get(strategy, 0.0) + seconds
    lines = [f"  pool scores (EAS, lengths, pass rates): {timings['pool_scores_s']:.0f} s"]
    seeds = len(timings["runs_s"]) // max(1, len(by_strategy))
    for strategy, seconds in by_strategy.items():
        lines.append(f"  {strategy}: select + train + evaluate, {seeds} seeds: {seconds:.0f} s")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="experiment folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("extra", nargs="*", help="more options for eas experiment selection (after --)")
    args = parser.parse_args()
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="eas-exp-"))
    if args.out and out.exists() and any(out.iterdir()):
        parser.error(f"{out} is not empty; the run must start from nothing to time it")

    load_before = os.getloadavg()
    started = time.monotonic()
    command = [*eas_command(), "experiment", "selection", "--builtin", "--quick", "--out", str(out), *args.extra]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    wall_s = time.monotonic() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"eas experiment failed with exit status {done.returncode}")

    print(f"eas experiment selection --builtin --quick ({os.cpu_count()} CPUs)")
    print((out / "table.md").read_text())
    cpu_s = usage.ru_utime + usage.ru_stime
    print(
        f"load average before: {load_before[0]:.2f}, after (1/5/15 min): {', '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print(f"CPU time: {cpu_s / 60:.1f} min ({100 * cpu_s / wall_s:.0f} % of one core over the run)")
    print("where the time went:")
    print("\n".join(breakdown(json.loads((out / "timings.json").read_text()))))
    print(f"wall time: {wall_s:.0f} s ({wall_s / 60:.1f} min)  wall/target={wall_s / TARGET_S:.2f} (target <= 1.00)")
    if not args.out and not args.keep:
        shutil.rmtree(out)
    else:
        print(f"results in {out}")


if __name__ == "__main__":
    main()
