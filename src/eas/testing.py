"""Tiny seeded models for tests, benchmarks and smoke runs (no download, built in-process)."""

from __future__ import annotations

from typing import Any


def make_tiny_llama(vocab_size: int, attn: str = "sdpa", seed: int = 0) -> Any:
    """A 2-layer Llama with seeded, deliberately large weights (peaked, varied outputs).

    ``vocab_size`` must cover the tokenizer it is paired with (e.g. the embedded
    model's), so that real text can be scored through it.
    """
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
