"""The GGUF cache (eas.backends.sources.gguf): keyed by content, checked, atomic, built once.

These tests swap the dequantizer (transformers' GGUF loader, tens of seconds) for one
that writes a small model folder, so that the cache's own logic is tested quickly; the
real dequantization is tested against the GGUF loader in ``test_gguf_conversion.py``.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pytest

from eas.backends.load import model_path
from eas.backends.sources import gguf as gguf_mod


class FakeDequantizer:
    """Writes a folder whose content depends on the GGUF bytes (its first 64); counts its calls."""

    def __init__(self, delay: float = 0.0):
        self.calls: list[Path] = []
        self.delay = delay
        self.lock = threading.Lock()

    def __call__(self, gguf: Path, out: Path) -> None:
        with self.lock:
            self.calls.append(gguf)
        time.sleep(self.delay)
        with gguf.open("rb") as f:
            head = f.read(64)
        (out / "config.json").write_text(json.dumps({"source_size": gguf.stat().st_size}))
        (out / "model.safetensors").write_bytes(b"weights:" + head)


@pytest.fixture
def fake(monkeypatch, tmp_path) -> FakeDequantizer:
    monkeypatch.setenv("EAS_CACHE_DIR", str(tmp_path / "cache"))
    d = FakeDequantizer()
    monkeypatch.setattr(gguf_mod, "dequantize", d)
    return d


def _gguf(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def test_built_once_then_reused(fake, tmp_path):
    src = _gguf(tmp_path / "m.gguf", b"GGUF one")
    first = gguf_mod.gguf_model_dir(src)
    assert first == tmp_path / "cache" / "gguf" / f"{gguf_mod.sha256_file(src)}-{gguf_mod.CACHE_VERSION}"
    manifest = json.loads((first / gguf_mod.MANIFEST).read_text())
    assert manifest["gguf_sha256"] == gguf_mod.sha256_file(src)
    assert set(manifest["files"]) == {"config.json", "model.safetensors"}
    assert gguf_mod.gguf_model_dir(src) == first
    assert fake.calls == [src]
    # no temporary folder or stray file left next to the cache
    assert sorted(p.name for p in first.parent.iterdir()) == sorted([first.name, first.name + ".lock"])


def test_the_key_is_the_content_not_the_name(fake, tmp_path):
    src = _gguf(tmp_path / "a" / "m.gguf", b"GGUF one")
    copy = _gguf(tmp_path / "b" / "renamed.GGUF", b"GGUF one")
    assert gguf_mod.gguf_model_dir(src) == gguf_mod.gguf_model_dir(copy)
    assert len(fake.calls) == 1
    src.write_bytes(b"GGUF two")  # the same path, other bytes: another model
    changed = gguf_mod.gguf_model_dir(src)
    assert changed != gguf_mod.gguf_model_dir(copy)
    assert (changed / "model.safetensors").read_bytes() == b"weights:GGUF two"
    assert len(fake.calls) == 2


def test_a_corrupt_or_partial_cache_is_rebuilt(fake, tmp_path):
    src = _gguf(tmp_path / "m.gguf", b"GGUF one")
    folder = gguf_mod.gguf_model_dir(src)
    (folder / "model.safetensors").write_bytes(b"weights:GGUF on")  # truncated
    assert not gguf_mod.cache_is_valid(folder, gguf_mod.sha256_file(src))
    assert gguf_mod.gguf_model_dir(src) == folder
    assert (folder / "model.safetensors").read_bytes() == b"weights:GGUF one"
    assert len(fake.calls) == 2
    (folder / "config.json").unlink()  # a file missing
    gguf_mod.gguf_model_dir(src)
    assert len(fake.calls) == 3
    (folder / gguf_mod.MANIFEST).write_text("{not json")  # an unreadable manifest
    gguf_mod.gguf_model_dir(src)
    assert len(fake.calls) == 4 and gguf_mod.cache_is_valid(folder, gguf_mod.sha256_file(src))


def test_a_cache_built_from_another_file_is_not_taken(fake, tmp_path):
    one = gguf_mod.gguf_model_dir(_gguf(tmp_path / "1.gguf", b"GGUF one"))
    two_src = _gguf(tmp_path / "2.gguf", b"GGUF two")
    two_dir = gguf_mod.cache_dir_for(gguf_mod.sha256_file(two_src))
    shutil.copytree(one, two_dir)  # a valid folder, but of the other file
    assert gguf_mod.cache_is_valid(two_dir) and not gguf_mod.cache_is_valid(two_dir, gguf_mod.sha256_file(two_src))
    assert (gguf_mod.gguf_model_dir(two_src) / "model.safetensors").read_bytes() == b"weights:GGUF two"
    assert len(fake.calls) == 2


def test_a_failed_build_leaves_nothing_behind(monkeypatch, tmp_path):
    monkeypatch.setenv("EAS_CACHE_DIR", str(tmp_path / "cache"))

    def broken(gguf: Path, out: Path) -> None:
        (out / "model.safetensors").write_bytes(b"half")
        raise RuntimeError("unsupported GGUF architecture")

    monkeypatch.setattr(gguf_mod, "dequantize", broken)
    src = _gguf(tmp_path / "m.gguf", b"GGUF one")
    with pytest.raises(RuntimeError, match="unsupported"):
        gguf_mod.gguf_model_dir(src)
    assert [p.name for p in (tmp_path / "cache" / "gguf").iterdir()] == [
        f"{gguf_mod.sha256_file(src)}-{gguf_mod.CACHE_VERSION}.lock"
    ]


def test_concurrent_builders_build_once(monkeypatch, tmp_path):
    monkeypatch.setenv("EAS_CACHE_DIR", str(tmp_path / "cache"))
    slow = FakeDequantizer(delay=0.5)
    monkeypatch.setattr(gguf_mod, "dequantize", slow)
    src = _gguf(tmp_path / "m.gguf", b"GGUF one")
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(gguf_mod.gguf_model_dir(src))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(slow.calls) == 1
    assert len(set(results)) == 1 and len(results) == 3


def test_model_names_go_through_the_one_cache(fake, tmp_path):
    from eas.backends.sources.embedded import gguf_path

    src = _gguf(tmp_path / "m.gguf", b"GGUF one")
    assert model_path(str(src)) == str(gguf_mod.gguf_model_dir(src))
    # "embedded" is the package's GGUF file, through the same cache
    assert model_path("embedded") == str(gguf_mod.cache_dir_for(gguf_mod.sha256_file(gguf_path())))
    assert model_path("some/folder") == "some/folder"
    with pytest.raises(FileNotFoundError, match="no GGUF file"):
        model_path(str(tmp_path / "missing.gguf"))


def test_the_cli_reports_a_missing_gguf_file(tmp_path, capsys):
    from support import write_jsonl

    from eas.cli import main

    src = write_jsonl(tmp_path / "in.jsonl", [{"id": "a", "prompt": "q", "response": r"\boxed{1}"}])
    missing = tmp_path / "nowhere.gguf"
    assert main(["-q", "score", str(src), "--model", str(missing), "--out", str(tmp_path / "o.jsonl")]) == 2
    assert "no GGUF file" in capsys.readouterr().err


def test_served_gguf_names_find_their_tokenizer(fake, tmp_path):
    from eas.backends.load import default_tokenizer
    from eas.backends.sources.embedded import GGUF_FILE

    assert default_tokenizer("embedded") == "embedded"
    assert default_tokenizer(GGUF_FILE) == "embedded"  # llama.cpp serving the embedded file, named bare
    src = _gguf(tmp_path / "m.gguf", b"GGUF one")
    assert default_tokenizer(str(src)) == str(src)  # a local GGUF file: its own (cached) tokenizer
    assert default_tokenizer("Qwen/Qwen2.5-0.5B") == "Qwen/Qwen2.5-0.5B"
