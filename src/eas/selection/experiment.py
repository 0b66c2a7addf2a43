"""The selection experiment (docs/method.md section 4): select, train, evaluate, compare.

For each seed and strategy: choose B pool records, fine-tune the student on them with
identical hyper-parameters (the seed changes the training order and validation split),
and evaluate Avg Pass@1 of its best checkpoints (by validation loss) on the test
questions. The table has, per checkpoint rank, random's Avg Pass@1 and every other
strategy's difference to random (paired by seed), as mean and 95 % t-interval across
seeds, like the paper's Table 3.

A (strategy, seed)'s checkpoints are deleted once evaluated, unless ``keep_checkpoints``
(the quick built-in experiment would otherwise leave about 34 GB behind).

Every step leaves its result on disk (``OUT/scores.jsonl``, ``OUT/<strategy>/seed-<s>/``
with ``picked.jsonl``, the training run and ``eval-<checkpoint>.json``) and is skipped when
its result is already there, so a killed experiment resumes where it stopped. Those
results are reused only with the settings that made them: ``OUT/settings.json`` holds
them with their fingerprint (``eas.storage.stamp``: the model and its load options, the
pool, the test questions and every setting but ``seeds`` and ``keep_checkpoints``); a
rerun with other settings is refused with the differences listed (``overwrite``
removes the old results). Every model load (pool scores, training, evaluation) uses the
same ``ModelOptions``.
``OUT/timings.json`` has the seconds each step took in the last invocation.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from eas.config import EVALUATION_SAMPLING, EASConfig, ModelOptions, SamplingConfig, TrainConfig, setting
from eas.records import Record, RecordError
from eas.sampling.questions import Question
from eas.selection.strategies import SCORE_COLUMNS, STRATEGY_COLUMNS, select
from eas.storage.inputs import readable_records
from eas.storage.jsontext import dumps
from eas.storage.parts import fingerprint, write_atomic
from eas.storage.stamp import claim_folder

log = logging.getLogger(__name__)


# Training holds one record out for validation, so it needs two at least.
MIN_TRAIN_RECORDS = 2


@dataclass(frozen=True)
class ExperimentConfig:
    """One experiment's settings (the same for every strategy)."""

    strategies: tuple[str, ...] = setting(
        ("random", "length", "pass-rate", "eas"), "strategies compared, comma-separated; must include random"
    )
    budget: int = 200
    seeds: int = 3
    train: TrainConfig = field(default_factory=TrainConfig)
    eval_k: int = setting(32, "answers sampled per test question for Avg Pass@1", flag="-k")
    eval_sampling: SamplingConfig = field(default_factory=lambda: EVALUATION_SAMPLING)
    pass_rate_k: int = setting(4, "answers sampled per pool question for the pass-rate strategy")
    top_checkpoints: int = setting(3, "best checkpoints (by validation loss) evaluated per run", flag="--top")
    keep_checkpoints: bool = setting(
        False,
        "keep every trained checkpoint (model + optimizer state; 1.6 GB each for the embedded model); "
        "default: deleted once evaluated",
    )

    def __post_init__(self) -> None:
        if "random" not in self.strategies:
            raise ValueError("the table reports differences to random: include 'random' in the strategies")
        if self.seeds < 1:
            raise ValueError("seeds must be >= 1")
        if self.budget < MIN_TRAIN_RECORDS:
            raise ValueError(f"budget must be >= {MIN_TRAIN_RECORDS} (one record is held out for validation)")


def _score_columns(strategies: Sequence[str]) -> set[str]:
    cols = {SCORE_COLUMNS[s] for s in strategies if s in SCORE_COLUMNS}
    if "length" in strategies:
        cols.add("total_tokens")
    if "pass-rate" in strategies:
        cols.add("pass_rate")
    return cols


