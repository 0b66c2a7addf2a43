"""What a finished scoring run holds, in a few figures (``eas score``'s closing summary).

Read back from the output file (streaming), so a run that was already complete is
summarised the same way as one that has just finished.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eas.storage.files import check_output_path, iter_rows


@dataclass(frozen=True)
class ScoreSummary:
    """EAS over the rows of an output.

    Attributes:
        rows: rows in the output.
        scored: rows with a finite ``eas``.
        mean, sd, median: of ``eas`` over those rows (None when there are none; sd needs two).
        most, least: ``(id, eas)`` of the highest and lowest EAS rows, ``top`` of each, most extreme first.
    """

    rows: int
    scored: int
    mean: float | None
    sd: float | None
    median: float | None
    most: list[tuple[Any, float]]
    least: list[tuple[Any, float]]


def summarize(out: str | Path, top: int = 3) -> ScoreSummary:
    """The ``ScoreSummary`` of the results file ``out``.

    Example:
        >>> s = summarize("scored.jsonl")  # doctest: +SKIP
        >>> s.most[0]  # doctest: +SKIP
        ('r12', 88.1)
    """
    out = Path(out)
    ids: list[Any] = []
    values: list[float] = []
    rows = 0
    for _, row in iter_rows(out, check_output_path(out)):
        if not isinstance(row, dict):
            continue
        rows += 1
        value = row.get("eas")
        if isinstance(value, (int, float)) and math.isfinite(value):
            ids.append(row.get("id"))
            values.append(float(value))
    if not values:
        return ScoreSummary(rows, 0, None, None, None, [], [])
    eas = np.asarray(values)
    order = np.argsort(-eas, kind="stable")
    k = min(top, eas.size)
    return ScoreSummary(
        rows=rows,
        scored=int(eas.size),
        mean=float(eas.mean()),
        sd=float(eas.std(ddof=1)) if eas.size > 1 else None,
        median=float(np.median(eas)),
        most=[(ids[i], float(eas[i])) for i in order[:k]],
        least=[(ids[i], float(eas[i])) for i in order[::-1][:k]],
    )
