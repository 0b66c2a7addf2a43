"""No NaN or Infinity token in any JSON file eas writes: rows, parts, manifests, stamps, heads."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from eas.storage.files import jsonl_line, write_rows
from eas.storage.parts import PartStore, manifest_path

NAN, INF = float("nan"), float("inf")


def strict_loads(text: str):
    """``json.loads`` as a strict reader (jq, JavaScript, Arrow) parses: NaN/Infinity refused."""

    def refuse(token):
        raise ValueError(f"{token} is not JSON")

    return json.loads(text, parse_constant=refuse)


def strict_lines(path: Path) -> list:
    return [strict_loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_jsonl_line_nulls_non_finite_values_at_any_depth():
    row = {"id": "a", "eas": NAN, "trajectory": [0.5, NAN, INF], "option_probs": {"A": [-INF, 0.25]}}
    row["nested"] = [[1.0, NAN], (INF, 2)]
    row["np"] = [np.float32(0.5), np.float64("nan"), np.array([1.0, np.inf])]
    back = strict_loads(jsonl_line(row))
    assert back == {
        "id": "a",
        "eas": None,
        "trajectory": [0.5, None, None],
        "option_probs": {"A": [None, 0.25]},
        "nested": [[1.0, None], [None, 2]],
        "np": [0.5, None, [1.0, None]],
    }


def test_dumps_keeps_what_json_keeps():
    from eas.storage.jsontext import dumps

    value = {"s": "NaN", "i": 3, "b": True, "n": None, "f": 1e-300, "t": (1, "x")}
    assert json.loads(dumps(value)) == {**value, "t": [1, "x"]}
    assert dumps({"d": object()}, default=lambda o: "obj") == '{"d": "obj"}'


def test_result_files_parts_and_manifests_are_strict_json(tmp_path):
    out = tmp_path / "scored.jsonl"
    settings = {"metric": {"threshold": NAN}, "limits": [INF]}
    store = PartStore(out, settings).open()
    store.write_part(0, [("a", "f")], [{"id": "a", "eas": 1.0, "trajectory": [NAN, 1.0]}], [])
    store.write_part(1, [("b", "g")], [], [{"id": "b", "error": "x", "value": INF}], retry=True)
    for part in store.dir.iterdir():
        strict_lines(part)  # the parts and their header while the run goes
    store.finish([0, 1], write_rows_jsonl, tmp_path / "scored.errors.jsonl", {"extra": [NAN]})
    assert strict_lines(out) == [{"id": "a", "eas": 1.0, "trajectory": [None, 1.0]}]
    assert strict_lines(tmp_path / "scored.errors.jsonl") == [{"id": "b", "error": "x", "value": None}]
    manifest = strict_loads(manifest_path(out).read_text())
    assert manifest["settings"] == {"metric": {"threshold": None}, "limits": [None]} and manifest["extra"] == [None]
    # The same settings resume the same run (the fingerprint is of the settings as given).
    assert PartStore(out, settings).open().is_done(0, [("a", "f")])


def write_rows_jsonl(path, make_batches):
    write_rows([r for batch in make_batches() for r in batch], path)


def test_a_folder_stamp_is_strict_json(tmp_path):
    from eas.storage.stamp import STAMP, claim_folder

    claim_folder(tmp_path / "run", {"lr": NAN, "grid": [1.0, INF]}, ["results.json"])
    stamp = strict_loads((tmp_path / "run" / STAMP).read_text())
    assert stamp["settings"] == {"lr": None, "grid": [1.0, None]}
    claim_folder(tmp_path / "run", {"lr": NAN, "grid": [1.0, INF]}, ["results.json"])  # the same settings again


def test_a_head_manifest_with_undefined_cv_figures_is_strict_json(tmp_path):
    from safetensors import safe_open

    from eas.maths.ridge import RidgeHead
    from eas.storage.heads import load_head, manifest_beside, save_head

    head = RidgeHead(np.zeros(2), np.ones(2), np.array([0.5, -0.5]), 1.0, 0.1)
    path = tmp_path / "head.safetensors"
    # Two constant traces: every CV correlation is undefined (NaN).
    save_head(path, head, {"cv": {"per_position_r": NAN, "spearman_mean_eas": NAN, "mean_rel_error": 0.1}})
    side = strict_loads(manifest_beside(path).read_text())
    assert side["cv"] == {"per_position_r": None, "spearman_mean_eas": None, "mean_rel_error": 0.1}
    with safe_open(str(path), framework="numpy") as f:
        assert strict_loads(f.metadata()["manifest"])["cv"]["per_position_r"] is None
    assert load_head(path).manifest["cv"]["mean_rel_error"] == 0.1


@pytest.mark.parametrize("value", [NAN, INF, -INF])
def test_strict_reader_refuses_what_json_dumps_writes_by_default(value):
    """The check above can fail: Python's own json writes these tokens."""
    with pytest.raises(ValueError, match="not JSON"):
        strict_loads(json.dumps([value]))
    assert math.isnan(json.loads(json.dumps(value))) or math.isinf(json.loads(json.dumps(value)))
