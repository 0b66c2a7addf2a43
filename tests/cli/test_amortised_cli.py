"""`eas calibrate`, `eas score --amortised` and `eas select --amortised` in-process, on tiny seeded models."""

from __future__ import annotations

import json

import pytest
from support import arithmetic_records, make_tiny_llama, read_jsonl, write_jsonl

from eas.cli import main


@pytest.fixture(scope="module")
def head(tiny_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("calibrate")
    src = write_jsonl(folder / "calib.jsonl", arithmetic_records(12))
    out = folder / "head.safetensors"
    assert main(["-q", "calibrate", str(src), "--model", str(tiny_dir), "--out", str(out)]) == 0
    return out


def test_calibrate_writes_a_head_and_its_manifest(head):
    man = json.loads(head.with_name(head.name + ".json").read_text())
    assert man["layers"] == [1, 2] and man["calibration"]["traces"] == 12
    assert set(man["cv"]) >= {"per_position_r", "spearman_eas", "spearman_mean_eas", "top25_overlap", "mean_rel_error"}


def test_score_with_a_head_predicts_and_says_so(head, tiny_dir, tmp_path):
    src = write_jsonl(tmp_path / "pool.jsonl", arithmetic_records(16)[12:])
    out = tmp_path / "scored.jsonl"
    args = ["-q", "score", str(src), "--model", str(tiny_dir), "--amortised", str(head), "--trajectory"]
    assert main([*args, "--out", str(out)]) == 0
    rows = read_jsonl(out)
    assert len(rows) == 4 and {r["eas_method"] for r in rows} == {"amortised"}
    assert all(len(r["trajectory"]) == r["n_probes"] and r["n_probes_run"] == 0 for r in rows)
    # The head is part of the run's settings: the exact scorer into the same output refuses.
    assert main(["-q", "score", str(src), "--model", str(tiny_dir), "--trajectory", "--out", str(out)]) == 2


def test_a_head_for_another_model_is_refused(head, tokenizer, tmp_path, capsys):
    other = tmp_path / "other-model"
    make_tiny_llama(len(tokenizer), seed=8).save_pretrained(other)
    tokenizer.save_pretrained(other)
    src = write_jsonl(tmp_path / "pool.jsonl", arithmetic_records(3))
    out = tmp_path / "scored.jsonl"
    assert main(["-q", "score", str(src), "--model", str(other), "--amortised", str(head), "--out", str(out)]) == 2
    assert "calibrated for model" in capsys.readouterr().err
    assert not out.exists()


def test_select_accepts_a_head(head, tiny_dir, tmp_path):
    src = write_jsonl(tmp_path / "pool.jsonl", arithmetic_records(6))
    out = tmp_path / "picked.jsonl"
    args = ["-q", "select", str(src), "--strategy", "eas", "--budget", "2", "--model", str(tiny_dir)]
    assert main([*args, "--amortised", str(head), "--out", str(out)]) == 0
    manifest = json.loads((tmp_path / "picked.jsonl.manifest.json").read_text())
    assert "amortised" in manifest["score_source"] and manifest["chosen"] == 2
    assert len(read_jsonl(out)) == 2
