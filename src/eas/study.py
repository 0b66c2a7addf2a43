"""The uncertainty study (METHOD.md sections 2-3): sample, grade, score, correlate, report.

Pipeline, per question: N samples (``eas.sampling``) -> final answers, equivalence
classes, answer entropy, correctness entropy, pass rate (``eas.answers``) -> the
single-pass metrics of sample 0, or the mean over the first k samples
(``eas.scoring.score_records`` on the exact sampled context) -> across questions, each
metric's correlation with the reference uncertainty (``eas.correlation``) -> figures
(``eas.plots``) and a report (``eas.report``).

**(ours)** A scored sample without a final ``\\boxed{...}`` cannot be scored (x_T is
undefined); its question then has no metric values (or the mean over the scoreable ones
of the first k) and drops out of the correlations, which report their n.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from eas.answers import AnswerMatcher, answer_counts, answer_entropy, correctness_entropy, extract_answer
from eas.answers import group_answers as group
from eas.answers import pass_rate as rate
from eas.config import EASConfig
from eas.correlation import auroc, correlate, prr
from eas.records import Record
from eas.sampling import FewShot, Question, SamplingConfig, build_prompt, generate_samples

log = logging.getLogger(__name__)

# Single-pass metrics compared with the reference, in table order, and their display names.
METRICS: dict[str, str] = {
    "eas": "EAS",
    "mean_eas": "Mean EAS",
    "ppl": "PPL",
    "response_tokens": "Length",
    "mean_token_entropy": "Mean token entropy",
    "max_seq_logprob": "Max seq. log-prob",
    "hes": "HES",
    "final_entropy": "Final-answer entropy",
}
# Sign that makes a metric "higher = more uncertain" (for AUROC and PRR).
UNCERTAINTY_SIGN: dict[str, float] = {"max_seq_logprob": -1.0}
REFERENCES = ("answer_entropy", "correctness_entropy")
CORRELATION_COLUMNS = (
    "label",
    "reference",
    "metric",
    "n",
    "pearson_r",
    "pearson_p",
    "ci_low",
    "ci_high",
    "spearman_rho",
    "spearman_p",
    "auroc",
    "prr",
)


@dataclass(frozen=True)
class StudyConfig:
    """Settings of a study (the CLI builds it; defaults here).

    Attributes:
        sampling: how the N answers are sampled.
        eas: the metric's settings (trigger, answer prefix, ...). The study always scores
            the raw rendered prompt (the chat template is applied when building it) and
            keeps trajectories.
        extract: answer extraction modes, tried in order.
        score_samples: k; the metrics of a question are the mean over its first k samples.
        alpha: decay exponent of Fig. 3.
        verify_timeout_s: time limit of each math-verify parse/comparison.
        bootstrap_resamples: resamples of the bootstrap CI of r.
        label: name of this model/dataset in the correlation table.
    """

    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    eas: EASConfig = field(default_factory=EASConfig)
    extract: tuple[str, ...] = ("boxed",)
    score_samples: int = 1
    alpha: float = 0.5
    verify_timeout_s: int = 5
    bootstrap_resamples: int = 2000
    label: str = "study"

    def __post_init__(self) -> None:
        if not 1 <= self.score_samples <= self.sampling.n:
            raise ValueError(f"score_samples must be in 1..n ({self.sampling.n})")
        if self.alpha < 0:
            raise ValueError("alpha must be >= 0")
        if not self.extract:
            raise ValueError("at least one extraction mode is needed")


# --- sampling and grading ----------------------------------------------------------------


def sample_questions(
    questions: Sequence[Question],
    backend: Any,
    sampling: SamplingConfig,
    fewshot: Sequence[FewShot] = (),
    progress: bool = False,
    first_batch: int = 0,
) -> list[dict[str, Any]]:
    """Sample ``sampling.n`` responses per question; one row per sample (not graded yet).

    ``first_batch``: the sampler batch index of the first question (a resumed run samples
    a later slice with the seeds an uninterrupted run would have used).
    """
    prompts = [build_prompt(backend.tokenizer, q, fewshot) for q in questions]
    if hasattr(backend, "sample_texts"):  # a serving engine samples for us
        per_batch = max(1, sampling.batch_size // sampling.n)
        texts = backend.sample_texts(prompts, sampling, first_question=first_batch * per_batch)
    else:
        texts = generate_samples(
            backend.model, backend.tokenizer, prompts, sampling, progress=progress, first_batch=first_batch
        )
    rows = []
    for q, prompt, samples in zip(questions, prompts, texts, strict=True):
        for k, response in enumerate(samples):
            row = {"id": f"{q.id}/{k}", "question_id": q.id, "sample": k, "prompt": prompt, "response": response}
            row.update({"question": q.question, "answer": q.answer})
            if q.choices:
                row["choices"] = list(q.choices)
            rows.append(row)
    return rows


def grade_samples(
    questions: Sequence[Question],
    samples: Sequence[dict[str, Any]],
    extract: Sequence[str] = ("boxed",),
    matcher: AnswerMatcher | None = None,
) -> list[dict[str, Any]]:
    """Add ``extracted``, ``correct`` and ``answer_class`` to every sample row.

    Classes are numbered per question in order of first appearance; "no answer" is a class.
    """
    matcher = matcher or AnswerMatcher()
    by_id = {str(q.id): q for q in questions}
    out = [dict(r) for r in samples]
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in out:
        groups.setdefault(str(row["question_id"]), []).append(row)
    for qid, rows in groups.items():
        q = by_id[qid]
        answers = [extract_answer(r["response"], extract, q.choices) for r in rows]  # type: ignore[arg-type]
        labels = group(answers, matcher) if not q.choices else _letter_classes(answers)
        for r, a, label in zip(rows, answers, labels, strict=True):
            r["extracted"] = a
            r["answer_class"] = label
            r["correct"] = bool(a is not None and q.answer is not None and matcher.equivalent(a, q.answer))
    return out


def _letter_classes(answers: Sequence[str | None]) -> list[int]:
    """Classes of option letters: equal letters only (no math-verify)."""
    seen: dict[str | None, int] = {}
    return [seen.setdefault(a, len(seen)) for a in answers]


# --- scoring -------------------------------------------------------------------------------


def score_samples(
    samples: Sequence[dict[str, Any]],
    backend: Any,
    config: StudyConfig,
    progress: bool = False,
) -> dict[str, dict[str, Any]]:
    """Score the first ``k`` samples of every question; result rows (or errors) by sample id.

    Multiple-choice samples also track their option letters (``option_probs``).
    """
    from eas.scoring import ScoreError, score_records

    chosen = [r for r in samples if r["sample"] < config.score_samples]
    by_letters: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for r in chosen:
        letters = tuple("ABCDEFGHIJ"[: len(r["choices"])]) if r.get("choices") else ()
        by_letters.setdefault(letters, []).append(r)
    results: dict[str, dict[str, Any]] = {}
    for letters, rows in by_letters.items():
        eas = replace(config.eas, use_chat_template=False, trajectory=True, track_tokens=letters)
        records = [Record(r["id"], r["prompt"], r["response"], r["answer"]) for r in rows]
        for item in score_records(records, backend, eas, progress=progress, total=len(records)):
            if isinstance(item, ScoreError):
                results[str(item.id)] = {"id": item.id, "error": item.reason}
            else:
                results[str(item["id"])] = item
    return results


# --- per-question table --------------------------------------------------------------------


def _mean(values: Sequence[Any]) -> float | None:
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    return float(np.mean(v)) if v else None


def per_question_rows(
    questions: Sequence[Question], graded: Sequence[dict[str, Any]], scores: dict[str, dict[str, Any]], k: int
) -> list[dict[str, Any]]:
    """One row per question: reference uncertainty, answers, and the (mean) metrics."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in graded:
        groups.setdefault(str(row["question_id"]), []).append(row)
    table = []
    for q in questions:
        rows = sorted(groups.get(str(q.id), []), key=lambda r: r["sample"])
        if not rows:
            continue
        answers = [r["extracted"] for r in rows]
        correct = [r["correct"] for r in rows]
        scored = [scores.get(str(r["id"])) for r in rows[:k]]
        ok = [s for s in scored if s is not None and "error" not in s]
        first = scored[0] if scored and scored[0] is not None and "error" not in scored[0] else None
        row: dict[str, Any] = {
            "id": q.id,
            "question": q.question,
            "answer": q.answer,
            "kind": "choice" if q.choices else "open",
            "n_samples": len(rows),
            "answer_entropy": answer_entropy([r["answer_class"] for r in rows]),
            "correctness_entropy": correctness_entropy(correct),
            "pass_rate": rate(correct),
            "n_classes": len({r["answer_class"] for r in rows}),
            "answer_counts": answer_counts(answers, [r["answer_class"] for r in rows]),
            "sample0_answer": answers[0],
            "sample0_correct": correct[0],
            "scored_samples": len(ok),
        }
        row.update({m: _mean([s[m] for s in ok]) for m in METRICS})
        if first is None and scored and scored[0] is not None:
            row["score_error"] = scored[0].get("error")
        row["trajectory"] = first["trajectory"] if first else None
        if q.choices:
            row["choices"] = list(q.choices)
            row["option_probs"] = first.get("option_probs") if first else None
        table.append(row)
    return table


