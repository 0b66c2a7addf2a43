"""Input records: generated additions, and the package's bundled example traces."""

from __future__ import annotations

import json
from importlib.resources import files

from eas.records import Record


def arithmetic_records(n: int = 60) -> list[dict]:
    """``n`` short solved additions (ids r0, r1, ...); with n > 31, two bad records in the middle."""
    rows = []
    for i in range(n):
        a, b = 3 * i + 1, 7 * i % 11 + 2
        steps = " ".join(f"Step {k}: {a} plus {k} is {a + k}." for k in range(i % 5 + 1))
        rows.append({"id": f"r{i}", "prompt": f"What is {a} + {b}?", "response": f"{steps} So \\boxed{{{a + b}}}."})
    if n > 31:
        rows[7]["response"] = "no final answer"  # bad records in the middle
        rows[31]["response"] = ""
    return rows


def example_records(n: int) -> list[Record]:
    """The first ``n`` of the example traces bundled with eas (``eas/data/example_traces.jsonl``)."""
    lines = files("eas").joinpath("data/example_traces.jsonl").read_text().splitlines()[:n]
    return [Record(r["id"], r["prompt"], r["response"], r.get("answer")) for r in map(json.loads, lines)]
