"""Amortised EAS on a tiny seeded model: features, calibration, predicted rows, auto mode."""

import itertools
import json

import numpy as np
import pytest
from support import arithmetic_records, backend, make_tiny_llama, write_jsonl

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


def _cv_by_hand(tiny, manifest, exact_rows):
    """Grouped 5-fold CV of ridge, written out with ``np.linalg.solve`` (the module uses an
    eigendecomposition): the chosen alpha and each position's out-of-fold prediction."""
    from eas.maths.ridge import PENALTIES, grouped_folds

    rows = {r["id"]: r for r in exact_rows}
    encs = [encode_record(tiny.tokenizer, r, CONFIG) for r in _records()]
    x = np.concatenate([f.features for f in position_features(tiny, encs, manifest["layers"])])
    y = np.concatenate([rows[e.record.id]["trajectory"] for e in encs])
    fold = grouped_folds([e.record.id for e in encs for _ in range(e.n_probes)], 5, seed=0)
    best = None
    for p in PENALTIES:
        oof = np.zeros_like(y)
        for k in np.unique(fold):
            train, test = fold != k, fold == k
            mean, sd = x[train].mean(0), x[train].std(0)
            sd[sd == 0] = 1.0
            xs = (x[train] - mean) / sd
            w = np.linalg.solve(xs.T @ xs + p * train.sum() * np.eye(x.shape[1]), xs.T @ (y[train] - y[train].mean()))
            oof[test] = np.maximum(0.0, ((x[test] - mean) / sd) @ w + y[train].mean())
        error = float(((oof - y) ** 2).sum())
        if best is None or error < best[0]:
            best = (error, p * y.size, oof)
    bounds = np.cumsum([0] + [e.n_probes for e in encs])
    return best[1], [(best[2][a:b], y[a:b]) for a, b in itertools.pairwise(bounds)]


def test_the_manifest_cv_figures_are_those_of_the_held_out_predictions(tiny, head_file):
    from scipy.stats import spearmanr

    head, cal = head_file
    alpha, traces = _cv_by_hand(tiny, head.manifest, cal.exact_rows)
    cv = head.manifest["cv"]
    assert head.manifest["alpha"] == pytest.approx(alpha)
    est, ex = np.concatenate([t[0] for t in traces]), np.concatenate([t[1] for t in traces])
    assert cv["per_position_r"] == pytest.approx(np.corrcoef(est, ex)[0, 1], abs=1e-6)
    means = np.array([[a.mean(), b.mean()] for a, b in traces])
    areas = np.array([[a.sum(), b.sum()] for a, b in traces])
    assert cv["spearman_mean_eas"] == pytest.approx(spearmanr(means[:, 0], means[:, 1]).statistic, abs=1e-6)
    assert cv["spearman_eas"] == pytest.approx(spearmanr(areas[:, 0], areas[:, 1]).statistic, abs=1e-6)
    assert cv["mean_rel_error"] == pytest.approx(np.mean(np.abs(areas[:, 0] - areas[:, 1]) / areas[:, 1]), rel=1e-6)
    # 16 traces: the top 4 by mean EAS, exact and estimated.
    top = lambda v: set(np.argsort(-v, kind="stable")[:4].tolist())  # noqa: E731
    assert cv["top25_overlap"] == len(top(means[:, 0]) & top(means[:, 1])) / 4
    # EAS grows with length, which the head sees: held-out EAS ranks agree closely (measured 0.97).
    assert cv["spearman_eas"] > 0.9


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
            attr = getattr(tiny, name)
            if name != "features":
                return attr

            def features(*args, **kwargs):  # counts the feature passes, not attribute look-ups
                if head_path.exists():
                    calls.append(1)
                    if len(calls) > 3:
                        raise KeyboardInterrupt
                return attr(*args, **kwargs)

            return features

    with pytest.raises(KeyboardInterrupt):
        score_file_amortised(src, out, Dying(), CONFIG, head="auto", fraction=0.3, batch_tokens=64)
    assert (out.parent / (out.name + ".parts")).is_dir()
    score_file_amortised(src, out, tiny, CONFIG, head="auto", fraction=0.3, batch_tokens=64)
    assert out.read_text() == full.read_text()
    assert json.loads(auto_head_path(out).with_name(auto_head_path(out).name + ".json").read_text())["layers"] == [1, 2]


def _nan_after(tokenizer, word):
    """The tiny model (same weights as ``tiny``) with NaN embeddings for ``word``'s tokens:
    every position from that word on has non-finite hidden states."""
    import torch

    model = make_tiny_llama(len(tokenizer))
    with torch.no_grad():
        for i in tokenizer(word, add_special_tokens=False)["input_ids"]:
            model.model.embed_tokens.weight[i] = float("nan")
    return backend(model, tokenizer)


def test_non_finite_features_send_the_record_to_the_errors_not_into_a_row(tiny, tokenizer, head_file):
    head, _ = head_file
    good = _records(3)
    bad = Record("nan", good[0].prompt, good[0].response.replace("So", "So zebra", 1))
    rows = Amortised(head, CONFIG).score_batch([good[0], bad, good[1]], _nan_after(tokenizer, " zebra"))
    assert isinstance(rows[1], ScoreError) and rows[1].id == "nan" and not rows[1].retry
    assert "non-finite" in rows[1].reason and "eas" in rows[1].reason
    # The records without the word are predicted as by the healthy model (same weights).
    healthy = Amortised(head, CONFIG).score_batch([good[0], good[1]], tiny)
    for row, ref in zip([rows[0], rows[2]], healthy, strict=True):
        assert row["eas"] == pytest.approx(ref["eas"], rel=1e-9) and row[EAS_METHOD] == "amortised"
    # The exact path gives the same verdict on the same record.
    exact = list(score_records([bad], _nan_after(tokenizer, " zebra"), CONFIG))
    assert isinstance(exact[0], ScoreError) and "non-finite" in exact[0].reason


class _Measured:
    """A backend that returns fixed measurements (a server could return these values)."""

    def __init__(self, inner, token_logprobs):
        self.tokenizer, self.max_context = inner.tokenizer, inner.max_context
        self.token_logprobs = token_logprobs

    def measure(self, batch):
        from eas.backends.base import Measurement

        return [
            Measurement(np.full(len(e.probe_positions), 0.5), self.token_logprobs(len(e.response_ids)), None)
            for e in batch
        ]


def test_a_non_finite_exact_figure_is_an_error_not_a_null(tiny):
    """A response token of probability 0 (log-prob -inf) gives PPL inf: the record is an error."""
    zero = _Measured(tiny, lambda r: np.array([-0.5] * (r - 1) + [-np.inf]))
    (err,) = score_records(_records(1), zero, CONFIG)
    assert isinstance(err, ScoreError) and "ppl" in err.reason and "max_seq_logprob" in err.reason
    fine = _Measured(tiny, lambda r: np.full(r, -0.5))
    (row,) = score_records(_records(1), fine, CONFIG)
    assert row["ppl"] == pytest.approx(np.exp(0.5)) and row["eas"] == pytest.approx(0.5 * row["n_probes"])
