"""GPU chunk sizing from free memory: a pure function, checked with made-up numbers."""

import pytest

from eas.backends.hf.chunks import ModelShape, probe_tokens_for_memory, probes_per_chunk

GiB = 2**30
# Qwen2-1.5B: 28 layers, hidden 1536, MLP 8960, 12 heads / 2 KV heads of 128, bfloat16.
QWEN = ModelShape(layers=28, hidden=1536, intermediate=8960, heads=12, kv_heads=2, head_dim=128, bytes=2)


def _needed(q, shape, cache, flex, head):
    """The memory the module's docstring budgets for a chunk of q query tokens (derived again here)."""
    pairs = q * (cache + q)
    mask = pairs * shape.layer_kinds * (2 / 128 if flex else 1 + shape.bytes)
    act = shape.bytes * (
        3 * shape.hidden + (2 * shape.heads + 2 * shape.kv_heads) * shape.head_dim + 3 * shape.intermediate
    )
    return head + (cache + q) * shape.layers * 2 * shape.kv_heads * shape.head_dim * shape.bytes + q * act + mask


@pytest.mark.parametrize("flex", [False, True])
@pytest.mark.parametrize(("free", "cache"), [(70 * GiB, 4096), (70 * GiB, 60_000), (6 * GiB, 16_384), (2 * GiB, 100)])
def test_the_largest_chunk_that_fits(free, cache, flex):
    head = GiB
    q = probe_tokens_for_memory(free, QWEN, cache, flex=flex, head_bytes=head, fraction=0.8, max_tokens=10**9)
    assert q > 0
    assert _needed(q, QWEN, cache, flex, head) <= 0.8 * free < _needed(q + 1, QWEN, cache, flex, head)


def test_flex_fits_more_than_dense_masks_and_the_cap_holds():
    dense = probe_tokens_for_memory(20 * GiB, QWEN, 60_000, flex=False, max_tokens=10**9)
    flex = probe_tokens_for_memory(20 * GiB, QWEN, 60_000, flex=True, max_tokens=10**9)
    assert flex > 3 * dense
    assert probe_tokens_for_memory(20 * GiB, QWEN, 60_000, flex=True, max_tokens=4096) == 4096
    assert probe_tokens_for_memory(GiB, QWEN, 100_000, flex=True) == 0  # the cache alone does not fit


def test_shape_of_a_config_and_probes_per_chunk():
    from transformers import Qwen2Config

    config = Qwen2Config(
        hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2
    )
    shape = ModelShape.of(config, 2)
    assert shape == QWEN
    assert shape.kv_bytes == 28 * 2 * 2 * 128 * 2
    assert probes_per_chunk(8192, 4) == 2048 and probes_per_chunk(3, 4) == 1 and probes_per_chunk(0, 4) == 1


def test_the_backend_sizes_gpu_chunks_from_free_memory(tiny_model, tokenizer, monkeypatch):
    """On a GPU (faked: the device and its free memory) the chunk follows the free memory."""
    import torch
    from support import backend

    b = backend(tiny_model, tokenizer)
    assert b._probes_per_chunk(500, 4) == 256  # a CPU: the constant default
    b.device = torch.device("cuda")
    for free in (10 * 2**20, 200 * 2**20):
        monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device, free=free: (free, 80 * GiB))
        tokens = probe_tokens_for_memory(
            free, b.shape, 500, flex=False, head_bytes=b.head.workspace_bytes, fraction=0.8, max_tokens=32768
        )
        assert b._probes_per_chunk(500, 4) == probes_per_chunk(tokens, 4)
    assert backend(tiny_model, tokenizer, chunk_size=7)._probes_per_chunk(500, 4) == 7


def test_batches_are_larger_on_a_gpu(tiny_model, tokenizer):
    """Full chunks: a GPU packs more records into a batch, so their probes share forward passes."""
    import torch
    from support import backend

    from eas.config import CPU_BATCH_TOKENS, GPU_BATCH_TOKENS, EngineConfig

    assert EngineConfig().batch_tokens_for(on_gpu=False) == CPU_BATCH_TOKENS < GPU_BATCH_TOKENS
    assert EngineConfig().batch_tokens_for(on_gpu=True) == GPU_BATCH_TOKENS
    assert EngineConfig(batch_tokens=0).batch_tokens_for(on_gpu=True) == 0
    b = backend(tiny_model, tokenizer)
    assert b.batch_tokens == CPU_BATCH_TOKENS
    b.device = torch.device("cuda")
    assert b.batch_tokens == GPU_BATCH_TOKENS