# --- correlations ----------------------------------------------------------------------


def correlation_rows(
    table: Sequence[dict[str, Any]],
    reference: str = "answer_entropy",
    label: str = "study",
    n_resamples: int = 2000,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """For every metric of ``METRICS`` present in the table: r, p, CI, rho, AUROC, PRR, n.

    AUROC and PRR judge the metric (signed so that higher = more uncertain) as a
    predictor of a wrong sample-0 answer; they need ``sample0_correct`` in the rows.
    """
    if reference not in REFERENCES:
        raise ValueError(f"reference must be one of {', '.join(REFERENCES)}, not {reference!r}")
    ref = [r.get(reference) for r in table]
    wrong = [None if r.get("sample0_correct") is None else float(not r["sample0_correct"]) for r in table]
    out = []
    for metric in METRICS:
        values = [r.get(metric) for r in table]
        if all(v is None for v in values):
            continue
        c = correlate(values, ref, n_resamples=n_resamples, seed=seed)
        sign = UNCERTAINTY_SIGN.get(metric, 1.0)
        unc = [None if v is None else sign * float(v) for v in values]
        quality = [None if w is None else 1.0 - w for w in wrong]
        out.append(
            {"label": label, "reference": reference, "metric": metric, **c.row()}
            | {"auroc": auroc(unc, wrong), "prr": prr(unc, quality)}
        )
    return out


def write_correlations_csv(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, CORRELATION_COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()})
    return path


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{v:.{digits}f}"


