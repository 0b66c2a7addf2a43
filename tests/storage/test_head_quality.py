"""A head that does not rank is said loudly: the threshold, the warning on stderr and in the manifest."""

from __future__ import annotations

import doctest
import json

import pytest
from support import arithmetic_records, write_jsonl

from eas.cli import main
from eas.config import AmortisedConfig
from eas.storage import heads
from eas.storage.heads import head_quality_warning


def _manifest(rho):
    return {"cv": {"spearman_mean_eas": rho}, "calibration": {"traces": 8}}


def test_the_threshold_is_stated_once_and_applied() -> None:
    limit = AmortisedConfig.min_spearman
    assert head_quality_warning(_manifest(limit)) is None  # at the threshold: it ranks
    assert head_quality_warning(_manifest(0.95)) is None
    low = head_quality_warning(_manifest(-0.02))
    assert low is not None and "Spearman(mean EAS) -0.02 < 0.5 on 8 traces" in low
    assert head_quality_warning(_manifest(limit - 1e-9)) is not None
    assert "Spearman(mean EAS) n/a" in (head_quality_warning(_manifest(float("nan"))) or "")
    assert head_quality_warning({}) is not None  # a manifest without its CV figures is not trusted
    assert head_quality_warning(_manifest(0.7), min_spearman=0.8) is not None
    assert doctest.testmod(heads).failed == 0


def test_score_amortised_auto_warns_on_stderr_and_in_the_manifest(tiny_dir, tmp_path, capsys) -> None:
    src = write_jsonl(tmp_path / "pool.jsonl", arithmetic_records(12))
    out = tmp_path / "auto.jsonl"
    args = ["-q", "score", str(src), "--model", str(tiny_dir), "--amortised", "auto", "--calibrate-fraction", "0.5"]
    assert main([*args, "--out", str(out)]) == 0
    head = json.loads((tmp_path / "auto.jsonl.head.safetensors.json").read_text())
    rho = head["cv"]["spearman_mean_eas"]
    err = capsys.readouterr().err
    manifest = json.loads((tmp_path / "auto.jsonl.manifest.json").read_text())
    below = rho < AmortisedConfig.min_spearman
    assert ("does not rank" in err) == below, (rho, err)
    assert (f"Spearman(mean EAS) {rho:.2f} < 0.5" in err) == below
    assert bool(manifest.get("warnings")) == below
    if below:
        assert manifest["warnings"] == [head_quality_warning(head)]


@pytest.mark.parametrize("rho", [0.1, 0.9])
def test_score_with_a_head_file_warns_from_its_manifest(rho, monkeypatch, tiny_dir, tmp_path, capsys) -> None:
    calib = write_jsonl(tmp_path / "calib.jsonl", arithmetic_records(10))
    head = tmp_path / "head.safetensors"
    assert main(["-q", "calibrate", str(calib), "--model", str(tiny_dir), "--out", str(head)]) == 0
    real = heads.load_head

    def with_rho(path):  # the same head, its CV figure set to rho
        found = real(path)
        found.manifest["cv"]["spearman_mean_eas"] = rho
        return found

    monkeypatch.setattr(heads, "load_head", with_rho)
    capsys.readouterr()
    out = tmp_path / "p.jsonl"
    src = write_jsonl(tmp_path / "pool.jsonl", arithmetic_records(3))
    assert main(["-q", "score", str(src), "--model", str(tiny_dir), "--amortised", str(head), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    warnings = json.loads((tmp_path / "p.jsonl.manifest.json").read_text()).get("warnings", [])
    if rho < AmortisedConfig.min_spearman:
        assert "does not rank its calibration traces: cross-validated Spearman(mean EAS) 0.10 < 0.5" in err
        assert len(warnings) == 1 and "0.10 < 0.5" in warnings[0]
    else:
        assert "does not rank" not in err and warnings == []
