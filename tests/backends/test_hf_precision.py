"""Broken numbers are errors, and bfloat16 is close to float32 (tolerances justified below)."""

import numpy as np
import pytest
import torch
from support import backend, make_tiny_llama
from test_hf_backend import RECORDS

from eas.config import EASConfig
from eas.records import Record
from eas.scoring.batches import ScoreError
from eas.scoring.probes import encode_record
from eas.scoring.runs import score_records

TRIGGER = " Hence:"  # its last token appears in no record below, so poisoning it hits the probes only
CONFIG = EASConfig(trajectory=True, trigger=TRIGGER)


def _poisoned(tokenizer, token_id: int):
    model = make_tiny_llama(len(tokenizer), seed=5)
    with torch.no_grad():
        model.model.embed_tokens.weight[token_id] = float("nan")
    return model


def _errors(rows):
    return {r.id: r.reason for r in rows if isinstance(r, ScoreError)}


@pytest.mark.parametrize("method", ["packed", "naive"])
def test_non_finite_probe_logits_are_a_record_error_with_the_position(tokenizer, method):
    enc = encode_record(tokenizer, RECORDS[0], CONFIG)
    last = enc.suffix_ids[-1]
    assert last not in enc.prompt_ids + enc.response_ids and last > 8
    model = _poisoned(tokenizer, last)
    rows = list(score_records(RECORDS[:1], backend(model, tokenizer, method=method, chunk_size=1), CONFIG))
    # packed runs the probes from the last back (chunk size 1: t = T-1 first); naive from t = 1.
    t = enc.answer_end - 1 if method == "packed" else 1
    assert _errors(rows) == {"a": f"backend error: non-finite logits at probe t={t}"}


def test_non_finite_prefill_logits_name_the_response_token_and_spare_the_batch(tokenizer):
    records = [RECORDS[1], Record("z", "What is 2+2?", r"Two and two: \boxed{4}")]
    encs = [encode_record(tokenizer, r, CONFIG) for r in records]
    # poison " Final" in record "b": the row of x_{j+1} itself is fine, the one predicting x_{j+2} is not
    j = encs[0].response_ids.index(tokenizer(" Final", add_special_tokens=False)["input_ids"][0])
    token = encs[0].response_ids[j]
    assert token not in encs[0].prompt_ids + encs[0].response_ids[:j] + encs[1].prompt_ids + encs[1].response_ids
    model = make_tiny_llama(len(tokenizer), seed=5)
    # NaN in the final hidden state of the rows whose input is that token, and only there
    # (a NaN embedding would reach every row: attention multiplies masked NaN keys by 0).
    inputs = {}
    model.model.register_forward_pre_hook(lambda m, a, kw: inputs.update(ids=kw["input_ids"][0]), with_kwargs=True)
    model.model.norm.register_forward_hook(
        lambda m, a, out: out.masked_fill((inputs["ids"] == token)[None, :, None], float("nan"))
    )
    rows = list(score_records(records, backend(model, tokenizer, batch_tokens=4096), CONFIG))
    n = len(encs[0].response_ids)
    assert _errors(rows) == {"b": f"backend error: non-finite logits at response token {j + 2} of {n} (x_{j + 2})"}
    assert np.isfinite(rows[1]["eas"]) and rows[1]["eas"] > 0


# bfloat16 keeps 8 significant bits: each operation rounds by up to 2^-9 (0.2 %) relative.
# Packed and naive run the same maths through different kernels and shapes (masks, segments,
# chunks), so their bf16 roundings fall at different places: per probe they differ by
# rounding noise, which the per-record mean averages down. The tiny Llama has deliberately
# large weights (initializer range 0.5), which amplifies rounding: a worst case. Measured on
# the 12 bundled traces: packed vs naive in bf16 at most 0.115 bits per probe and 0.0033 bits
# in mean EAS; bf16 vs float32 at most 0.063 bits in mean EAS (1.0 % of EAS). The bounds
# below are about twice those. In float32 packed == naive within 1e-3 bits (test_hf_backend).
BF16_PROBE_BITS = 0.25  # packed vs naive, per probe
BF16_MEAN_BITS = 0.01  # packed vs naive, mean EAS of a record
BF16_VS_FP32_MEAN_BITS = 0.15  # bf16 vs float32, mean EAS of a record
BF16_VS_FP32_EAS_REL = 0.025  # bf16 vs float32, EAS relative


def test_bfloat16_packed_matches_naive_and_float32_on_the_bundled_traces(tokenizer):
    from pathlib import Path

    import eas
    from eas.storage.inputs import FieldMap, read_records

    path = Path(eas.__file__).parent / "data" / "example_traces.jsonl"
    records = [r for r in read_records(path, FieldMap()) if isinstance(r, Record)]
    assert len(records) == 12
    config = EASConfig(trajectory=True)
    fp32 = make_tiny_llama(len(tokenizer))
    bf16 = make_tiny_llama(len(tokenizer)).to(torch.bfloat16)

    def score(model, **engine):
        rows = list(score_records(records, backend(model, tokenizer, **engine), config))
        assert not _errors(rows)
        return rows

    ref = score(fp32, chunk_size=7, batch_tokens=4096)
    packed = score(bf16, chunk_size=7, batch_tokens=4096)
    naive = score(bf16, method="naive")
    for p, n, f in zip(packed, naive, ref, strict=True):
        assert np.abs(np.subtract(p["trajectory"], n["trajectory"])).max() <= BF16_PROBE_BITS
        assert abs(p["mean_eas"] - n["mean_eas"]) <= BF16_MEAN_BITS
        assert abs(p["mean_eas"] - f["mean_eas"]) <= BF16_VS_FP32_MEAN_BITS
        assert abs(p["eas"] - f["eas"]) <= BF16_VS_FP32_EAS_REL * f["eas"]
    # the comparison means something: bf16 is not float32 here
    assert max(abs(p["mean_eas"] - f["mean_eas"]) for p, f in zip(packed, ref, strict=True)) > 1e-3
