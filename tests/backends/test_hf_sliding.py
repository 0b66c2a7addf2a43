"""Packed probes on a model with mixed sliding-window and full layers equal the naive reference.

A tiny seeded Gemma 3 (window 8, shorter than every trace) with three sliding layers and
one full layer: the naive method runs the model with its own masks, the packed one with
our per-layer-type staircase masks, so agreement checks the window rule itself.
"""

import numpy as np
import pytest
from support import backend
from test_hf_backend import RECORDS, _assert_same, _score

from eas.config import EASConfig
from eas.testing.models import make_tiny_gemma


@pytest.fixture(scope="module", params=["sdpa", "eager"])
def gemma_and_naive(request, tokenizer):
    model = make_tiny_gemma(len(tokenizer), attn=request.param)
    naive = _score(backend(model, tokenizer, method="naive"))
    return model, naive


def test_the_window_matters(tokenizer, gemma_and_naive):
    """Without its window the same model gives other entropies: the test below can fail."""
    model, naive = gemma_and_naive
    assert min(r["response_tokens"] for r in naive) > model.config.sliding_window
    wide = make_tiny_gemma(len(tokenizer), attn=model.config._attn_implementation, window=1024)
    rows = _score(backend(wide, tokenizer, method="naive"))
    gap = max(np.abs(np.subtract(a["trajectory"], b["trajectory"])).max() for a, b in zip(rows, naive, strict=True))
    assert gap > 0.1
    traj = np.concatenate([r["trajectory"] for r in naive])
    assert traj.std() > 0.1, "varied entropies, for the comparison to mean anything"


@pytest.mark.parametrize(
    ("chunk_size", "batch_tokens", "prefill_chunk"), [(1, 0, 2048), (7, 4096, 2048), (64, 4096, 16), (5, 0, 9)]
)
def test_sliding_window_packed_equals_naive(tokenizer, gemma_and_naive, chunk_size, batch_tokens, prefill_chunk):
    model, naive = gemma_and_naive
    b = backend(model, tokenizer, chunk_size=chunk_size, batch_tokens=batch_tokens, prefill_chunk=prefill_chunk)
    _assert_same(_score(b), naive)


def test_sliding_window_with_answer_prefix_and_tracked_tokens(tokenizer, gemma_and_naive):
    model, _ = gemma_and_naive
    config = EASConfig(trajectory=True, answer_prefix_tokens=2, track_tokens=("A", "B"))
    records = [r.__class__(r.id, r.prompt, r.response, answer="12345") for r in RECORDS]
    naive = _score(backend(model, tokenizer, method="naive"), records, config)
    packed = _score(backend(model, tokenizer, chunk_size=6, batch_tokens=4096), records, config)
    _assert_same(packed, naive)
    for p, n in zip(packed, naive, strict=True):
        for s in "AB":
            np.testing.assert_allclose(p["option_probs"][s], n["option_probs"][s], atol=1e-5, rtol=1e-3)


def test_only_full_and_sliding_layers_are_packed(tokenizer):
    from eas.backends.hf.backend import HFBackend, packed_unsupported_reason

    model = make_tiny_gemma(len(tokenizer), layer_types=("sliding_attention", "full_attention"))
    assert packed_unsupported_reason(model) is None
    model.config.layer_types = ["sliding_attention", "linear_attention"]
    assert "linear_attention" in packed_unsupported_reason(model)
    with pytest.raises(ValueError, match="linear_attention"):
        HFBackend(model, tokenizer)
