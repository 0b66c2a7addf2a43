"""The study's tables: one row per question, and each metric's correlation with the reference.

``per_question_rows`` joins a question's graded samples (reference uncertainty) with the
metrics of its scored samples; ``correlation_rows`` correlates every metric of the
registry (``eas.maths.metrics.METRICS``) with a reference column; the rest formats them
as CSV and markdown.
"""

from __future__ import annotations

import csv
import html
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
    "ci_note",
    "spearman_rho",
    "spearman_p",
    "auroc",
    "prr",
)


def _mean(values: Sequence[Any]) -> float | None:
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    return float(np.mean(v)) if v else None


def has_boxed_answer(response: str) -> bool:
    """Whether the response has a non-empty last ``\\boxed{...}`` (what scoring needs for x_T)."""
    from eas.answers import last_boxed_span

    try:
        span = last_boxed_span(response)
    except ValueError:
        return False
    return span is not None and span.end > span.start


def samples_to_score(rows: Sequence[dict[str, Any]], k: int, first_boxed: bool = True) -> list[dict[str, Any]]:
    """The samples of one question whose metrics are computed (rows in sample order).

    ``first_boxed``: the first ``k`` samples that have a boxed final answer (a sample
    without one has no x_T); else the first ``k`` samples, whatever they hold.
    """
    ordered = sorted(rows, key=lambda r: r["sample"])
    if first_boxed:
        ordered = [r for r in ordered if has_boxed_answer(str(r["response"]))]
    return ordered[:k]


def per_question_rows(
    questions: Sequence[Question],
    graded: Sequence[dict[str, Any]],
    scores: dict[str, dict[str, Any]],
    k: int,
    first_boxed: bool = True,
) -> list[dict[str, Any]]:
    """One row per question: reference uncertainty, answers, and the (mean) metrics.

    The metrics are those of ``samples_to_score``; ``scored_sample`` is the index of the
    first of them and ``scored_correct`` its correctness (what AUROC and PRR predict).
    The scored sample's ``trajectory``, ``token_spans``, ``prompt`` and ``response`` come
    along, so that the question can be shown token by token (``eas.view.page``).
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
        chosen = samples_to_score(rows, k, first_boxed)
        scored = [scores.get(str(r["id"])) for r in chosen]
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
            "scored_sample": chosen[0]["sample"] if chosen else None,
            "scored_correct": chosen[0]["correct"] if chosen else None,
            "scored_samples": len(ok),
        }
        row.update({m: _mean([s[m] for s in ok]) for m in METRICS})
        if first is None and scored and scored[0] is not None:
            row["score_error"] = scored[0].get("error")
        row["trajectory"] = first.get("trajectory") if first else None
        # What `eas view` needs to show the scored sample token by token (study/traces.html).
        row["token_spans"] = first.get("token_spans") if first else None
        shown = chosen[0] if chosen else rows[0]
        row["prompt"], row["response"] = shown.get("prompt"), shown.get("response")
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
) -> list[dict[str, Any]]:
    """For every metric of ``METRICS`` present in the table: r, p, CI, rho, AUROC, PRR, n.

    AUROC and PRR judge the metric (signed so that higher = more uncertain) as a
    predictor of a wrong answer of the scored sample (``scored_correct``; tables
    written before it existed: ``sample0_correct``).
    """
    if reference not in REFERENCES:
        raise ValueError(f"reference must be one of {', '.join(REFERENCES)}, not {reference!r}")
    ref = [r.get(reference) for r in table]
    correct = [r["scored_correct"] if "scored_correct" in r else r.get("sample0_correct") for r in table]
    wrong = [None if c is None else float(not c) for c in correct]
    out = []
    for metric in METRICS:
        values = [r.get(metric) for r in table]
        if all(v is None for v in values):
            continue
        c = correlate(values, ref)
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


# Characters that start inline markdown (code, emphasis, links and images, strike-through,
# GitHub's math, a table's cell border): each is written backslash-escaped.
_MD_PUNCTUATION = frozenset("\\`*_[]()!~$|")


def md_escape(text: Any) -> str:
    r"""``text`` as literal markdown: HTML's ``<>&`` as entities (viewers render inline HTML)
    and the punctuation of links, images, emphasis, code, math and table pipes escaped.

    Example:
        >>> print(md_escape("![x](http://host/p.png) <b>|</b>"))
        \!\[x\]\(http://host/p.png\) &lt;b&gt;\|&lt;/b&gt;
    """
    return "".join("\\" + c if c in _MD_PUNCTUATION else c for c in html.escape(str(text), quote=False))


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{v:.{digits}f}"


def ci_text(r: dict[str, Any]) -> str:
    """``[low, high]`` (the Fisher-z interval of r), or ``n/a (reason)``."""
    if r.get("ci_note"):
        return f"n/a ({r['ci_note']})"
    return f"[{_fmt(r['ci_low'], 2)}, {_fmt(r['ci_high'], 2)}]"


def markdown_table(rows: Sequence[dict[str, Any]], reference: str = "answer_entropy") -> str:
    """Paper-Table-2-shaped markdown: one row per metric, one column per label (r [95 % CI])."""
    rows = [r for r in rows if r["reference"] == reference]
    labels = list(dict.fromkeys(r["label"] for r in rows))
    cell = {(r["label"], r["metric"]): r for r in rows}
    lines = [
        f"Pearson r with {reference.replace('_', ' ')} [95 % CI, Fisher z] (n questions)",
        "",
        "| metric | " + " | ".join(md_escape(lab) for lab in labels) + " |",
        "|---|" + "---|" * len(labels),
    ]
    for metric, m in METRICS.items():
        if not any((lab, metric) in cell for lab in labels):
            continue
        cells = []
        for lab in labels:
            r = cell.get((lab, metric))
            cells.append("-" if r is None else f"{_fmt(r['pearson_r'])} {ci_text(r)} (n={r['n']})")
        lines.append(f"| {md_escape(m.label)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def detail_table(rows: Sequence[dict[str, Any]]) -> str:
    """Every column of the correlation rows, as markdown."""
    head = "| label | reference | metric | n | r | p | 95 % CI | rho | AUROC | PRR |"
    lines = [head, "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {md_escape(r['label'])} | {md_escape(r['reference'])} | {md_escape(metric_label(r['metric']))} | {r['n']} | "
            f"{_fmt(r['pearson_r'])} | {r['pearson_p']:.1e} | {ci_text(r)} | "
            f"{_fmt(r['spearman_rho'])} | {_fmt(r['auroc'])} | {_fmt(r['prr'])} |"
        )
    return "\n".join(lines) + "\n"


def correlate_files(files: Sequence[str | Path], labels: Sequence[str], reference: str, out: Path) -> str:
    """``eas correlate``: the correlation rows of several per-question tables, one label each,
    written to ``out`` (created) as correlations.csv and correlations.md; returns the markdown.

    Raises:
        InputError: a table without the reference column or ids.
    """
    from eas.records import InputError
    from eas.storage.files import read_table

    rows = []
    for path, label in zip(files, labels, strict=True):
        table = read_table(path)
        missing = [c for c in (reference, "id") if not any(c in r for r in table)]
        if missing:
            raise InputError(f"{path}: no column {', '.join(missing)} (is it a per_question.jsonl?)")
        rows += correlation_rows(table, reference, label)
    out.mkdir(parents=True, exist_ok=True)
    write_correlations_csv(rows, out / "correlations.csv")
    text = markdown_table(rows, reference) + "\n" + detail_table(rows)
    (out / "correlations.md").write_text(text, encoding="utf-8")
    return text
