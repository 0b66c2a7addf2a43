"""The packed probes must equal the naive one-forward-per-probe reference."""

import numpy as np
import pytest
from support import backend, make_tiny_llama

from eas.config import EASConfig
from eas.records import Record
from eas.scoring.batches import ScoreError
from eas.scoring.runs import score_records

RECORDS = [
    Record("a", "What is 2+3?", r"We add 2 and 3 to get 5. So the answer is \boxed{5}."),
    Record("b", "What is 12*3?", r"12*3 = 36. Final: \boxed{36}. Done"),
    Record("c", "Compute 7-4.", r"7 minus 4 leaves 3, \boxed{3}"),
]
CONFIG = EASConfig(trajectory=True)


def _score(b, records=RECORDS, config=CONFIG):
    rows = list(score_records(records, b, config))
    assert not [r for r in rows if isinstance(r, ScoreError)]
    return rows


def _assert_same(rows, ref, atol=1e-3):
    assert [r["id"] for r in rows] == [r["id"] for r in ref]
    for r, n in zip(rows, ref, strict=True):
        assert r["n_probes"] == n["n_probes"] == len(r["trajectory"])
        np.testing.assert_allclose(r["trajectory"], n["trajectory"], atol=atol, rtol=0)
        for key in ("ppl", "mean_token_entropy", "max_seq_logprob", "hes"):
            assert r[key] == pytest.approx(n[key], rel=1e-4, abs=1e-4)


@pytest.fixture(scope="module")
def tiny_naive(tiny_model, tokenizer):
    rows = _score(backend(tiny_model, tokenizer, method="naive"))
    traj = np.concatenate([r["trajectory"] for r in rows])
    assert traj.std() > 0.3, "the tiny model must give varied entropies for the comparison to mean anything"
    return rows


@pytest.mark.parametrize("chunk_size", [1, 7, 64])
@pytest.mark.parametrize("batch_tokens", [0, 4096])
def test_packed_equals_naive_tiny(tiny_model, tokenizer, tiny_naive, chunk_size, batch_tokens):
    b = backend(tiny_model, tokenizer, chunk_size=chunk_size, batch_tokens=batch_tokens)
    _assert_same(_score(b), tiny_naive)


def test_segmented_prefill_equals_naive(tiny_model, tokenizer, tiny_naive):
    b = backend(tiny_model, tokenizer, chunk_size=5, batch_tokens=4096, prefill_chunk=16)
    _assert_same(_score(b), tiny_naive)


def test_eager_attention_equals_naive(tokenizer):
    model = make_tiny_llama(len(tokenizer), attn="eager", seed=1)
    naive = _score(backend(model, tokenizer, method="naive"))
    _assert_same(_score(backend(model, tokenizer, chunk_size=4, batch_tokens=4096)), naive)


def test_answer_prefix_suffixes_of_different_lengths(tiny_model, tokenizer):
    records = [
        Record("x", "q1", r"it is \boxed{123}", answer="123"),
        Record("y", "q2", r"so \boxed{9}", answer="9"),
    ]
    config = EASConfig(trajectory=True, answer_prefix_tokens=2)
    naive = _score(backend(tiny_model, tokenizer, method="naive"), records, config)
    _assert_same(_score(backend(tiny_model, tokenizer, chunk_size=3, batch_tokens=4096), records, config), naive)


def test_packed_equals_naive_embedded(embedded_model, tokenizer):
    records = RECORDS[:1]
    naive = _score(backend(embedded_model, tokenizer, method="naive"), records)
    packed = _score(backend(embedded_model, tokenizer, chunk_size=7), records)
    _assert_same(packed, naive)
    assert 1.0 < packed[0]["mean_eas"] < 10.0  # a real model is neither certain nor uniform here


def test_sliding_window_models_refuse_the_packed_method(tokenizer):
    from eas.backends.hf.backend import HFBackend

    model = make_tiny_llama(len(tokenizer))
    model.config.sliding_window = 16
    with pytest.raises(ValueError, match="sliding-window"):
        HFBackend(model, tokenizer)
    HFBackend(model, tokenizer, engine=__import__("eas").EngineConfig(method="naive"))


def test_tracked_token_probs_packed_equal_naive_and_softmax(tiny_model, tokenizer):
    """Option-letter probabilities come from the probe logits: packed == naive == a plain softmax."""
    import torch

    from eas.scoring.probes import encode_record

    config = EASConfig(trajectory=True, track_tokens=("A", "B", "C", "D"))
    naive = _score(backend(tiny_model, tokenizer, method="naive"), RECORDS, config)
    packed = _score(backend(tiny_model, tokenizer, chunk_size=5, batch_tokens=4096), RECORDS, config)
    _assert_same(packed, naive)
    for p, n in zip(packed, naive, strict=True):
        assert set(p["option_probs"]) == {"A", "B", "C", "D"}
        for letter in "ABCD":
            assert len(p["option_probs"][letter]) == p["n_probes"]
            np.testing.assert_allclose(p["option_probs"][letter], n["option_probs"][letter], atol=1e-5, rtol=1e-3)

    # Probe t = 2 of record "a", from a full forward pass of its probe context.
    enc = encode_record(tokenizer, RECORDS[0], config)
    with torch.inference_mode():
        logits = tiny_model(input_ids=torch.tensor([enc.probe_context(2)])).logits[0, -1]
    expected = logits.softmax(-1)[list(enc.track_ids)].numpy()
    got = [packed[0]["option_probs"][s][1] for s in "ABCD"]
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-6)
    assert len(set(enc.track_ids)) == 4


def test_untracked_rows_have_no_option_probs(tiny_model, tokenizer):
    rows = _score(backend(tiny_model, tokenizer), RECORDS[:1])
    assert "option_probs" not in rows[0]
    with pytest.raises(ValueError, match="distinct"):
        EASConfig(track_tokens=("A", "A"))
