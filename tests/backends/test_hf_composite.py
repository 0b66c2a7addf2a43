"""A multimodal Gemma 3 checkpoint (``Gemma3ForConditionalGeneration``, model type ``gemma3``):
its language model's settings come from ``text_config``, its sliding layers stay windowed.

The reference is the same weights as a text-only ``Gemma3ForCausalLM``, scored with the
naive method (the model's own masks); tests/backends/test_hf_sliding.py shows that the
window changes these entropies, so a windowed layer scored as full would fail here.
"""

import numpy as np
import pytest
from support import backend
from test_hf_backend import _assert_same, _score

from eas.testing.models import make_tiny_gemma, make_tiny_gemma_multimodal


@pytest.fixture(scope="module")
def models(tokenizer):
    text = make_tiny_gemma(len(tokenizer), softcap=None)
    return text, make_tiny_gemma_multimodal(text)


@pytest.fixture(scope="module")
def text_naive(models, tokenizer):
    return _score(backend(models[0], tokenizer, method="naive"))


def test_the_language_models_settings_are_read_from_text_config(models, tokenizer):
    text, composite = models
    assert type(composite).__name__ == "Gemma3ForConditionalGeneration"
    assert not hasattr(composite.config, "vocab_size") and not hasattr(composite.config, "layer_types")
    b = backend(composite, tokenizer)
    assert b.masks.sliding and b.masks.window == text.config.sliding_window == 8
    assert b.max_context == 1024 and b.describe()["vocab_size"] == len(tokenizer)


@pytest.mark.parametrize(("chunk_size", "batch_tokens"), [(5, 0), (64, 4096)])
def test_packed_scores_equal_the_text_models_naive_scores(models, tokenizer, text_naive, chunk_size, batch_tokens):
    _, composite = models
    _assert_same(_score(backend(composite, tokenizer, chunk_size=chunk_size, batch_tokens=batch_tokens)), text_naive)


def test_naive_scores_and_a_saved_checkpoint(models, tokenizer, text_naive, tmp_path):
    from eas.backends.load import load_backend

    _, composite = models
    naive = _score(backend(composite, tokenizer, method="naive"))
    for r, n in zip(naive, text_naive, strict=True):
        np.testing.assert_allclose(r["trajectory"], n["trajectory"], atol=1e-5, rtol=0)
    composite.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded = load_backend(str(tmp_path), device="cpu", dtype="float32")
    assert type(loaded.model).__name__ == "Gemma3ForConditionalGeneration"  # what AutoModelForCausalLM gives
    _assert_same(_score(loaded), text_naive)
