"""A folder's settings stamp: results made with other settings are refused, never reused."""

from __future__ import annotations

import json

import pytest

from eas.records import InputError
from eas.storage.parts import fingerprint
from eas.storage.stamp import claim_folder, differences

A = {"model": "m1", "experiment": {"budget": 2, "train": {"lr": 1e-5}}}
B = {"model": "m2", "experiment": {"budget": 3, "train": {"lr": 1e-5}}}


def test_a_folder_is_stamped_and_reused_with_the_same_settings(tmp_path):
    out = tmp_path / "new" / "folder"
    claim_folder(out, A, ["scores.jsonl"])
    stamp = json.loads((out / "settings.json").read_text())
    assert stamp == {"fingerprint": fingerprint(A), "settings": A}
    (out / "scores.jsonl").write_text("kept\n")
    claim_folder(out, A, ["scores.jsonl"])  # same settings: the results stay
    assert (out / "scores.jsonl").read_text() == "kept\n"


def test_other_settings_are_refused_with_the_differences_listed(tmp_path):
    claim_folder(tmp_path, A, ["scores.jsonl", "random"])
    (tmp_path / "scores.jsonl").write_text("old\n")
    (tmp_path / "random" / "seed-0").mkdir(parents=True)
    with pytest.raises(InputError) as err:
        claim_folder(tmp_path, B, ["scores.jsonl", "random"])
    assert "experiment.budget: 2 -> 3" in str(err.value) and "model: 'm1' -> 'm2'" in str(err.value)
    assert "lr" not in str(err.value) and "--overwrite" in str(err.value)
    claim_folder(tmp_path, B, ["scores.jsonl", "random"], overwrite=True)
    assert not (tmp_path / "scores.jsonl").exists() and not (tmp_path / "random").exists()
    assert json.loads((tmp_path / "settings.json").read_text())["settings"] == B


def test_results_without_a_stamp_are_refused(tmp_path):
    (tmp_path / "scores.jsonl").write_text("from an older version\n")
    with pytest.raises(InputError, match="no record of their settings"):
        claim_folder(tmp_path, A, ["scores.jsonl"])


def test_differences_name_nested_settings():
    assert differences(A, A) == []
    assert differences({"a": {"b": 1}}, {"a": {"b": 2, "c": 3}}) == ["a.b: 1 -> 2", "a.c: None -> 3"]
