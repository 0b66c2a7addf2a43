"""What the tests of real llama.cpp servers share: the example traces scored through a
server and in-process, and the check that the server's top-K rows hold the exact values."""

from __future__ import annotations

from typing import Any

from support.records import example_records


def score_on_server_and_exact(url: str, n: int, concurrency: int) -> tuple[Any, list, list]:
    """The first ``n`` example traces scored with trajectories by the embedded model through
    the server at ``url`` (the openai backend) and in-process: (that backend, its rows, the exact rows)."""
    from eas.backends.load import load_backend
    from eas.config import EASConfig, ServerConfig
    from eas.scoring.runs import score_records

    records = example_records(n)
    config = EASConfig(trajectory=True)
    server = load_backend("embedded", backend="openai", server=ServerConfig(base_url=url, concurrency=concurrency))
    rows = list(score_records(records, server, config))
    exact = list(score_records(records, load_backend("embedded"), config))
    return server, rows, exact


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
