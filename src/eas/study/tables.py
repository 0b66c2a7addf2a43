"""The study's tables: one row per question, and each metric's correlation with the reference.

``per_question_rows`` joins a question's graded samples (reference uncertainty) with the
metrics of its scored samples; ``correlation_rows`` correlates every metric of the
registry (``eas.maths.metrics.METRICS``) with a reference column; the rest formats them
as CSV and markdown.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eas.answers import answer_counts
from eas.maths.correlation import auroc, correlate, prr
from eas.maths.metrics import METRICS, metric_label
from eas.maths.reference import answer_entropy, correctness_entropy
from eas.maths.reference import pass_rate as rate
from eas.sampling.questions import Question

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


def _mean(values: Sequence[Any]) -> float | None:
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    return float(np.mean(v)) if v else None


def per_question_rows(
    questions: Sequence[Question], graded: Sequence[dict[str, Any]], scores: dict[str, dict[str, Any]], k: int
) -> list[dict[str, Any]]:
    """One row per question: reference uncertainty, answers, and the (mean) metrics.

    Sample 0's ``trajectory``, ``token_spans``, ``prompt`` and ``response`` come along, so
    that the question can be shown token by token (``eas.study.view``).
    """
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
        row["trajectory"] = first.get("trajectory") if first else None
        # What `eas view` needs to show sample 0 token by token (study/traces.html).
        row["token_spans"] = first.get("token_spans") if first else None
        row["prompt"], row["response"] = rows[0].get("prompt"), rows[0].get("response")
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
        sign = METRICS[metric].sign
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
    for metric, m in METRICS.items():
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
        lines.append(f"| {m.label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def detail_table(rows: Sequence[dict[str, Any]]) -> str:
    """Every column of the correlation rows, as markdown."""
    head = "| label | reference | metric | n | r | p | 95 % CI | rho | AUROC | PRR |"
    lines = [head, "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['label']} | {r['reference']} | {metric_label(r['metric'])} | {r['n']} | "
            f"{_fmt(r['pearson_r'])} | {r['pearson_p']:.1e} | [{_fmt(r['ci_low'], 2)}, {_fmt(r['ci_high'], 2)}] | "
            f"{_fmt(r['spearman_rho'])} | {_fmt(r['auroc'])} | {_fmt(r['prr'])} |"
        )
    return "\n".join(lines) + "\n"
