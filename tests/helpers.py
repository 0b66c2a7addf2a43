"""Helpers for the tests: tiny seeded models, backends, input files."""

from __future__ import annotations

import json
from pathlib import Path

from eas.config import EngineConfig
from eas.testing.models import make_tiny_llama

__all__ = ["arithmetic_records", "backend", "check_topk_interval", "make_tiny_llama", "write_jsonl"]


def backend(model, tokenizer, **engine):
    from eas.backends.hf.backend import HFBackend

    return HFBackend(model, tokenizer, EngineConfig(**engine))


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


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


def check_topk_interval(rows, exact, tol_per_probe: float, min_inside: float, min_r: float) -> None:
    """A server's top-K rows hold the exact in-process values: each record's EAS inside
    ``[eas, eas + eas_bound]`` up to ``tol_per_probe`` bits a probe, at least ``min_inside``
    of the positions inside their interval, and the two correlated (r >= ``min_r``)."""
    import numpy as np

    from eas.scoring.batches import ScoreError

    h, lo, hi = [], [], []
    for r, e in zip(rows, exact, strict=True):
        assert not isinstance(r, ScoreError), r
        assert r["n_probes"] == e["n_probes"] and r["ppl"] is None
        assert r["eas_bound"] > 0 and 0 < r["min_topk_mass"] < 1
        tol = tol_per_probe * r["n_probes"]
        assert r["eas"] - tol <= e["eas"] <= r["eas"] + r["eas_bound"] + tol, (r["id"], e["eas"], r["eas"])
        h += e["trajectory"]
        lo += r["trajectory"]
        hi += list(np.add(r["trajectory"], r["trajectory_bound"]))
    h, lo, hi = map(np.asarray, (h, lo, hi))
    assert np.mean((h >= lo) & (h <= hi)) >= min_inside
    assert np.corrcoef(h, (lo + hi) / 2)[0, 1] >= min_r
