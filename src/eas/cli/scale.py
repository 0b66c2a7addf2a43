"""Command-line commands of the scale-out topic: ``eas topk-stats``.

(``eas score --backend openai`` and ``--engine ray`` are options of ``eas score``.)
"""

from __future__ import annotations

import argparse


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "topk-stats",
        help="how much the top-K truncation of a server can hide (the paper's Table 1)",
        description="Summarise a file scored with --backend openai --trajectory: mean top-K probability mass and "
        "truncation bound (bits) over all probe positions, and at the 90th / 95th / 99th percentile positions "
        "(the lowest masses, the highest bounds). Exit status 2 if the file has no per-position top-K columns.",
    )
    p.add_argument("scored", help="results of eas score --backend openai --trajectory (.jsonl or .parquet)")
    p.set_defaults(func=cmd_topk_stats)


def cmd_topk_stats(args: argparse.Namespace) -> int:
    import numpy as np

    from eas.cli.common import EXIT_OK, UsageError
    from eas.maths.metrics import topk_table
    from eas.storage.files import read_table

    rows = [r for r in read_table(args.scored) if r.get("trajectory_topk_mass") is not None]
    if not rows:
        raise UsageError(
            f"{args.scored}: no per-position top-K columns (trajectory_topk_mass); "
            "score with --backend openai --trajectory"
        )
    mass = np.concatenate([np.asarray(r["trajectory_topk_mass"], dtype=float) for r in rows])
    bound = np.concatenate([np.asarray(r["trajectory_bound"], dtype=float) for r in rows])
    entropy = np.concatenate([np.asarray(r["trajectory"], dtype=float) for r in rows])
    if not mass.size:
        raise UsageError(f"{args.scored}: the records have no probe positions")
    table = topk_table(mass, bound, entropy)
    print(f"top-K truncation over {mass.size} positions of {len(rows)} records ({args.scored})")
    print(f"{'positions':<10} {'top-K mass':>11} {'bound (bits)':>13}")
    for row in table:
        print(f"{row['positions']:<10} {100 * row['mass']:>10.2f}% {row['bound']:>13.3f}")
    print(f"mean top-K entropy per position: {table[0]['entropy']:.3f} bits (exact lies in [H, H + bound])")
    return EXIT_OK
