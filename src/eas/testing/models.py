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


def make_tiny_gemma(
    vocab_size: int,
    attn: str = "sdpa",
    seed: int = 0,
    window: int = 8,
    layer_types: tuple[str, ...] = ("sliding_attention", "full_attention", "sliding_attention", "sliding_attention"),
    softcap: float | None = 30.0,
) -> Any:
    """A tiny Gemma 3 (text) with mixed sliding-window and full layers and seeded weights.

    ``window`` is the sliding window (a query sees itself and the ``window - 1`` tokens
    before it); keep it shorter than the traces so that the window matters. Every weight
    is drawn from N(0, 0.3) (Gemma's own init leaves the norms at zero, which hides
    attention patterns). ``softcap`` is the final logit soft-cap (Gemma 2's 30.0).
    """
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    config = Gemma3TextConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=len(layer_types),
        num_attention_heads=4,
        num_key_value_heads=1,
        head_dim=8,
        query_pre_attn_scalar=8,
        sliding_window=window,
        max_position_embeddings=1024,
        layer_types=list(layer_types),
        final_logit_softcapping=softcap,
        tie_word_embeddings=True,
        attn_implementation=attn,
    )
    torch.manual_seed(seed)
    model = Gemma3ForCausalLM(config)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.3)
    return model.eval()


def make_tiny_gemma_multimodal(text_model: Any) -> Any:
    """A ``Gemma3ForConditionalGeneration`` (what a multimodal ``gemma3`` checkpoint loads as)
    whose language model carries ``text_model``'s weights (a ``make_tiny_gemma`` model with
    ``softcap=None``, as Gemma 3 has), beside a one-layer vision tower that text never uses.
    """
    import torch
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration, SiglipVisionConfig

    vision = SiglipVisionConfig(
        hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=28, patch_size=14
    )
    vocab = text_model.config.vocab_size
    config = Gemma3Config(
        text_config=text_model.config.to_dict(),
        vision_config=vision.to_dict(),
        mm_tokens_per_image=4,
        image_token_index=vocab - 1,
        boi_token_index=vocab - 2,
        eoi_token_index=vocab - 3,
    )
    config._attn_implementation = text_model.config._attn_implementation
    torch.manual_seed(0)
    model = Gemma3ForConditionalGeneration(config)
    model.model.language_model.load_state_dict(text_model.model.state_dict())
    model.lm_head.weight = model.model.language_model.embed_tokens.weight  # tied, as in Gemma 3
    return model.eval()
