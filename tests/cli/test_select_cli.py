"""`eas select` on hand-made pools: exact chosen ids, manifests, errors."""

from __future__ import annotations

import json

import pytest
from support import read_jsonl, write_jsonl

from eas.cli import main

POOL = [
    {"id": "a", "prompt": "q1", "response": "short \\boxed{1}", "eas": 3.0, "topic": "x"},
    {"id": "b", "prompt": "q2", "response": "a much longer response " * 8 + "\\boxed{2}", "eas": 9.0},
    {"id": "c", "prompt": "q3", "response": "medium response here \\boxed{3}", "eas": 9.0},
    {"id": "d", "prompt": "q4", "response": "tiny \\boxed{4}", "eas": 1.0},
]


def test_eas_from_a_column_keeps_rows_unchanged(tmp_path):
    src = write_jsonl(tmp_path / "pool.jsonl", POOL)
    out = tmp_path / "picked.jsonl"
    assert main(["-q", "select", str(src), "--strategy", "eas", "--budget", "2", "--out", str(out)]) == 0
    picked = read_jsonl(out)
    assert [r["id"] for r in picked] == ["b", "c"]  # tie at 9.0: input order
    assert picked[0] == {**POOL[1], "selection_score": 9.0, "selection_rank": 1}
    manifest = json.loads((tmp_path / "picked.jsonl.manifest.json").read_text())
    assert manifest["chosen"] == 2 and manifest["pool"] == 4 and manifest["score_source"] == "input column 'eas'"
    assert manifest["score_quantiles"]["chosen"]["q50"] == 9.0 and manifest["score_quantiles"]["pool"]["q0"] == 1.0


def test_scores_from_an_eas_score_file(tmp_path):
    raw = [{k: v for k, v in r.items() if k != "eas"} for r in POOL]
    src = write_jsonl(tmp_path / "pool.jsonl", raw)
    scored = write_jsonl(
        tmp_path / "scored.jsonl", [{"id": "a", "hes": 5.0}, {"id": "b", "hes": 1.0}, {"id": "c", "hes": 2.0}]
    )
    out = tmp_path / "picked.jsonl"
    args = ["-q", "select", str(src), "--strategy", "hes", "--budget", "5", "--scores", str(scored), "--out", str(out)]
    assert main(args) == 0
    assert [r["id"] for r in read_jsonl(out)] == ["a", "c", "b"]  # d has no score: not eligible
    assert json.loads((tmp_path / "picked.jsonl.manifest.json").read_text())["shortfall"] == 2


def test_length_counts_tokens_and_random_is_seeded(tmp_path, embedded_dir):
    src = write_jsonl(tmp_path / "pool.jsonl", POOL)
    out = tmp_path / "long.jsonl"
    assert main(["-q", "select", str(src), "--strategy", "length", "--budget", "2", "--out", str(out)]) == 0
    picked = read_jsonl(out)
    assert [r["id"] for r in picked] == ["b", "c"]
    assert picked[0]["selection_score"] > picked[1]["selection_score"] > 10
    r1, r2 = tmp_path / "r1.jsonl", tmp_path / "r2.jsonl"
    for out in (r1, r2):
        assert (
            main(["-q", "select", str(src), "--strategy", "random", "--budget", "3", "--seed", "7", "--out", str(out)])
            == 0
        )
    assert read_jsonl(r1) == read_jsonl(r2) and len(read_jsonl(r1)) == 3


def test_eas_scored_with_the_model_when_no_column(tmp_path, embedded_dir):
    raw = [{k: v for k, v in r.items() if k != "eas"} for r in POOL]
    src = write_jsonl(tmp_path / "pool.jsonl", raw)
    out = tmp_path / "picked.jsonl"
    assert main(["-q", "select", str(src), "--strategy", "eas", "--budget", "1", "--out", str(out)]) == 0
    (row,) = read_jsonl(out)
    assert row["selection_score"] > 0
    assert json.loads((tmp_path / "picked.jsonl.manifest.json").read_text())["score_source"] == "scored with embedded"


@pytest.mark.parametrize(("content", "message"), [("", "pool is empty"), (None, "budget must be >= 1")])
def test_errors(tmp_path, capsys, content, message):
    src = tmp_path / "pool.jsonl"
    src.write_text(content if content is not None else json.dumps(POOL[0]) + "\n")
    budget = "0" if content is None else "3"
    assert (
        main(["-q", "select", str(src), "--strategy", "eas", "--budget", budget, "--out", str(tmp_path / "o.jsonl")])
        == 2
    )
    assert message in capsys.readouterr().err


def test_eas_scored_with_a_probe_stride(tmp_path, embedded_dir):
    raw = [{k: v for k, v in r.items() if k != "eas"} for r in POOL]
    src = write_jsonl(tmp_path / "pool.jsonl", raw)
    out = tmp_path / "picked.jsonl"
    argv = ["-q", "select", str(src), "--strategy", "eas", "--budget", "1", "--out", str(out)]
    assert main([*argv, "--probe-stride", "2", "--probe-seed", "3"]) == 0
    (row,) = read_jsonl(out)
    assert row["selection_score"] > 0
    assert main([*argv, "--probe-stride", "0"]) == 2
