"""Flex attention: block masks from ranges equal the dense masks, and flex scores equal SDPA's.

The ranges are checked against the dense masks SDPA takes (``prefill_mask``,
``staircase_mask``, ``window_mask``), and the block classification against torch's own
``create_block_mask`` of those dense masks (on a CPU flex runs eagerly and reads only
``mask_mod``, so a wrong full/partial/absent block would not show in the scores there).
"""

import numpy as np
import pytest
import torch
from support import backend, make_tiny_llama
from test_hf_backend import RECORDS, _score

from eas.backends.hf.flex import FlexMasks, block_mask, resolve_attention
from eas.backends.hf.masks import (
    FULL,
    SLIDING,
    prefill_mask,
    prefill_ranges,
    staircase_mask,
    staircase_ranges,
    window_mask,
)
from eas.config import EASConfig
from eas.records import Record
from eas.testing.models import make_tiny_gemma

# Three records packed end to end: lengths 37, 11 and 50 (positions restart per record).
LENGTHS = (37, 11, 50)


def _packed():
    starts = np.cumsum((0, *LENGTHS))
    doc = torch.cat([torch.full((n,), k) for k, n in enumerate(LENGTHS)])
    pos = torch.cat([torch.arange(n) for n in LENGTHS])
    return torch.as_tensor(starts[:-1])[doc], doc, pos, starts


def _chunk(starts, cache_len):
    """Probes (record, t) of suffix length 3, laid out as the backend lays them out."""
    ctx_start, ctx_stop, probe_start, q_pos = [], [], [], []
    for k, t in ((0, 5), (0, 30), (2, 1), (2, 44), (1, 9), (2, 20)):
        if starts[k] + t > cache_len:
            continue
        q0 = len(q_pos)
        for j in range(3):
            ctx_start.append(int(starts[k]))
            ctx_stop.append(int(starts[k]) + t)
            probe_start.append(q0)
            q_pos.append(t + j)
    return [torch.tensor(x) for x in (ctx_start, ctx_stop, probe_start, q_pos)]


@pytest.mark.parametrize("window", [None, 4, 16])
@pytest.mark.parametrize(("start", "stop"), [(0, 98), (20, 70), (48, 98)])
def test_prefill_ranges_equal_the_dense_mask(window, start, stop):
    doc_start, doc, pos, _ = _packed()
    dense = prefill_mask(doc, start, stop)
    if window:
        dense = dense & window_mask(pos[start:stop], pos[:stop], window)
    assert torch.equal(prefill_ranges(doc_start, start, stop, window).dense(), dense)


@pytest.mark.parametrize("window", [None, 2, 6, 40])
@pytest.mark.parametrize("cache_len", [98, 60])
def test_staircase_ranges_equal_the_dense_mask(window, cache_len):
    _, _, pos, starts = _packed()
    lo, hi, first, q_pos = _chunk(starts, cache_len)
    dense = staircase_mask(lo, hi, first, cache_len)
    if window:
        dense = dense & window_mask(q_pos, torch.cat([pos[:cache_len], q_pos]), window)
    ranges = staircase_ranges(lo, hi, first, q_pos, cache_len, window)
    assert dense.any() and not dense.all()
    assert torch.equal(ranges.dense(), dense)


def _blocks(bm, full: bool):
    """``(n_q, n_kv)`` bools: the partial (or full) blocks of a BlockMask."""
    num, idx = (bm.full_kv_num_blocks, bm.full_kv_indices) if full else (bm.kv_num_blocks, bm.kv_indices)
    out = torch.zeros(idx.shape[-2:], dtype=torch.bool)
    for i in range(idx.shape[-2]):
        out[i, idx[0, 0, i, : num[0, 0, i]].long()] = True
    return out


@pytest.mark.parametrize("window", [None, 5])
@pytest.mark.parametrize("kind", ["prefill", "staircase"])
def test_block_mask_matches_torch_create_block_mask(kind, window):
    from torch.nn.attention.flex_attention import create_block_mask, create_mask

    doc_start, _, _, starts = _packed()
    if kind == "prefill":
        ranges = prefill_ranges(doc_start, 20, 98, window)
    else:
        lo, hi, first, q_pos = _chunk(starts, 98)
        ranges = staircase_ranges(lo, hi, first, q_pos, 98, window)
    dense = ranges.dense()[0, 0]
    q_len, kv_len = dense.shape
    ours = block_mask(ranges, block=16)
    ref = create_block_mask(lambda b, h, q, kv: dense[q, kv], None, None, q_len, kv_len, device="cpu", BLOCK_SIZE=16)
    partial, full = _blocks(ours, full=False), _blocks(ours, full=True)
    assert partial.any() and (~(partial | full)).any(), "some blocks are partial, some skipped"
    assert full.any() == (kind == "prefill" and window is None)  # a window of 5 fills no tile of 16
    for full in (False, True):
        assert torch.equal(_blocks(ours, full), _blocks(ref, full))
    assert torch.equal(create_mask(ours.mask_mod, None, None, q_len, kv_len, device="cpu")[0, 0], dense)


