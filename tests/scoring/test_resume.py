"""Runs survive SIGKILL: a rerun into the same output ends with exactly the output of an
uninterrupted run. Real subprocesses of `eas score` on a tiny model saved to disk."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import arithmetic_records as _records
from support import count_parts, read_jsonl, write_jsonl

from eas.records import InputError
from eas.storage.parts import PartStore


def _cmd(src: Path, out: Path, model: Path) -> list[str]:
    return [sys.executable, "-m", "eas.cli", "-q", "score", str(src), "--out", str(out), "--model", str(model)]


def _run(src, out, model, extra=()) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [*_cmd(src, out, model), "--batch-tokens", "300", *extra], capture_output=True, text=True, env=env
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_dir):
    d = tmp_path_factory.mktemp("ref")
    src = write_jsonl(d / "in.jsonl", _records())
    out = d / "scored.jsonl"
    done = _run(src, out, tiny_dir)
    assert done.returncode == 3, done.stderr  # two bad records
    return src, out.read_text(), (d / "scored.errors.jsonl").read_text()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sigkill_then_rerun_equals_an_uninterrupted_run(tmp_path, tiny_dir, reference, seed):
    src, ref_out, ref_errors = reference
    out = tmp_path / "scored.jsonl"
    rng = random.Random(seed)
    wait_parts = rng.randint(1, 8)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [*_cmd(src, out, tiny_dir), "--batch-tokens", "300"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 300
    while count_parts(out) < wait_parts and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(rng.uniform(0, 0.05))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not out.exists() and count_parts(out) >= wait_parts

    again = _run(src, out, tiny_dir)
    assert again.returncode == 3, again.stderr
    assert out.read_text() == ref_out
    assert (tmp_path / "scored.errors.jsonl").read_text() == ref_errors
    assert not out.with_name(out.name + ".parts").exists()
    ids = [r["id"] for r in read_jsonl(out)]
    assert len(ids) == len(set(ids)) == 58


def test_a_kill_during_a_write_leaves_nothing_half_done(tmp_path, tiny_dir, reference):
    """What a kill in the middle of writing a part can leave: a temporary file, and (on a
    broken disk) a part cut short. Both are ignored and computed again."""
    src, ref_out, ref_errors = reference
    out = tmp_path / "scored.jsonl"
    parts = out.with_name(out.name + ".parts")
    first = _run(src, out, tiny_dir)
    assert first.returncode == 3
    # Recreate an unfinished run from the reference's parts: keep some, damage others.
    out.unlink()
    parts.mkdir()
    store = PartStore(out, json.loads(Path(str(out) + ".manifest.json").read_text())["settings"])
    store.open()
    store.write_part(0, [("r0", "x")], [{"id": "r0", "eas": 1.0}], [])  # wrong keys: recomputed
    (parts / "part-000000001.jsonl").write_text('{"keys": [["r2", "y"]], "retry": false}\n{"row": {"id"')
    (parts / "part-000000002.jsonl.tmp").write_text('{"keys": [')
    Path(str(out) + ".manifest.json").unlink()
    again = _run(src, out, tiny_dir)
    assert again.returncode == 3, again.stderr
    assert out.read_text() == ref_out
    assert (tmp_path / "scored.errors.jsonl").read_text() == ref_errors


def test_other_settings_are_refused_unless_overwrite(tmp_path, tiny_dir):
    src = write_jsonl(tmp_path / "in.jsonl", _records(4))
    out = tmp_path / "s.jsonl"
    assert _run(src, out, tiny_dir).returncode == 0
    changed = _run(src, out, tiny_dir, ["--trigger", "The answer is "])
    assert changed.returncode == 2
    assert "other settings" in changed.stderr and "trigger" in changed.stderr
    assert _run(src, out, tiny_dir, ["--trigger", "The answer is ", "--overwrite"]).returncode == 0


def test_a_rerun_of_a_finished_run_does_nothing(tmp_path, tiny_dir, monkeypatch, capsys):
    """Same settings, finished output: no model loaded, the files untouched, 'already complete' said."""
    import eas.backends.load as load
    from eas.cli import main

    src = write_jsonl(tmp_path / "in.jsonl", _records(4))
    out = tmp_path / "s.jsonl"
    assert _run(src, out, tiny_dir).returncode == 0
    files = [out, out.with_name("s.jsonl.manifest.json")]
    before = [(f.stat().st_ino, f.stat().st_mtime_ns, f.read_bytes()) for f in files]

    def no_model(*args, **kwargs):
        raise AssertionError("a finished run loaded a model")

    monkeypatch.setattr(load, "load_backend", no_model)
    monkeypatch.setattr(load, "load_model", no_model)
    argv = ["score", str(src), "--out", str(out), "--model", str(tiny_dir), "--batch-tokens", "300"]
    assert main(argv) == 0
    assert "already complete" in capsys.readouterr().err
    assert [(f.stat().st_ino, f.stat().st_mtime_ns, f.read_bytes()) for f in files] == before
    assert not out.with_name("s.jsonl.parts").exists()


def test_duplicate_ids_are_refused_or_deduped(tmp_path, tiny_dir):
    rows = _records(5)
    rows[3]["id"] = rows[1]["id"]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "s.jsonl"
    refused = _run(src, out, tiny_dir)
    assert refused.returncode == 2 and "'r1'" in refused.stderr and "--dedupe" in refused.stderr
    assert not out.exists()
    kept = _run(src, out, tiny_dir, ["--dedupe"])
    assert kept.returncode == 3
    errors = read_jsonl(tmp_path / "s.errors.jsonl")
    assert errors == [{"id": "r1", "error": "duplicate id: --dedupe kept its first occurrence"}]


def test_partstore_units(tmp_path):
    out = tmp_path / "o.jsonl"
    store = PartStore(out, {"a": 1}).open()
    assert not store.is_done(0, [("x", "f")])
    store.write_part(0, [("x", "f")], [{"id": "x"}], [])
    store.write_part(1, [("y", "g")], [], [{"id": "y", "error": "server 503"}], retry=True)
    reopened = PartStore(out, {"a": 1}).open()
    assert reopened.is_done(0, [("x", "f")]) and not reopened.is_done(1, [("y", "g")])
    with pytest.raises(InputError, match="a: 1 -> 2"):
        PartStore(out, {"a": 2}).open()
    assert PartStore(out, {"a": 2}, overwrite=True).open().n_done_records() == 0


def _questions(path: Path, n: int = 12) -> Path:
    rows = [{"id": f"q{i}", "question": f"What is {i} + {i + 1}?", "answer": str(2 * i + 1)} for i in range(n)]
    return write_jsonl(path, rows)


def _sample_cmd(src: Path, out: Path, model: Path) -> list[str]:
    args = ["-n", "2", "--batch-size", "4", "--max-new-tokens", "12", "--seed", "3"]
    return [sys.executable, "-m", "eas.cli", "-q", "sample", str(src), "--out", str(out), "--model", str(model), *args]


@pytest.mark.parametrize("seed", [0, 1])
def test_sample_killed_then_rerun_gives_the_same_samples(tmp_path, tiny_dir, seed):
    src = _questions(tmp_path / "q.jsonl")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    ref = tmp_path / "ref.jsonl"
    assert subprocess.run(_sample_cmd(src, ref, tiny_dir), env=env, capture_output=True).returncode == 0
    out = tmp_path / "s.jsonl"
    proc = subprocess.Popen(
        _sample_cmd(src, out, tiny_dir), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_parts = random.Random(seed).randint(1, 4)
    deadline = time.monotonic() + 300
    while count_parts(out) < wait_parts and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL and not out.exists()
    again = subprocess.run(_sample_cmd(src, out, tiny_dir), env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert out.read_text() == ref.read_text()
    assert len(out.read_text().splitlines()) == 24