def markdown_table(rows: Sequence[dict[str, Any]], reference: str = "answer_entropy") -> str:
    """Paper-Table-2-shaped markdown: one row per metric, one column per label (r [95 % CI])."""
    rows = [r for r in rows if r["reference"] == reference]
    labels = list(dict.fromkeys(r["label"] for r in rows))
    cell = {(r["label"], r["metric"]): r for r in rows}
    lines = [
        f"Pearson r with {reference.replace('_', ' ')} [95 % bootstrap CI] (n questions)",
        "",
        "| metric | " + " | ".join(labels) + " |",
        "|---|" + "---|" * len(labels),
    ]
    for metric, name in METRICS.items():
        if not any((lab, metric) in cell for lab in labels):
            continue
        cells = []
        for lab in labels:
            r = cell.get((lab, metric))
            cells.append(
                "-"
                if r is None
                else f"{_fmt(r['pearson_r'])} [{_fmt(r['ci_low'], 2)}, {_fmt(r['ci_high'], 2)}] (n={r['n']})"
            )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def detail_table(rows: Sequence[dict[str, Any]]) -> str:
    """Every column of the correlation rows, as markdown."""
    head = "| label | reference | metric | n | r | p | 95 % CI | rho | AUROC | PRR |"
    lines = [head, "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['label']} | {r['reference']} | {METRICS.get(r['metric'], r['metric'])} | {r['n']} | "
            f"{_fmt(r['pearson_r'])} | {r['pearson_p']:.1e} | [{_fmt(r['ci_low'], 2)}, {_fmt(r['ci_high'], 2)}] | "
            f"{_fmt(r['spearman_rho'])} | {_fmt(r['auroc'])} | {_fmt(r['prr'])} |"
        )
    return "\n".join(lines) + "\n"


# --- the whole study -------------------------------------------------------------------


@dataclass
class StudyResult:
    """What a study produced (also written to its folder)."""

    out_dir: Path
    samples: list[dict[str, Any]]
    table: list[dict[str, Any]]
    correlations: list[dict[str, Any]]
    figures: dict[str, Path]
    report_md: Path
    report_html: Path


def write_jsonl(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Rows to a JSONL (or Parquet) file, all or nothing."""
    from eas.io import write_results

    write_results(path, lambda: iter([list(rows)]))
    return Path(path)


def run_study(
    questions: Sequence[Question],
    backend: Any,
    config: StudyConfig,
    out_dir: str | Path,
    fewshot: Sequence[FewShot] = (),
    dataset: str = "",
    progress: bool = False,
    on_stage: Callable[[str], None] | None = None,
) -> StudyResult:
    """Sample, grade, score, correlate, draw and report; every file goes to ``out_dir``."""
    from eas.plots import draw_figures
    from eas.report import write_report

    started = time.monotonic()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stage = on_stage or (lambda s: log.info("%s", s))
    stage(f"sampling {config.sampling.n} answers for each of {len(questions)} questions")
    samples = sample_questions(questions, backend, config.sampling, fewshot, progress)
    matcher = AnswerMatcher(config.verify_timeout_s)
    graded = grade_samples(questions, samples, config.extract, matcher)
    write_jsonl(graded, out / "samples.jsonl")
    stage(f"scoring the first {config.score_samples} sample(s) of every question")
    scores = score_samples(graded, backend, config, progress)
    table = per_question_rows(questions, graded, scores, config.score_samples)
    write_jsonl(table, out / "per_question.jsonl")
    corr = [
        row
        for ref in REFERENCES
        for row in correlation_rows(table, ref, config.label, config.bootstrap_resamples, config.sampling.seed)
    ]
    write_correlations_csv(corr, out / "correlations.csv")
    stage("drawing figures and writing the report")
    figures = draw_figures(table, out, config.alpha)
    settings = {
        "model": backend.describe() if hasattr(backend, "describe") else {},
        "dataset": dataset,
        "questions": len(questions),
        "sampling": asdict(config.sampling),
        "extract": list(config.extract),
        "score_samples": config.score_samples,
        "trigger": config.eas.trigger,
        "answer_prefix_tokens": config.eas.answer_prefix_tokens,
        "alpha": config.alpha,
        "wall_time_s": round(time.monotonic() - started, 1),
    }
    (out / "settings.json").write_text(json.dumps(settings, indent=2, default=str) + "\n")
    md, html = write_report(out, settings, table, corr, figures)
    return StudyResult(out, graded, table, corr, figures, md, html)
