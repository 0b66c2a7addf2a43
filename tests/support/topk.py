"""The check shared by the tests of real llama.cpp servers: top-K rows against exact ones."""

from __future__ import annotations


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
