"""Broken numbers are errors, and bfloat16 is close to float32 (tolerances justified below)."""

import numpy as np
import pytest
import torch
from helpers import backend, make_tiny_llama
from test_hf_backend import RECORDS

from eas.config import EASConfig
from eas.records import Record
from eas.scoring.probes import encode_record
from eas.scoring.score import ScoreError, score_records

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
