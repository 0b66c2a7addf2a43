"""check_model_name: a name that cannot name a model fails at once, offline, with the closest name."""

from __future__ import annotations

import pytest

from eas.backends import load


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty local Hugging Face cache, and no offline switch set."""
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.chdir(tmp_path)
    return cache


def _cached(cache, repo_id):
    (cache / f"models--{repo_id.replace('/', '--')}" / "snapshots" / "abc123").mkdir(parents=True)


def test_good_names_pass(hub_cache, tmp_path):
    (tmp_path / "my-model").mkdir()
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    _cached(hub_cache, "gpt2")
    _cached(hub_cache, "org/cached-model")
    for name in ("embedded", "my-model", str(tmp_path / "my-model"), "m.gguf", "gpt2", "org/cached-model"):
        load.check_model_name(name)
    load.check_model_name("org/not-downloaded-yet")  # the hub may have it


def test_a_typo_suggests_the_closest_name(hub_cache):
    with pytest.raises(ValueError) as exc:
        load.check_model_name("embeded")
    message = str(exc.value)
    assert "cannot load model 'embeded'" in message and "did you mean 'embedded'?" in message
    assert str(hub_cache) in message and "\n" not in message


def test_a_cached_id_is_suggested(hub_cache):
    _cached(hub_cache, "HuggingFaceTB/SmolLM2-135M-Instruct")
    with pytest.raises(ValueError, match="did you mean 'HuggingFaceTB/SmolLM2-135M-Instruct'"):
        load.check_model_name("HuggingFaceTB/SmolLM2-135M-Instruct/")


def test_offline_an_id_must_be_cached(hub_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match="the hub is off"):
        load.check_model_name("org/not-downloaded-yet")
    _cached(hub_cache, "org/downloaded")
    load.check_model_name("org/downloaded")


def test_a_missing_gguf_file_fails(hub_cache, tmp_path):
    (tmp_path / "model.gguf").write_bytes(b"GGUF")
    (tmp_path / "modle.jsonl").write_text("{}")
    with pytest.raises(ValueError, match=r"no GGUF file at modle.gguf; did you mean 'model\.gguf'\?$"):
        load.check_model_name("modle.gguf")
    with pytest.raises(ValueError, match=r"no GGUF file at org/x\.gguf"):
        load.check_model_name("org/x.gguf")  # a GGUF file is never fetched from the hub


def test_only_folders_and_gguf_files_are_suggested(hub_cache, tmp_path):
    (tmp_path / "embeded.jsonl").write_text("{}")
    (tmp_path / "qwen-small").mkdir()
    with pytest.raises(ValueError) as exc:
        load.check_model_name("embeded")
    assert str(exc.value).endswith("did you mean 'embedded'?")
    with pytest.raises(ValueError, match=r"did you mean 'qwen-small'\?$"):
        load.check_model_name("qwen-smal")
