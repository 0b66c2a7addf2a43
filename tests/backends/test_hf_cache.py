"""The buffered KV cache holds what a DynamicCache holds, without reallocating."""

import pytest
import torch
from transformers.cache_utils import DynamicCache

from eas.backends.hf.cache import buffered_cache


def _kv(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, 2, n, 4, generator=g), torch.randn(1, 2, n, 4, generator=g)


def test_updates_and_crops_match_a_dynamic_cache_and_keep_one_buffer():
    ours, ref = buffered_cache(capacity=20), DynamicCache()
    steps = [("update", 8), ("update", 5), ("crop", -5), ("update", 7), ("crop", -9), ("update", 3)]
    storage = None
    for i, (op, n) in enumerate(steps):
        if op == "update":
            k, v = _kv(n, seed=i)
            for layer in (0, 1):
                got, want = ours.update(k, v, layer), ref.update(k, v, layer)
                assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
        else:
            ours.crop(n)
            ref.crop(n)
        assert ours.get_seq_length() == ref.get_seq_length()
        ptr = ours.layers[0].keys.untyped_storage().data_ptr()
        assert storage in (None, ptr)  # the same buffer throughout
        storage = ptr
    assert ours.get_seq_length() == 8 + 5 - 5 + 7 - 9 + 3


def test_writing_past_the_capacity_is_an_error():
    cache = buffered_cache(capacity=6)
    cache.update(*_kv(4, seed=0), 0)
    with pytest.raises(RuntimeError, match="6 positions"):
        cache.update(*_kv(3, seed=1), 0)
