"""Avg Pass@1 of a model over k samples per question, and pass rates for selection.

Both sample with the study's sampler and grade with its grader (math-verify
equivalence, choices by letter). ``pass@1`` of a question is the share of its k samples
that are correct; ``Avg Pass@1`` is the mean over questions (docs/method.md section 2).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from eas.config import SamplingConfig
from eas.records import Record, RecordError
from eas.sampling.questions import FewShot, Question

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalResult:
    """Avg Pass@1 and the per-question pass rates it averages."""

    avg_pass_at_1: float
    k: int
    per_question: list[dict[str, Any]]

    def summary(self) -> dict[str, Any]:
        return {"avg_pass_at_1": self.avg_pass_at_1, "k": self.k, "questions": len(self.per_question)}


def question_pass_rates(
    questions: Sequence[Question],
    backend: Any,
    sampling: SamplingConfig,
    fewshot: Sequence[FewShot] = (),
    extract: Sequence[str] = ("boxed",),
    progress: bool = False,
    samples_path: str | Path | None = None,
    settings: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> list[dict[str, Any]]:
    """Sample ``sampling.n`` answers per question and grade them.

    Args:
        samples_path: keep the graded samples in this JSONL file, written resumably
            (``eas.sampling.sample.sample_file``): a killed run keeps its finished batches.
        settings: more settings of ``samples_path``'s run (checked when it resumes).
        overwrite: start ``samples_path`` again if it was made with other settings.

    Returns:
        One row per question: ``id``, ``pass_rate``, ``correct`` (count), ``k``.
    """
    from eas.sampling.sample import grade_samples, sample_questions

    if samples_path is not None:
        from eas.sampling.sample import sample_file
        from eas.storage.files import read_table

        sample_file(
            questions,
            samples_path,
            backend,
            sampling,
            fewshot=fewshot,
            extract=extract,
            settings=settings,
            overwrite=overwrite,
            progress=progress,
        )
        graded = read_table(samples_path)
    else:
        samples = sample_questions(questions, backend, sampling, fewshot, progress=progress)
        graded = grade_samples(questions, samples, extract)
    by_question: dict[str, list[bool]] = {}
    for row in graded:
        by_question.setdefault(str(row["question_id"]), []).append(bool(row["correct"]))
    rows = []
    for q in questions:
        correct = by_question.get(str(q.id), [])
        rows.append({"id": q.id, "pass_rate": sum(correct) / len(correct), "correct": sum(correct), "k": len(correct)})
    return rows


def evaluate(
    backend: Any,
    questions: Sequence[Question],
    k: int = 32,
    sampling: SamplingConfig | None = None,
    fewshot: Sequence[FewShot] = (),
    extract: Sequence[str] = ("boxed",),
    progress: bool = False,
    samples_path: str | Path | None = None,
    settings: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> EvalResult:
    """Avg Pass@1 over ``k`` samples per question.

    Args:
        backend: an ``HFBackend`` of the model (a checkpoint folder or an id).
        questions: with ground-truth answers.
        k: samples per question.
        sampling: temperature, top-p, max new tokens, seed (``n`` is set to ``k``).
        fewshot: examples shown before each question, as ``eas sample`` shows them
            (``eas.sampling.questions.build_prompt``); none: the question alone, as a
            student trained by ``eas train`` saw its training prompts.
        extract: answer extraction modes, tried in order.
        samples_path: keep the graded responses in this JSONL file (one row per sample,
            as ``eas sample`` writes them), resumably.
        settings: more settings that decide the samples (e.g. the model), so that a
            resumed ``samples_path`` is never mixed with another model's.
        overwrite: start ``samples_path`` again if it was made with other settings.
    """
    if not questions:
        raise ValueError("no questions to evaluate on")
    sampling = replace(sampling or SamplingConfig(), n=k)
    rows = question_pass_rates(
        questions, backend, sampling, fewshot, extract, progress, samples_path, settings, overwrite
    )
    avg = sum(r["pass_rate"] for r in rows) / len(rows)
    return EvalResult(avg, k, rows)


def pool_pass_rates(
    records: Sequence[Record | RecordError],
    backend: Any,
    k: int = 4,
    sampling: SamplingConfig | None = None,
    fewshot: Sequence[FewShot] = (),
    extract: Sequence[str] = ("boxed",),
    progress: bool = False,
    samples_path: str | Path | None = None,
) -> list[float | None]:
    """Pass rate of the base model on each pool record's question (its ``answer``).

    A record without an answer (or unreadable) gets ``None``: it cannot be ranked.
    ``samples_path``: keep the graded samples there, resumably (see ``question_pass_rates``).
    """
    asked = [
        (i, Question(f"pool-{i}", rec.prompt, rec.answer))
        for i, rec in enumerate(records)
        if isinstance(rec, Record) and rec.answer is not None and str(rec.answer).strip()
    ]
    if len(asked) < len(records):
        log.warning("%d pool records have no answer to grade against", len(records) - len(asked))
    out: list[float | None] = [None] * len(records)
    if not asked:
        return out
    sampling = replace(sampling or SamplingConfig(), n=k)
    rows = question_pass_rates([q for _, q in asked], backend, sampling, fewshot, extract, progress, samples_path)
    for (i, _), row in zip(asked, rows, strict=True):
        out[i] = row["pass_rate"]
    return out


def load_eval_backend(
    path_or_id: str | Path, device: str = "auto", dtype: str = "auto", trust_remote_code: bool = False
) -> Any:
    """A backend for a model id, a model folder or a training checkpoint (LoRA included)."""
    from eas.backends.load import load_backend

    return load_backend(str(path_or_id), device=device, dtype=dtype, trust_remote_code=trust_remote_code)
