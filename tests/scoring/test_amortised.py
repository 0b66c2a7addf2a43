"""Amortised EAS on a tiny seeded model: features, calibration, predicted rows, auto mode."""

import json

import numpy as np
import pytest
from helpers import arithmetic_records, backend, make_tiny_llama, write_jsonl

from eas.backends.hf.features import default_layers, position_features
from eas.backends.spec import LoadedBackend
from eas.config import EASConfig
from eas.maths.entropy import entropy_bits_from_logits
from eas.records import InputError, Record
from eas.scoring.batches import ScoreError
from eas.scoring.calibration import AutoAmortised, auto_head_path, calibrate, calibration_slice
from eas.scoring.estimators.amortised import EAS_METHOD, Amortised, check_head_for
from eas.scoring.probes import encode_record
from eas.scoring.runs import RunOptions, score_file, score_records
from eas.storage.files import read_table
from eas.storage.heads import load_head, save_head

CONFIG = EASConfig(trajectory=True)


def score_file_amortised(src, out, backend, config, *, head, fraction, seed=0, batch_tokens=2048):
    """``eas score --amortised auto``'s call: the auto estimator, its head beside ``out``."""
    assert head == "auto"
    auto = AutoAmortised(config, fraction, seed, head_path=str(auto_head_path(out)))
    return score_file(src, out, LoadedBackend(backend), auto, RunOptions(batch_tokens=batch_tokens))


def _records(n=16):
    return [Record(r["id"], r["prompt"], r["response"]) for r in arithmetic_records(n)]


@pytest.fixture(scope="module")
def tiny(tiny_model, tokenizer):
    return backend(tiny_model, tokenizer)


@pytest.fixture(scope="module")
def head_file(tiny, tmp_path_factory):
    cal = calibrate(_records(), tiny, CONFIG)
    path = tmp_path_factory.mktemp("head") / "head.safetensors"
    save_head(path, cal.head, cal.manifest)
    return load_head(path), cal


def test_features_sit_at_x_t(tiny, tokenizer):
    enc = encode_record(tokenizer, _records()[3], CONFIG)
    (f,) = position_features(tiny, [enc], default_layers(tiny.model))
    width = tiny.model.config.hidden_size
    assert f.features.shape == (enc.n_probes, 2 * width + 1)
    # The last block's state at x_t, through the LM head, gives the entropy of the next token.
    import torch

    last = torch.tensor(f.features[:, width : 2 * width], dtype=torch.float32)
    h = entropy_bits_from_logits(tiny.model.lm_head(last)).detach().double().numpy()
    np.testing.assert_allclose(h, f.features[:, -1], atol=1e-4)
    np.testing.assert_allclose(f.features[:, -1], f.token_entropies[1 : enc.answer_end])


def test_calibration_reports_and_keeps_exact_rows(tiny, head_file):
    head, cal = head_file
    exact = [r for r in score_records(_records(), tiny, CONFIG) if not isinstance(r, ScoreError)]
    assert [{k: v for k, v in r.items() if k != EAS_METHOD} for r in cal.exact_rows] == exact
    man = head.manifest
    assert man["layers"] == [1, 2] and man["n_features"] == 2 * 64 + 1
    assert man["calibration"]["traces"] == len(exact) and man["calibration"]["skipped"] == 0
    assert man["calibration"]["positions"] == sum(r["n_probes"] for r in exact)
    assert -1 <= man["cv"]["per_position_r"] <= 1 and 0 <= man["cv"]["top25_overlap"] <= 1


def test_predicted_rows_are_labelled_and_consistent(tiny, head_file):
    head, _ = head_file
    records = [*_records(20)[16:], Record("bad", "q", "no box")]
    rows = Amortised(head, CONFIG).score_batch(records, tiny)
    exact = list(score_records(records, tiny, CONFIG))
    assert isinstance(rows[-1], ScoreError) and isinstance(exact[-1], ScoreError)
    for row, ex in zip(rows[:-1], exact[:-1], strict=True):
        assert row[EAS_METHOD] == "amortised" and EAS_METHOD not in ex
        assert len(row["trajectory"]) == row["n_probes"] == ex["n_probes"]
        assert row["eas"] == pytest.approx(sum(row["trajectory"]))
        assert row["mean_eas"] == pytest.approx(row["eas"] / row["n_probes"])
        assert row["final_entropy"] == pytest.approx(row["trajectory"][-1])
        for key in ("ppl", "mean_token_entropy", "max_seq_logprob", "hes", "response_tokens"):
            assert row[key] == pytest.approx(ex[key], rel=1e-4)


