"""--probe-stride on a tiny seeded model: the strided runs measure the exact run's numbers
at the chosen positions, estimate EAS within the stated error, and a run's settings
refuse a resume with another stride."""

from __future__ import annotations

import numpy as np
import pytest
from support import arithmetic_records, backend, count_parts, write_jsonl

from eas.backends.spec import LoadedBackend
from eas.config import EASConfig
from eas.maths.stratified import block_sizes, probe_plan, record_seed
from eas.records import InputError, Record
from eas.scoring.batches import ScoreError
from eas.scoring.probes import encode_record
from eas.scoring.runs import RunOptions, score_file, score_records

_STEPS = " ".join(f"Step {i}: {7 * i % 13} plus {i} gives {7 * i % 13 + i}." for i in range(10))
RECORDS = [
    Record("long", "Add them all.", _STEPS + r" So \boxed{42}."),
    Record(7, "Half of it?", _STEPS[:180] + r" so \boxed{9}."),
    Record("short", "What is 2+3?", r"2+3 = \boxed{5}."),
]


def _rows(b, config):
    rows = list(score_records(RECORDS, b, config))
    assert not [r for r in rows if isinstance(r, ScoreError)]
    return rows


@pytest.fixture(scope="module")
def exact(tiny_model, tokenizer):
    return _rows(backend(tiny_model, tokenizer, chunk_size=64), EASConfig(trajectory=True))


def test_stride_one_is_exact_and_unchanged(exact):
    for r in exact:
        assert r["probe_stride"] == 1 and r["eas_se"] == 0.0 and r["n_probes_run"] == r["n_probes"]
        assert r["eas"] == float(np.sum(np.asarray(r["trajectory"], dtype=np.float64)))
        assert r["mean_eas"] == pytest.approx(r["eas"] / r["n_probes"], rel=1e-12)
        assert "trajectory_t" not in r


@pytest.mark.parametrize(("method", "k"), [("packed", 3), ("packed", 8), ("naive", 8)])
def test_strided_estimate_from_the_chosen_positions(tiny_model, tokenizer, exact, method, k):
    config = EASConfig(trajectory=True, track_tokens=("A", "B"), probe_stride=k, probe_seed=5)
    for r, x in zip(_rows(backend(tiny_model, tokenizer, method=method, chunk_size=7), config), exact, strict=True):
        n = x["n_probes"]
        plan = probe_plan(n, k, record_seed(r["id"], 5))
        assert r["trajectory_t"] == list(plan.positions) and r["n_probes_run"] == len(plan.positions)
        assert r["n_probes"] == n and r["probe_stride"] == k and len(r["option_probs"]["A"]) == len(plan.positions)
        full = np.asarray(x["trajectory"])
        probed = full[np.asarray(plan.positions) - 1]  # the exact run's H_t at the chosen t
        np.testing.assert_allclose(r["trajectory"], probed, atol=1e-3, rtol=0)
        weights = np.asarray(block_sizes(n, k))
        assert r["eas"] == pytest.approx(float(weights @ probed), abs=1e-3 * n)
        assert r["final_entropy"] == pytest.approx(x["final_entropy"], abs=1e-3)
        assert r["mean_eas"] == pytest.approx(r["eas"] / n)
        for key in ("ppl", "mean_token_entropy", "hes"):  # token statistics stay exact
            assert r[key] == pytest.approx(x[key], rel=1e-4)
        if r["eas_se"] is not None:  # the stated error: within 3 standard errors of exact
            assert abs(r["eas"] - x["eas"]) <= 3 * r["eas_se"] + 1e-6
    long_row = next(r for r in exact if r["id"] == "long")
    assert long_row["n_probes"] > 10 * k, "the long record must span many blocks"


