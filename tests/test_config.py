"""EngineConfig's chunking: an explicit size wins; the defaults depend on the device."""

import pytest

from eas.config import EngineConfig


def test_default_chunks_are_small_on_a_cpu_and_capped_on_a_gpu():
    """On a GPU the backend sizes chunks from free memory (tests/backends/test_hf_chunks.py)
    under a cap of 32768 query tokens, which is what the config alone can say."""
    engine = EngineConfig()
    assert engine.probes_per_chunk(on_gpu=False, suffix_tokens=5) == 256
    assert engine.prefill_tokens(on_gpu=False) == 2048
    assert engine.probes_per_chunk(on_gpu=True, suffix_tokens=4) == 8192  # 32768 query tokens
    assert engine.probes_per_chunk(on_gpu=True, suffix_tokens=10) == 3276
    assert engine.probes_per_chunk(on_gpu=True, suffix_tokens=100_000) == 1
    assert engine.prefill_tokens(on_gpu=True) == 8192


def test_an_explicit_chunk_size_wins_on_every_device():
    engine = EngineConfig(chunk_size=7, prefill_chunk=16)
    for on_gpu in (False, True):
        assert engine.probes_per_chunk(on_gpu, suffix_tokens=4) == 7
        assert engine.prefill_tokens(on_gpu) == 16


@pytest.mark.parametrize("field", ["chunk_size", "prefill_chunk"])
def test_sizes_below_one_are_refused(field):
    with pytest.raises(ValueError, match=field):
        EngineConfig(**{field: 0})


@pytest.mark.parametrize(("field", "value"), [("attention", "dense"), ("head", "fp16"), ("batch_tokens", -1)])
def test_unknown_kernels_and_negative_batches_are_refused(field, value):
    with pytest.raises(ValueError, match=field):
        EngineConfig(**{field: value})