def test_a_head_for_another_model_is_refused(tokenizer, tiny, head_file):
    head, _ = head_file
    other = backend(make_tiny_llama(len(tokenizer), seed=11), tokenizer)
    with pytest.raises(InputError, match="calibrated for model"):
        check_head_for(head, other, CONFIG)
    with pytest.raises(InputError, match="trigger"):
        check_head_for(head, tiny, EASConfig(trigger="Answer: "))


def test_auto_keeps_exact_values_for_the_slice_and_resumes(tiny, tmp_path):
    rows = arithmetic_records(24)
    rows[5]["response"] = "no final answer"
    src = write_jsonl(tmp_path / "pool.jsonl", rows)
    out = tmp_path / "scored.jsonl"
    summary = score_file_amortised(src, out, tiny, CONFIG, head="auto", fraction=0.25, seed=1)
    assert summary.rows == 23 and summary.errors == 1
    scored = {r["id"]: r for r in read_table(out)}
    chosen = {rows[i]["id"] for i in calibration_slice(len(rows), 0.25, 1)} - {"r5"}
    assert {i for i, r in scored.items() if r[EAS_METHOD] == "exact"} == chosen and len(chosen) >= 5
    exact_out = tmp_path / "exact.jsonl"
    score_file(src, exact_out, LoadedBackend(tiny), CONFIG)
    exact = {r["id"]: r for r in read_table(exact_out)}
    head_path = auto_head_path(out)
    in_slice = [Record(r["id"], r["prompt"], r["response"]) for r in rows if r["id"] in chosen]
    kept = {r["id"]: r for r in calibrate(in_slice, tiny, CONFIG, batch_tokens=0).exact_rows}
    for i in chosen:
        assert scored[i] == kept[i]  # the calibration's exact rows, unchanged
        # ... which are exact EAS (packed in other batches than a plain run: float rounding apart)
        np.testing.assert_allclose(scored[i]["trajectory"], exact[i]["trajectory"], atol=1e-4)
        assert scored[i]["eas"] == pytest.approx(exact[i]["eas"], rel=1e-6)
    assert load_head(head_path).manifest["calibration_auto"]["calibration_traces"] == 8
    # The same command again: complete, nothing recomputed; another slice refuses to mix.
    assert score_file_amortised(src, out, tiny, CONFIG, head="auto", fraction=0.25, seed=1).already_complete
    with pytest.raises(InputError, match="other settings"):
        score_file_amortised(src, out, tiny, CONFIG, head="auto", fraction=0.5, seed=1)


def test_auto_resumes_prediction_from_parts(tiny, tmp_path):
    src = write_jsonl(tmp_path / "pool.jsonl", arithmetic_records(16))
    out = tmp_path / "scored.jsonl"
    full = tmp_path / "full.jsonl"
    score_file_amortised(src, full, tiny, CONFIG, head="auto", fraction=0.3, batch_tokens=64)
    calls = []
    head_path = auto_head_path(out)

    class Dying:
        """The tiny backend, killed a few batches into the prediction phase (after calibrating)."""

        def __getattr__(self, name):
            if name == "features" and head_path.exists():
                calls.append(1)
                if len(calls) > 3:
                    raise KeyboardInterrupt
            return getattr(tiny, name)

    with pytest.raises(KeyboardInterrupt):
        score_file_amortised(src, out, Dying(), CONFIG, head="auto", fraction=0.3, batch_tokens=64)
    assert (out.parent / (out.name + ".parts")).is_dir()
    score_file_amortised(src, out, tiny, CONFIG, head="auto", fraction=0.3, batch_tokens=64)
    assert out.read_text() == full.read_text()
    assert json.loads(auto_head_path(out).with_name(auto_head_path(out).name + ".json").read_text())["layers"] == [1, 2]
