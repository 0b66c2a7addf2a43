"""Shared fixtures: the embedded model's tokenizer and model, and tiny seeded Llamas."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import make_tiny_llama

# Tests never reach a model hub: everything loads from packages or is built in-process.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def embedded_dir() -> Path:
    from eas.backends.embedded import embedded_model_dir

    return embedded_model_dir()


@pytest.fixture(scope="session")
def tokenizer(embedded_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(embedded_dir)


@pytest.fixture(scope="session")
def tiny_model(tokenizer):
    return make_tiny_llama(len(tokenizer))


@pytest.fixture(scope="session")
def embedded_model(embedded_dir):
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(embedded_dir, dtype=torch.float32, attn_implementation="sdpa").eval()


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory, tokenizer) -> Path:
    """A tiny seeded Llama (context 1024) with the SmolLM2 tokenizer, saved as a model folder."""
    path = tmp_path_factory.mktemp("tiny-model")
    make_tiny_llama(len(tokenizer), seed=3).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