def test_the_long_record_is_estimated_within_its_stated_error_at_every_seed(tiny_model, tokenizer, exact):
    """Over 6 seeds: |EAS_hat - EAS| <= 2 SE for most, 3 SE for all (seeded, so not flaky)."""
    b = backend(tiny_model, tokenizer, chunk_size=64)
    x = exact[0]
    within2 = 0
    for seed in range(6):
        (r,) = list(score_records(RECORDS[:1], b, EASConfig(probe_stride=4, probe_seed=seed)))
        assert abs(r["eas"] - x["eas"]) <= 3 * r["eas_se"]
        within2 += abs(r["eas"] - x["eas"]) <= 2 * r["eas_se"]
    assert within2 >= 4


def test_encoding_draws_the_same_positions_on_a_rerun(tokenizer):
    config = EASConfig(probe_stride=4, probe_seed=1)
    a = encode_record(tokenizer, RECORDS[0], config)
    assert a.probe_subset == encode_record(tokenizer, RECORDS[0], config).probe_subset
    assert a.probe_positions == a.probe_subset and a.probe_subset[-1] == a.n_probes
    exact = encode_record(tokenizer, RECORDS[0], EASConfig())
    assert exact.probe_subset is None and list(exact.probe_positions) == list(range(1, exact.n_probes + 1))


def test_probe_stride_must_be_a_positive_integer():
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ValueError, match="probe_stride"):
            EASConfig(probe_stride=bad)


class _Dies:
    """A backend that measures one batch, then fails as a kill would."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0
        self.tokenizer, self.max_context = inner.tokenizer, inner.max_context

    def describe(self):
        return self.inner.describe()

    def measure(self, batch):
        self.calls += 1
        if self.calls > 1:
            raise KeyboardInterrupt
        return self.inner.measure(batch)


def test_a_resume_with_another_stride_is_refused(tmp_path, tiny_model, tokenizer):
    src = write_jsonl(tmp_path / "in.jsonl", arithmetic_records(12))
    out = tmp_path / "scored.jsonl"
    b = backend(tiny_model, tokenizer)
    with pytest.raises(KeyboardInterrupt):
        score_file(src, out, LoadedBackend(_Dies(b)), EASConfig(probe_stride=4), RunOptions(batch_tokens=200))
    assert not out.exists() and count_parts(out) > 0
    for other in (EASConfig(), EASConfig(probe_stride=8), EASConfig(probe_stride=4, probe_seed=1)):
        with pytest.raises(InputError, match="settings"):
            score_file(src, out, LoadedBackend(b), other, RunOptions(batch_tokens=200))
    summary = score_file(src, out, LoadedBackend(b), EASConfig(probe_stride=4), RunOptions(batch_tokens=200))
    # (the same stride resumes)
    assert summary.rows == 12 and not summary.already_complete
    with pytest.raises(InputError, match="settings"):
        score_file(src, out, LoadedBackend(b), EASConfig(), RunOptions(batch_tokens=200))  # a finished output too


def test_a_record_without_probes_gets_a_row_at_any_stride(tmp_path, tiny_model, tokenizer):
    """T = 1 (the final answer is the first response token): EAS 0 over 0 probes, as the
    exact path gives, and the run goes on to the next record."""
    one = Record("t1", "What is 2+3?", "5")
    assert encode_record(tokenizer, one, EASConfig(end="response")).answer_end == 1
    assert probe_plan(0, 4, seed=3).positions == ()
    b = backend(tiny_model, tokenizer)
    exact, after = score_records([one, RECORDS[2]], b, EASConfig(end="response"))
    for k in (2, 8):
        row, next_row = score_records([one, RECORDS[2]], b, EASConfig(end="response", probe_stride=k))
        assert not isinstance(row, ScoreError), row
        assert (row["eas"], row["n_probes"], row["n_probes_run"], row["mean_eas"]) == (0.0, 0, 0, None)
        assert row["eas"] == exact["eas"] and row["final_entropy"] is None and row["probe_stride"] == k
        assert row["ppl"] == pytest.approx(exact["ppl"], rel=1e-6)
        assert next_row["id"] == "short" and next_row["n_probes"] == after["n_probes"]