def pool_scores(
    records: Sequence[Record], backend: Any, config: ExperimentConfig, out: Path, progress: bool
) -> list[dict]:
    """Every strategy's score of every pool record, computed once (``OUT/scores.jsonl``)."""
    from eas.scoring.batches import ScoreError
    from eas.scoring.runs import score_records
    from eas.selection.evaluation import pool_pass_rates
    from eas.selection.select_file import token_lengths

    path = out / "scores.jsonl"
    needed = _score_columns(config.strategies)
    if path.exists():
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        if len(rows) == len(records) and all(needed <= set(r) for r in rows):
            return rows
    rows = [{"id": r.id} for r in records]
    if needed & {"eas", "hes", "mean_token_entropy"}:
        scored = list(score_records(records, backend, EASConfig(), progress=progress, total=len(records)))
        for row, s in zip(rows, scored, strict=True):
            for col in ("eas", "hes", "mean_token_entropy"):
                row[col] = None if isinstance(s, ScoreError) else s[col]
    if "total_tokens" in needed:
        for row, n in zip(rows, token_lengths(records, backend.tokenizer, True), strict=True):
            row["total_tokens"] = n
    if "pass_rate" in needed:
        from eas.sampling.questions import load_fewshot

        rates = pool_pass_rates(
            records, backend, config.pass_rate_k, config.eval_sampling, load_fewshot(None), progress=progress
        )
        for row, p in zip(rows, rates, strict=True):
            row["pass_rate"] = p
    write_atomic(path, [dumps(r) + "\n" for r in rows])
    return rows


def _strategy_scores(strategy: str, rows: Sequence[dict]) -> list[float | None] | None:
    column = STRATEGY_COLUMNS.get(strategy)
    return None if column is None else [r.get(column) for r in rows]


def run_one(
    strategy: str,
    seed: int,
    records: Sequence[Record],
    scores: Sequence[dict],
    questions: Sequence[Question],
    model: str,
    config: ExperimentConfig,
    out: Path,
    progress: bool,
    options: ModelOptions | None = None,
) -> list[float]:
    """Select, train and evaluate one (strategy, seed); Avg Pass@1 of the top checkpoints.

    Empty when the strategy finds too few eligible records to train on (a pass-rate
    pool where the student gets every question always right or always wrong).
    """
    from eas.selection.evaluation import evaluate, load_eval_backend
    from eas.selection.training import train

    options = options or ModelOptions()
    run = out / strategy / f"seed-{seed}"
    run.mkdir(parents=True, exist_ok=True)
    chosen = select(strategy, _strategy_scores(strategy, scores), len(records), config.budget, seed)
    picked = {
        "ids": [records[i].id for i in chosen.indices],
        "eligible": chosen.eligible,
        "shortfall": chosen.shortfall,
    }
    (run / "picked.json").write_text(dumps(picked) + "\n")
    if len(chosen.indices) < MIN_TRAIN_RECORDS:
        log.warning(
            "%s, seed %d: %d eligible records, too few to train on; left out of the table (n/a)",
            strategy,
            seed,
            chosen.eligible,
        )
        return []
    best_file = run / "train" / "best_checkpoints.json"
    if not (run / "train" / "done").exists():
        train(
            [records[i] for i in chosen.indices],
            run / "train",
            model,
            None,
            replace(config.train, seed=seed),
            resume=True,
            progress=progress,
            **options.kwargs(),
        )
        (run / "train" / "done").write_text("")
    best = json.loads(best_file.read_text())[: config.top_checkpoints]
    results = []
    for entry in best:
        name = entry["checkpoint"]
        path = run / f"eval-{name}.json"
        if not path.exists():
            backend = load_eval_backend(run / "train" / name, **options.kwargs())
            result = evaluate(backend, questions, config.eval_k, config.eval_sampling, progress=progress)
            write_atomic(path, [dumps({**result.summary(), "per_question": result.per_question}) + "\n"])
        results.append(json.loads(path.read_text())["avg_pass_at_1"])
    if not config.keep_checkpoints:
        _drop_checkpoints(run / "train")
    return results


def _drop_checkpoints(train_dir: Path) -> None:
    """Delete a finished, evaluated run's checkpoints (weights and optimizer state, 1.6 GB
    each for the embedded model); the logs, ``best_checkpoints.json`` and evaluations stay."""
    import shutil

    for checkpoint in train_dir.glob("checkpoint-*"):
        shutil.rmtree(checkpoint)


