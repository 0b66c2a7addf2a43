"""A run's identity: its input (ids + content) and its settings as resolved, checked before any work.

Each test goes through `eas score` in-process, as a user would (issue 20 items 1-3, issue 24's
settings message).
"""

from __future__ import annotations

import json

import pytest
from support import arithmetic_records, read_jsonl, write_jsonl

from eas.cli import main
from eas.records import InputError
from eas.scoring.batches import plan_batches
from eas.storage.inputs import FieldMap, read_records
from eas.storage.parts import PartStore


def _score(src, out, model, *extra):
    return main(["-q", "score", str(src), "--out", str(out), "--model", str(model), "--batch-tokens", "200", *extra])


@pytest.fixture
def measured(monkeypatch):
    """Records the in-process backend measures (their ids), in order."""
    from eas.backends.hf.backend import HFBackend

    seen: list = []
    real = HFBackend.measure

    def counting(self, batch):
        seen.extend(e.record.id for e in batch)
        return real(self, batch)

    monkeypatch.setattr(HFBackend, "measure", counting)
    return seen


def test_a_finished_output_refuses_another_input(tmp_path, tiny_dir, capsys):
    rows = arithmetic_records(3)
    first = write_jsonl(tmp_path / "a.jsonl", rows)
    other = write_jsonl(tmp_path / "b.jsonl", [{**r, "id": f"b{i}"} for i, r in enumerate(rows)])
    edited = write_jsonl(tmp_path / "c.jsonl", [rows[0], {**rows[1], "prompt": "What is 1 + 1?"}, rows[2]])
    out = tmp_path / "s.jsonl"
    assert _score(first, out, tiny_dir) == 0
    before = out.read_bytes()
    for src in (other, edited):  # other ids; the same ids with other content
        capsys.readouterr()
        assert _score(src, out, tiny_dir) == 2
        err = capsys.readouterr().err
        assert "holds the scores of another input" in err and "--overwrite" in err, err
        assert out.read_bytes() == before
    assert _score(other, out, tiny_dir, "--overwrite") == 0
    assert [r["id"] for r in read_jsonl(out)] == ["b0", "b1", "b2"]


def test_appended_records_are_scored_on_the_next_run(tmp_path, tiny_dir, measured):
    rows = arithmetic_records(12)
    src = write_jsonl(tmp_path / "in.jsonl", rows[:8])
    out, ref = tmp_path / "s.jsonl", tmp_path / "ref.jsonl"
    assert _score(src, out, tiny_dir) == 0
    write_jsonl(src, rows)  # four records appended
    del measured[:]
    assert _score(src, out, tiny_dir) == 0
    # Only the batches that hold new records were measured (the last old batch grew, so it is one of them).
    batches = [[r.id for r in b] for b in plan_batches(read_records(src, FieldMap()), 200)]
    ids = [r["id"] for r in rows]
    expected = [i for b in batches if any(ids.index(x) >= 8 for x in b) for i in b]
    assert measured == expected and len(expected) < len(rows)
    assert _score(src, ref, tiny_dir) == 0
    assert out.read_text() == ref.read_text()  # as if the grown input had been scored in one run
    assert json.loads((tmp_path / "s.jsonl.manifest.json").read_text())["records"] == 12


def test_a_resume_that_resolves_to_another_dtype_or_device_is_refused(tmp_path, tiny_dir, monkeypatch, capsys):
    import torch

    import eas.backends.load as load

    src = write_jsonl(tmp_path / "in.jsonl", arithmetic_records(3))
    out = tmp_path / "s.jsonl"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # this machine: a CPU
    assert _score(src, out, tiny_dir) == 0  # --dtype auto -> float32
    manifest = json.loads((tmp_path / "s.jsonl.manifest.json").read_text())
    assert manifest["settings"]["backend"] | {"model": None} == {
        "backend": "hf", "model": None, "device": "cpu", "dtype": "float32", "attention": "sdpa"
    }  # fmt: skip
    assert _score(src, out, tiny_dir, "--dtype", "float32", "--device", "cpu") == 0  # typed otherwise, same run

    def no_model(*args, **kwargs):
        raise AssertionError("a refused run loaded a model")

    monkeypatch.setattr(load, "load_model", no_model)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # the same command where a GPU is visible
    capsys.readouterr()
    assert _score(src, out, tiny_dir) == 2
    err = capsys.readouterr().err
    assert "backend.device: 'cpu' -> 'cuda'" in err and "backend.dtype: 'float32' -> 'bfloat16'" in err, err


def test_a_settings_mismatch_names_only_the_keys_that_differ(tmp_path, tiny_dir, capsys):
    src = write_jsonl(tmp_path / "in.jsonl", arithmetic_records(3))
    out = tmp_path / "s.jsonl"
    assert _score(src, out, tiny_dir) == 0
    capsys.readouterr()
    assert _score(src, out, tiny_dir, "--trigger", "The answer is ") == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    changed = line.split("other settings (")[1].split("); use --overwrite to start again")[0]
    assert changed == "estimator.metric.trigger: '\\\\boxed{' -> 'The answer is '", line
    # Stored settings come back from JSON (lists): a tuple setting is not reported as changed.
    store = PartStore(tmp_path / "o.jsonl", {"metric": {"track_tokens": (), "trigger": "a"}}).open()
    store.write_part(0, [("x", "f")], [{"id": "x"}], [])
    with pytest.raises(InputError) as exc:
        PartStore(tmp_path / "o.jsonl", {"metric": {"track_tokens": (), "trigger": "b"}}).open()
    assert "(metric.trigger: 'a' -> 'b')" in str(exc.value) and "track_tokens" not in str(exc.value)


def test_auto_refuses_other_settings_before_calibrating_and_keeps_the_head(tmp_path, tiny_dir, monkeypatch, capsys):
    import eas.scoring.calibration as calibration

    src = write_jsonl(tmp_path / "pool.jsonl", arithmetic_records(16))
    out = tmp_path / "s.jsonl"
    auto = ["--amortised", "auto", "--calibrate-seed", "1"]
    assert _score(src, out, tiny_dir, *auto, "--calibrate-fraction", "0.5") == 0
    files = [tmp_path / "s.jsonl.head.safetensors", tmp_path / "s.jsonl.head.safetensors.json", out]
    before = [(f.stat().st_mtime_ns, f.read_bytes()) for f in files]

    def no_calibration(*args, **kwargs):
        raise AssertionError("calibrated before checking the settings")

    monkeypatch.setattr(calibration, "calibrate", no_calibration)
    capsys.readouterr()
    assert _score(src, out, tiny_dir, *auto, "--calibrate-fraction", "0.25") == 2
    err = capsys.readouterr().err
    assert "estimator.fraction: 0.5 -> 0.25" in err, err
    assert [(f.stat().st_mtime_ns, f.read_bytes()) for f in files] == before
    # A grown pool changes the slice: refused too (its rows depend on the whole pool), the head kept.
    write_jsonl(src, arithmetic_records(18))
    assert _score(src, out, tiny_dir, *auto, "--calibrate-fraction", "0.5") == 2
    assert "input.records: 16 -> 18" in capsys.readouterr().err
    assert [(f.stat().st_mtime_ns, f.read_bytes()) for f in files] == before
