"""The float32 LM head in row blocks gives the numbers of the full-logits computation."""

import numpy as np
import pytest
import torch
from support import make_tiny_llama

from eas.backends.hf.head import Float32Head, check_against_model
from eas.maths.entropy import entropy_bits_from_logits, logprobs_and_entropy_from_logits
from eas.testing.models import make_tiny_gemma


def _inputs(vocab: int, n: int = 40):
    return torch.randint(0, vocab, (1, n), generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("block_bytes", [1, 3 * 4 * 49152, 2**30])
def test_blocked_head_equals_full_logits(tokenizer, block_bytes):
    """1 byte: one row a time; 3 rows of float32 logits a block; 1 GiB: everything at once."""
    model = make_tiny_llama(len(tokenizer), seed=2)
    ids = _inputs(len(tokenizer))
    with torch.inference_mode():
        logits = model(input_ids=ids).logits[0, :-1]  # (n-1, V): the old path, all rows at once
        targets = ids[0, 1:]
        lp_ref, h_ref = logprobs_and_entropy_from_logits(logits, targets)
        probs_ref = logits.softmax(-1)[:, [5, 17, 900]]
        head = Float32Head(model, block_bytes=block_bytes)
        st = head.stats(model.model(input_ids=ids).last_hidden_state[0, :-1], targets, track=(5, 17, 900))
    assert head.rows == max(1, block_bytes // (4 * len(tokenizer)))
    np.testing.assert_allclose(st.entropies, h_ref.double().numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(st.logprobs, lp_ref.double().numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(st.tracked, probs_ref.double().numpy(), rtol=1e-4, atol=1e-9)
    assert h_ref.std() > 0.3  # varied rows


def test_bf16_head_is_float32_not_bf16_logits(tokenizer):
    """A bf16 model: the head upcasts hidden states and weights (in vocabulary slices), so the
    entropies equal a float64 computation from the same bf16 values, unlike bf16 logits."""
    model = make_tiny_llama(len(tokenizer), seed=2).to(torch.bfloat16)
    ids = _inputs(len(tokenizer))
    with torch.inference_mode():
        hidden = model.model(input_ids=ids).last_hidden_state[0]  # (n, d) bf16
        exact = entropy_bits_from_logits(hidden.double() @ model.lm_head.weight.double().T).numpy()
        head = Float32Head(model, block_bytes=4 * 64 * 4096)  # 5 rows a block, 4096-token vocabulary slices
        assert head.vocab_block == 4096 and head.rows == 5
        ours = head.stats(hidden).entropies
        rounded = entropy_bits_from_logits(model(input_ids=ids).logits[0]).double().numpy()  # bf16 logits
    np.testing.assert_allclose(ours, exact, atol=1e-4, rtol=0)
    assert np.abs(rounded - exact).max() > 10 * np.abs(ours - exact).max()


def test_softcap_is_applied_and_checked(tokenizer):
    model = make_tiny_gemma(len(tokenizer), softcap=5.0)
    head = Float32Head(model)
    with torch.inference_mode():
        check_against_model(model, model.model, head)
        head.softcap = None  # a head that forgets the model's soft-cap is caught
        with pytest.raises(ValueError, match="does not reproduce"):
            check_against_model(model, model.model, head)


def test_nan_hidden_row_gives_nan_entropy_only_there(tokenizer):
    model = make_tiny_llama(len(tokenizer))
    hidden = torch.randn(6, model.config.hidden_size, generator=torch.Generator().manual_seed(1))
    hidden[3, 0] = float("nan")
    st = Float32Head(model, block_bytes=2 * 4 * len(tokenizer)).stats(hidden, torch.arange(6))
    assert np.isnan(st.entropies[3]) and np.isnan(st.logprobs[3])
    assert np.isfinite(np.delete(st.entropies, 3)).all()


def test_bf16_products_within_0005_bits_of_the_float32_head(embedded_model, tokenizer):
    """A bfloat16 model: bf16 x bf16 products summed in float32 (the tensor cores' arithmetic,
    emulated on a CPU) against the float32 head: every probe of a tiny model's scoring run,
    and the embedded model's distributions over real text."""
    from support import backend
    from test_hf_backend import RECORDS, _score

    tiny = copy_to_bf16(make_tiny_llama(len(tokenizer), seed=3))
    ref = _score(backend(tiny, tokenizer, head="float32"))
    fast = backend(tiny, tokenizer, head="bf16")
    assert fast.describe()["head"] == "bf16" and fast.head.workspace_bytes < Float32Head(tiny).workspace_bytes
    for r, n in zip(_score(fast), ref, strict=True):
        assert np.abs(np.subtract(r["trajectory"], n["trajectory"])).max() <= 0.005
        assert r["ppl"] == pytest.approx(n["ppl"], rel=1e-4)

    model = copy_to_bf16(embedded_model)
    text = " ".join(r.prompt + " " + r.response for r in RECORDS)
    ids = torch.tensor([tokenizer(text)["input_ids"]])
    with torch.inference_mode():
        h = model.model(input_ids=ids).last_hidden_state[0]  # (n, d) bfloat16
        exact = entropy_bits_from_logits(Float32Head(model).logits(h))
        ours = entropy_bits_from_logits(Float32Head(model, products="bf16").logits(h))
        rounded = entropy_bits_from_logits(torch.nn.functional.linear(h, model.lm_head.weight).float())
    # Rounding the logits to bf16 instead (a plain bf16 matmul) would not pass: the bound can fail.
    assert (exact - ours).abs().max() <= 0.005 < (exact - rounded).abs().max()


def test_head_products_choice(tiny_model):
    from eas.backends.hf.head import resolve_products

    assert resolve_products("auto", tiny_model) == "float32"  # float32 weights on a CPU
    assert resolve_products("auto", copy_to_bf16(tiny_model)) == "float32"  # bf16, but not on CUDA
    with pytest.raises(ValueError, match="bfloat16 model"):
        Float32Head(tiny_model, products="bf16")


def copy_to_bf16(model):
    import copy

    return copy.deepcopy(model).to(torch.bfloat16)