def t_interval(values: Sequence[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95 % t-interval (NaN for a single value: no interval)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, float("nan")
    from scipy import stats

    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, float(stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n))


def results_table(results: dict[str, dict[int, list[float]]], top: int) -> list[dict[str, Any]]:
    """Rows per checkpoint rank: random absolute, others as paired differences (percent).

    Args:
        results: ``results[strategy][seed]`` = Avg Pass@1 of checkpoints ranked 1..top.
    """
    rows = []
    seeds = sorted(results["random"])
    for rank in range(top):
        row: dict[str, Any] = {"checkpoint": rank + 1}
        base = [100 * results["random"][s][rank] for s in seeds if len(results["random"][s]) > rank]
        row["random"], row["random_ci"] = t_interval(base) if base else (float("nan"), float("nan"))
        for strategy, by_seed in results.items():
            if strategy == "random":
                continue
            diffs = [
                100 * (by_seed[s][rank] - results["random"][s][rank])
                for s in seeds
                if s in by_seed and len(by_seed[s]) > rank and len(results["random"][s]) > rank
            ]
            row[strategy], row[f"{strategy}_ci"] = t_interval(diffs) if diffs else (float("nan"), float("nan"))
        rows.append(row)
    return rows


def markdown(rows: Sequence[dict[str, Any]], strategies: Sequence[str]) -> str:
    """The table as markdown: random absolute, others ``+d ± ci``.

    ``n/a`` alone: no such checkpoint; ``± n/a``: one seed, no interval.
    """
    others = [s for s in strategies if s != "random"]
    lines = ["| ckpt | random | " + " | ".join(others) + " |", "|---|---|" + "---|" * len(others)]

    def cell(mean: float, ci: float, sign: str) -> str:
        if math.isnan(mean):
            return "n/a"
        return f"{mean:{sign}.1f} ± " + ("n/a" if math.isnan(ci) else f"{ci:.1f}")

    for r in rows:
        cells = [cell(r["random"], r["random_ci"], "")]
        cells += [cell(r[s], r[s + "_ci"], "+") for s in others]
        lines.append(f"| {r['checkpoint']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def experiment_settings(
    records: Sequence[Record],
    questions: Sequence[Question],
    config: ExperimentConfig,
    model: str,
    options: ModelOptions,
) -> dict[str, Any]:
    """What decides an experiment's reusable results (all but ``seeds`` and ``keep_checkpoints``)."""
    settings = asdict(config)
    for free in ("seeds", "keep_checkpoints"):  # more seeds extend a run; keeping files changes no number
        settings.pop(free)
    return {
        "model": model,
        "model_options": asdict(options),
        "experiment": settings,
        "pool": fingerprint([[r.id, r.prompt, r.response, r.answer] for r in records]),
        "test": fingerprint([[q.id, q.question, q.answer, q.choices] for q in questions]),
    }


def run_experiment(
    pool: Sequence[Record | RecordError],
    questions: Sequence[Question],
    out_dir: str | Path,
    config: ExperimentConfig,
    model: str = "embedded",
    progress: bool = False,
    options: ModelOptions | None = None,
    overwrite: bool = False,
) -> list[dict[str, Any]]:
    """Run (or resume) the whole experiment; writes table.md/.csv, results.json, timings.json, a chart.

    Args:
        options: device, dtype and trust_remote_code of every model load.
        overwrite: start again when ``out_dir`` holds results made with other settings
            (else ``InputError``).
    """
    from eas.backends.load import load_backend
    from eas.selection.strategies import STRATEGIES

    options = options or ModelOptions()
    out = Path(out_dir)
    records = readable_records(pool, "the pool")
    results_made = ["scores.jsonl", "results.json", "table.md", "table.csv", "table.png", "timings.json", *STRATEGIES]
    claim_folder(out, experiment_settings(records, questions, config, model, options), results_made, overwrite)
    started = time.monotonic()
    scores = pool_scores(records, load_backend(model, **options.kwargs()), config, out, progress)
    timings: dict[str, Any] = {"pool_scores_s": time.monotonic() - started, "runs_s": {}}
    results: dict[str, dict[int, list[float]]] = {s: {} for s in config.strategies}
    for seed in range(config.seeds):
        for strategy in config.strategies:
            log.info("seed %d, strategy %s", seed, strategy)
            t0 = time.monotonic()
            results[strategy][seed] = run_one(
                strategy, seed, records, scores, questions, model, config, out, progress, options
            )
            timings["runs_s"][f"{strategy}/seed-{seed}"] = time.monotonic() - t0
    rows = results_table(results, config.top_checkpoints)
    (out / "table.md").write_text(markdown(rows, config.strategies))
    _write_csv(rows, out / "table.csv")
    (out / "results.json").write_text(dumps({"avg_pass_at_1": results}, indent=1) + "\n")
    # Seconds spent by this invocation on each step (a step resumed from disk takes ~0 s).
    timings["total_s"] = time.monotonic() - started
    (out / "timings.json").write_text(dumps(timings, indent=1) + "\n")
    from eas.study.plots import save, selection_bars

    save(selection_bars(rows, config.strategies), out / "table.png")
    return rows


def _write_csv(rows: Sequence[dict[str, Any]], path: Path) -> None:
    import csv

    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
