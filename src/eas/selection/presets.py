"""The two sizes of ``eas experiment selection``: the paper's protocol and a quick miniature.

A preset fills every setting the user did not give; ``--builtin`` also takes its pool
and test sizes for the built-in arithmetic data (``eas.selection.builtin_pool``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from eas.config import SamplingConfig
from eas.records import Record, RecordError
from eas.sampling.questions import Question
from eas.selection.experiment import ExperimentConfig
from eas.selection.training import TrainConfig


@dataclass(frozen=True)
class ExperimentPreset:
    """Sizes of one experiment; ``None`` in an override keeps the preset's value."""

    name: str
    pool: int  # built-in pool size
    test: int  # built-in test questions
    budget: int
    seeds: int
    lr: float
    save_steps: int
    eval_k: int
    max_new_tokens: int | None  # cap on the evaluation's generation budget (None: as given)
    epochs: float = 2.0
    batch_size: int = 4
    max_length: int = 512


FULL = ExperimentPreset(
    "full", pool=600, test=60, budget=200, seeds=3, lr=1e-5, save_steps=25, eval_k=32, max_new_tokens=None
)
QUICK = ExperimentPreset(
    "quick", pool=96, test=16, budget=24, seeds=2, lr=1e-4, save_steps=3, eval_k=2, max_new_tokens=128
)


def experiment_config(
    preset: ExperimentPreset,
    strategies: tuple[str, ...],
    sampling: SamplingConfig,
    *,
    budget: int | None = None,
    seeds: int | None = None,
    eval_k: int | None = None,
    epochs: float | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    pass_rate_k: int = 4,
    keep_checkpoints: bool = False,
) -> ExperimentConfig:
    """The experiment's settings: each one given, else the preset's (``ValueError`` if invalid)."""
    train = TrainConfig(
        epochs=epochs or preset.epochs,
        lr=lr or preset.lr,
        batch_size=batch_size or preset.batch_size,
        save_steps=preset.save_steps,
        max_length=preset.max_length,
    )
    if preset.max_new_tokens is not None:
        sampling = replace(sampling, max_new_tokens=min(sampling.max_new_tokens, preset.max_new_tokens))
    return ExperimentConfig(
        strategies=strategies,
        budget=budget or preset.budget,
        seeds=seeds or preset.seeds,
        train=train,
        eval_k=eval_k or preset.eval_k,
        eval_sampling=sampling,
        pass_rate_k=pass_rate_k,
        keep_checkpoints=keep_checkpoints,
    )


def builtin_data(preset: ExperimentPreset, out: Path) -> tuple[list[Record | RecordError], list[Question]]:
    """The built-in pool and test questions of the preset's sizes, also written to ``out``."""
    from eas.selection.builtin_pool import make_pool, make_test
    from eas.storage.files import write_rows
    from eas.storage.inputs import read_records

    test = make_test(preset.test)
    out.mkdir(parents=True, exist_ok=True)
    write_rows(make_pool(preset.pool, test=test), out / "pool.jsonl")
    write_rows(test, out / "test.jsonl")
    pool = list(read_records(out / "pool.jsonl"))
    return pool, [Question(t["id"], t["question"], t["answer"]) for t in test]
