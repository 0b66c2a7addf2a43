"""Helpers for the tests: tiny seeded models, backends, input files."""

from __future__ import annotations

import json
from pathlib import Path

from eas.config import EngineConfig


def make_tiny_llama(vocab_size: int, attn: str = "sdpa", seed: int = 0):
    """A 2-layer Llama with seeded, deliberately large weights (peaked, varied outputs)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        initializer_range=0.5,
        tie_word_embeddings=False,
        attn_implementation=attn,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config).eval()


def backend(model, tokenizer, **engine):
    from eas.backends.hf import HFBackend

    return HFBackend(model, tokenizer, EngineConfig(**engine))


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
