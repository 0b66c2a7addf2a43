"""The cached folder is the GGUF model: same token ids, bitwise-same logits.

The reference is transformers' own GGUF loader, run on the file directly; the cached
folder is what ``--model PATH.gguf`` (and ``"embedded"``) load.
"""

from __future__ import annotations

import pytest

TEXTS = [
    "Hello world",
    "  leading spaces\n\ttabs and ünïcödé",
    "Let x = 3.14159; then 2x = 6.28318. \\boxed{6.28}",
]


def _same_model(gguf_file, folder):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ref_tok = AutoTokenizer.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
    tok = AutoTokenizer.from_pretrained(folder)
    for text in TEXTS:
        assert tok(text).input_ids == ref_tok(text).input_ids
        assert tok(text, add_special_tokens=False).input_ids == ref_tok(text, add_special_tokens=False).input_ids
    ids = tok(TEXTS[2], return_tensors="pt").input_ids
    with torch.inference_mode():
        ref = AutoModelForCausalLM.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name, dtype=torch.float32)
        ref_logits = ref.eval()(ids).logits
        del ref
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, use_safetensors=True)
        logits = model.eval()(ids).logits
    assert logits.shape == ref_logits.shape
    assert torch.equal(logits, ref_logits)


def test_the_embedded_cache_is_the_gguf_model(embedded_dir):
    from eas.backends.sources.embedded import gguf_path

    _same_model(gguf_path(), embedded_dir)


@pytest.mark.slow
def test_the_gemma_cache_is_the_gguf_model(gemma_gguf, gemma_dir):
    _same_model(gemma_gguf, gemma_dir)