def test_flex_masks_per_layer_type():
    doc_start, _, _, _ = _packed()
    masks = FlexMasks(frozenset({FULL, SLIDING}), 4, block=16).prefill(doc_start, 0, 98)
    assert set(masks) == {FULL, SLIDING}
    assert masks[SLIDING].sparsity() > masks[FULL].sparsity()


# -- scores ---------------------------------------------------------------------------------

CONFIG = EASConfig(trajectory=True, answer_prefix_tokens=2, track_tokens=("A", "B"))
PREFIXED = [Record(r.id, r.prompt, r.response, answer="12345") for r in RECORDS]


def _assert_close(rows, ref):
    for r, n in zip(rows, ref, strict=True):
        assert r["n_probes"] == n["n_probes"]
        np.testing.assert_allclose(r["trajectory"], n["trajectory"], atol=1e-4, rtol=0)
        for s in "AB":
            np.testing.assert_allclose(r["option_probs"][s], n["option_probs"][s], atol=1e-5)
        for key in ("ppl", "mean_token_entropy", "hes"):
            assert r[key] == pytest.approx(n[key], rel=1e-5, abs=1e-5)


# Eager flex on a CPU costs a large fixed time per call, so few, large chunks: records packed
# together (segments and chunks across records), and one record alone (the prefill's first
# segment on SDPA's causal path, the later ones on block masks).
@pytest.mark.parametrize(
    ("make", "batch_tokens"),
    [(make_tiny_llama, 4096), (make_tiny_llama, 0), (make_tiny_gemma, 4096)],
    ids=["llama-packed", "llama-alone", "gemma3-mixed-packed"],
)
def test_flex_equals_sdpa(tokenizer, make, batch_tokens):
    model = make(len(tokenizer))
    engine = {"chunk_size": 24, "batch_tokens": batch_tokens, "prefill_chunk": 40}
    sdpa = backend(model, tokenizer, attention="sdpa", **engine)
    ref = _score(sdpa, PREFIXED, CONFIG)
    flex = backend(model, tokenizer, attention="flex", **engine)
    assert (sdpa.describe()["attention"], flex.describe()["attention"]) == ("sdpa", "flex")
    _assert_close(_score(flex, PREFIXED, CONFIG), ref)


def test_a_flex_attention_model_is_never_given_a_tensor_mask(tokenizer):
    """transformers' own flex integration adds a tensor mask to the scores (a boolean one
    masks nothing): such a model is scored on SDPA masks or on block masks, both exact."""
    naive = _score(backend(make_tiny_llama(len(tokenizer)), tokenizer, method="naive"))
    for attention in ("auto", "flex"):
        model = make_tiny_llama(len(tokenizer), attn="flex_attention")
        rows = _score(backend(model, tokenizer, chunk_size=64, batch_tokens=4096, attention=attention))
        assert model.config._attn_implementation != "flex_attention"
        for r, n in zip(rows, naive, strict=True):
            np.testing.assert_allclose(r["trajectory"], n["trajectory"], atol=1e-4, rtol=0)


def test_attention_choice(tokenizer, tiny_model, monkeypatch):
    from eas.backends.hf import flex

    assert resolve_attention("auto", "cpu", tiny_model) == "sdpa"
    assert resolve_attention("sdpa", "cuda", tiny_model) == "sdpa"
    monkeypatch.setattr(flex, "_torch_flex_reason", lambda cuda=False: None)
    assert resolve_attention("auto", "cuda", tiny_model) == "flex"
    monkeypatch.setattr(type(tiny_model), "_supports_flex_attn", False, raising=False)
    assert resolve_attention("auto", "cuda", tiny_model) == "sdpa"
    with pytest.raises(ValueError, match=r"does not support flex attention.*use --attention sdpa"):
        backend(tiny_model, tokenizer, attention="flex")
    with pytest.raises(ValueError, match="naive"):
        backend(tiny_model, tokenizer, method="naive", attention="flex")
    with pytest.raises(ValueError, match="attention must be"):
        backend(tiny_model, tokenizer, attention="dense")
