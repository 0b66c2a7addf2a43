"""Evaluation, pass-rate selection and the selection experiment on tiny models."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
from support import read_jsonl, write_jsonl

from eas.cli import main
from eas.config import SamplingConfig
from eas.records import InputError, Record
from eas.sampling.questions import Question
from eas.selection.builtin_pool import make_pool, make_test
from eas.selection.evaluation import evaluate, load_eval_backend, pool_pass_rates
from eas.selection.experiment import ExperimentConfig, markdown, results_table, run_experiment, t_interval
from eas.selection.training import TrainConfig

pytest.importorskip("trl")

SAMPLING = SamplingConfig(temperature=1.0, max_new_tokens=8, batch_size=16)


def test_t_interval_and_table_maths():
    mean, half = t_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(4.302653 * 1.0 / math.sqrt(3), rel=1e-5)
    mean, half = t_interval([5.0])
    assert mean == 5.0 and math.isnan(half)  # one seed: no interval, never "± 0.0"
    results = {"random": {0: [0.5, 0.4], 1: [0.6, 0.4]}, "eas": {0: [0.55, 0.5], 1: [0.7, 0.4]}}
    rows = results_table(results, top=2)
    assert rows[0]["random"] == pytest.approx(55.0)
    assert rows[0]["eas"] == pytest.approx(7.5)  # (5 + 10) / 2 points, paired by seed
    assert rows[1]["eas"] == pytest.approx(5.0)
    assert "| 1 | 55.0 ± " in markdown(rows, ["random", "eas"]) and "+7.5" in markdown(rows, ["random", "eas"])


def test_a_single_seed_prints_no_interval():
    results = {"random": {0: [0.5]}, "eas": {0: [0.55]}}
    table = markdown(results_table(results, top=1), ["random", "eas"])
    assert "| 1 | 50.0 ± n/a | +5.0 ± n/a |" in table and "± 0.0" not in table


def test_evaluate_and_pass_rates_on_a_tiny_model(tiny_dir):
    backend = load_eval_backend(tiny_dir, device="cpu", dtype="float32")
    questions = [Question(f"q{i}", f"What is {i} + 1?", str(i + 1)) for i in range(3)]
    result = evaluate(backend, questions, k=2, sampling=SAMPLING)
    assert result.k == 2 and [r["id"] for r in result.per_question] == ["q0", "q1", "q2"]
    assert all(r["k"] == 2 and r["pass_rate"] in (0.0, 0.5, 1.0) for r in result.per_question)
    assert result.avg_pass_at_1 == pytest.approx(sum(r["pass_rate"] for r in result.per_question) / 3)
    assert evaluate(backend, questions, k=2, sampling=SAMPLING).per_question == result.per_question  # seeded
    records = [Record("a", "What is 1+1?", "\\boxed{2}", "2"), Record("b", "q", "\\boxed{1}")]  # b: no answer
    rates = pool_pass_rates(records, backend, k=2, sampling=SAMPLING)
    assert rates[1] is None and rates[0] in (0.0, 0.5, 1.0)


def test_pass_rate_select_with_a_tiny_model(tmp_path, tiny_dir):
    pool = write_jsonl(tmp_path / "pool.jsonl", make_pool(4, seed=2))
    out = tmp_path / "picked.jsonl"
    args = ["-q", "select", str(pool), "--strategy", "pass-rate", "--budget", "2", "-k", "2", "--max-new-tokens", "8"]
    assert main([*args, "--model", str(tiny_dir), "--out", str(out)]) == 0
    manifest = json.loads((tmp_path / "picked.jsonl.manifest.json").read_text())
    # A random tiny model never answers right: every pass rate is 0, none is eligible.
    assert manifest["eligible"] == 0 and manifest["shortfall"] == 2 and out.read_text() == ""
    samples = read_jsonl(tmp_path / "picked.jsonl.samples.jsonl")
    assert len(samples) == 8 and not any(s["correct"] for s in samples)  # kept for a resumed run


def test_experiment_end_to_end_and_resume(tmp_path, tiny_dir):
    test = make_test(3, seed=9)
    pool = [Record(r["id"], r["prompt"], r["response"], r["answer"]) for r in make_pool(10, seed=8, test=test)]
    questions = [Question(t["id"], t["question"], t["answer"]) for t in test]
    config = ExperimentConfig(
        strategies=("random", "length", "eas", "pass-rate"),
        budget=4,
        seeds=2,
        train=TrainConfig(max_steps=2, save_steps=1, batch_size=2, val_fraction=0.25, lr=1e-3),
        eval_k=2,
        eval_sampling=SAMPLING,
        top_checkpoints=2,
    )
    rows = run_experiment(pool, questions, tmp_path, config, model=str(tiny_dir))
    assert [r["checkpoint"] for r in rows] == [1, 2]
    assert {"random", "length", "eas", "eas_ci"} <= set(rows[0])
    for name in ("table.md", "table.csv", "results.json", "table.png", "scores.jsonl"):
        assert (tmp_path / name).exists()
    timings = json.loads((tmp_path / "timings.json").read_text())
    assert sorted(timings["runs_s"]) == sorted(
        f"{s}/seed-{i}" for s in ("random", "length", "eas", "pass-rate") for i in (0, 1)
    )
    # the random tiny student answers nothing right: no pass rate strictly between 0 and 1
    assert {r["pass_rate"] for r in read_jsonl(tmp_path / "scores.jsonl")} == {0.0}
    assert all(math.isnan(r["pass-rate"]) for r in rows) and "n/a" in (tmp_path / "table.md").read_text()
    assert not (tmp_path / "pass-rate" / "seed-0" / "train").exists()
    assert not list(tmp_path.glob("*/seed-*/train/checkpoint-*"))  # deleted once evaluated
    assert len(list(tmp_path.glob("*/seed-*/eval-checkpoint-*.json"))) == 3 * 2 * 2
    assert timings["total_s"] >= timings["pool_scores_s"] + sum(timings["runs_s"].values()) > 0
    picked = json.loads((tmp_path / "eas" / "seed-0" / "picked.json").read_text())["ids"]
    scores = {r["id"]: r["eas"] for r in read_jsonl(tmp_path / "scores.jsonl")}
    assert picked == sorted(scores, key=lambda i: -scores[i])[:4]
    evals = sorted(p.name for p in (tmp_path / "eas" / "seed-1").glob("eval-*.json"))
    assert len(evals) == 2
    stamp = (tmp_path / "eas" / "seed-1" / evals[0]).stat().st_mtime_ns
    again = run_experiment(pool, questions, tmp_path, config, model=str(tiny_dir))  # resumed: nothing redone
    assert json.dumps(again) == json.dumps(rows)  # (NaN != NaN, so compare as text)
    assert (tmp_path / "eas" / "seed-1" / evals[0]).stat().st_mtime_ns == stamp
    # other settings never reuse these results: refused, the differences listed, nothing loaded
    with pytest.raises(InputError) as err:
        run_experiment(pool, questions, tmp_path, replace(config, budget=3), model=str(tiny_dir))
    assert "experiment.budget: 4 -> 3" in str(err.value) and "--overwrite" in str(err.value)
    with pytest.raises(InputError, match="model: "):
        run_experiment(pool, questions, tmp_path, config, model="embedded")
    assert (tmp_path / "eas" / "seed-1" / evals[0]).stat().st_mtime_ns == stamp
