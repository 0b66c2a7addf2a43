"""How well EAS and each baseline flag the evaluator's wrong answers: AUROC per metric.

The correctness comes from the evaluator itself: a per-sample metric column whose values
are all 0/1 (or true/false), e.g. lm-eval's ``exact_match`` or lighteval's
``extractive_match``. A wrong answer is the positive class; each metric is turned into
an uncertainty score with its sign (``eas.maths.metrics.METRICS``), so 0.5 is chance
and 1 means every wrong answer scored as more uncertain than every right one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from eas.maths.metrics import METRICS, metric_label
from eas.records import InputError


def _binary(value: Any) -> bool | None:
    """True/False for a 0/1 (or boolean) value, None for a missing one; ValueError otherwise."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    raise ValueError(value)


def is_binary(rows: Sequence[dict[str, Any]], column: str) -> bool:
    try:
        return any(_binary(r.get(column)) is not None for r in rows)
    except ValueError:
        return False


def correctness_column(rows: Sequence[dict[str, Any]], requested: str | None = None) -> str | None:
    """The column that says whether each answer is right: ``requested``, else the first of
    the evaluator's metrics (each row's ``metrics`` list) that is 0/1; None if there is none.

    Raises:
        InputError: ``requested`` is missing or not 0/1.
    """
    if requested is not None:
        if not any(requested in r for r in rows):
            raise InputError(f"no column {requested!r} for --correct-field")
        if not is_binary(rows, requested):
            raise InputError(f"--correct-field {requested!r} is not 0/1 (or true/false) in every row")
        return requested
    names: dict[str, None] = {}
    for r in rows:
        for name in r.get("metrics") or []:
            names[str(name)] = None
    return next((n for n in names if is_binary(rows, n)), None)


def wrong_answer_aurocs(rows: Sequence[dict[str, Any]], correct: str) -> list[dict[str, Any]]:
    """One row per metric present: label, AUROC for the wrong answers, n, wrong."""
    from eas.maths.correlation import auroc

    out = []
    for column, metric in METRICS.items():
        pairs = [
            (metric.sign * float(r[column]), not _binary(r.get(correct)))
            for r in rows
            if r.get(column) is not None and _binary(r.get(correct)) is not None
        ]
        if not pairs:
            continue
        scores, wrong = zip(*pairs, strict=True)
        out.append(
            {
                "metric": column,
                "label": metric_label(column),
                "auroc": auroc(scores, wrong),
                "n": len(pairs),
                "wrong": int(sum(wrong)),
            }
        )
    return out


def summary_text(rows: Sequence[dict[str, Any]], correct: str) -> str:
    """The AUROC table as a few lines of text."""
    table = wrong_answer_aurocs(rows, correct)
    if not table:
        return f"no scored row has a {correct!r} value: no AUROC"
    n, wrong = table[0]["n"], table[0]["wrong"]
    lines = [f"AUROC for the wrong answers ({correct} = 0: {wrong} of {n}; 0.5 = chance):"]
    width = max(len(r["label"]) for r in table)
    for r in table:
        value = "n/a (needs right and wrong answers)" if math.isnan(r["auroc"]) else f"{r['auroc']:.3f}"
        lines.append(f"  {r['label']:<{width}}  {value}")
    return "\n".join(lines)
