"""Top-K figures: pure maths in metrics, extra columns only for top-K measurements, topk-stats."""

import json

import numpy as np
import pytest

from eas.backends.base import EncodedRecord, Measurement
from eas.config import EASConfig
from eas.maths.metrics import record_figures, topk_figures, topk_table
from eas.records import Record
from eas.scoring.batches import RESULT_COLUMNS, TOPK_COLUMNS, result_row

SPANS = ((0, 6), (6, 7), (7, 8), (8, 9))  # "\\boxed", "{", "1", "}"
ENC = EncodedRecord(Record("r", "p", r"\boxed{1}"), [1, 2], [3, 4, 5, 6], [7], 4, response_offsets=SPANS)


def test_topk_figures_and_table_by_hand():
    assert topk_figures(np.array([0.5, 0.25, 0.0]), np.array([0.9, 0.5, 1.0])) == {
        "eas_bound": 0.75,
        "min_topk_mass": 0.5,
    }
    mass = np.linspace(0.0, 1.0, 101)  # 0.00, 0.01, ..., 1.00
    bound = mass[::-1].copy()
    rows = topk_table(mass, bound, np.full(101, 2.0))
    assert [r["positions"] for r in rows] == ["all", "p90", "p95", "p99"]
    assert rows[0] == pytest.approx({"positions": "all", "mass": 0.5, "bound": 0.5, "entropy": 2.0})
    # p90: the 10th-percentile mass and the 90th-percentile bound (the worse tail)
    assert rows[1]["mass"] == pytest.approx(0.10) and rows[1]["bound"] == pytest.approx(0.90)
    assert rows[3]["mass"] == pytest.approx(0.01) and rows[3]["bound"] == pytest.approx(0.99)
    with pytest.raises(ValueError):
        topk_table(np.array([]), np.array([]))


def test_missing_token_statistics_give_empty_figures():
    fig = record_figures(np.array([1.0, 2.0]), None, None)
    assert fig["eas"] == 3.0 and fig["final_entropy"] == 2.0
    assert fig["ppl"] is None and fig["max_seq_logprob"] is None
    assert fig["mean_token_entropy"] is None and fig["hes"] is None


def test_topk_columns_only_for_topk_measurements():
    h, lp = np.array([1.0, 0.5, 0.25]), np.log(np.full(4, 0.5))
    exact = result_row(ENC, Measurement(h, lp, np.ones(4)), EASConfig(trajectory=True))
    assert list(exact) == [*RESULT_COLUMNS, "trajectory", "token_spans"]
    assert exact["token_spans"] == [[0, 6], [6, 7], [7, 8], [8, 9]]
    topk = Measurement(h, None, None, probe_bounds=np.array([0.1, 0.2, 0.3]), probe_topk_mass=np.array([0.9, 0.8, 0.7]))
    row = result_row(ENC, topk, EASConfig(trajectory=True))
    assert list(row) == [
        *RESULT_COLUMNS,
        *TOPK_COLUMNS,
        "trajectory",
        "trajectory_bound",
        "trajectory_topk_mass",
        "token_spans",
    ]
    assert row["eas"] == 1.75 and row["eas_bound"] == pytest.approx(0.6) and row["min_topk_mass"] == 0.7
    assert row["ppl"] is None
    assert not {"trajectory_bound", "token_spans"} & set(result_row(ENC, topk, EASConfig()))


def test_topk_stats_needs_per_position_columns(tmp_path, capsys):
    from eas.cli import main

    path = tmp_path / "scored.jsonl"
    path.write_text(json.dumps({"id": "a", "eas": 1.0}) + "\n")
    assert main(["topk-stats", str(path)]) == 2
    assert "--trajectory" in capsys.readouterr().err
    row = {"id": "a", "trajectory": [1.0, 3.0], "trajectory_bound": [0.1, 0.3], "trajectory_topk_mass": [0.99, 0.95]}
    path.write_text(json.dumps(row) + "\n")
    assert main(["topk-stats", str(path)]) == 0
    out = capsys.readouterr().out
    assert "97.00%" in out and "2 positions of 1 records" in out and "2.000 bits" in out
