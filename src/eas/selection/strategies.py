"""Training-data selection at a budget: which B records a strategy keeps (pure).

Strategies (docs/method.md section 4):

* ``random``: B records uniformly, from a seeded generator;
* ``length``: the B longest traces by total tokens (prompt + response);
* ``pass-rate``: drop pass rates 0 and 1, keep the B lowest (fewer if fewer remain);
* ``eas``: the B highest EAS of the student on the given traces;
* ``hes``, ``mean-entropy``: the B highest HES / mean token entropy (extra baselines).

Ties are broken by input order (the earlier record wins), so a selection depends only
on the scores, the budget and, for ``random``, the seed. This module only ranks: the
scores come from ``eas score`` (EAS, HES, ...), a tokenizer (length) or sampling
(pass rate).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from eas.maths.metrics import METRICS

Strategy = Literal["random", "length", "pass-rate", "eas", "hes", "mean-entropy"]
STRATEGIES: tuple[str, ...] = ("random", "length", "pass-rate", "eas", "hes", "mean-entropy")

# The column of an `eas score` output each score-based strategy ranks by (from the registry).
SCORE_COLUMNS: dict[str, str] = {m.strategy: m.column for m in METRICS.values() if m.strategy}
# The column every strategy but random ranks by: the score columns, token counts, pass rates.
STRATEGY_COLUMNS: dict[str, str] = {"length": "total_tokens", "pass-rate": "pass_rate", **SCORE_COLUMNS}


@dataclass(frozen=True)
class Selection:
    """The chosen records, best first.

    Attributes:
        indices: positions in the pool, in rank order.
        scores: the score each was chosen by (for random: its draw in [0, 1)).
        eligible: how many records the strategy could choose from.
        shortfall: budget minus the number chosen (0 unless the pool ran short).
    """

    indices: list[int]
    scores: list[float]
    eligible: int
    shortfall: int


def top_k(scores: Sequence[float | None], budget: int, highest: bool = True) -> list[int]:
    """Indices of the ``budget`` best finite scores; ties go to the earlier index.

    Example:
        >>> top_k([1.0, 3.0, 3.0, None, 2.0], 2)
        [1, 2]
        >>> top_k([1.0, 3.0, 3.0, None, 2.0], 2, highest=False)
        [0, 4]
    """
    if budget < 0:
        raise ValueError("budget must be >= 0")
    values = np.array([np.nan if s is None else float(s) for s in scores], dtype=np.float64)
    valid = np.flatnonzero(np.isfinite(values))
    keys = -values[valid] if highest else values[valid]
    order = valid[np.argsort(keys, kind="stable")]  # stable: equal scores keep input order
    return [int(i) for i in order[:budget]]


def select(strategy: str, scores: Sequence[float | None] | None, n: int, budget: int, seed: int = 0) -> Selection:
    """Choose ``budget`` of ``n`` pool records with ``strategy``.

    Args:
        strategy: one of ``STRATEGIES``.
        scores: one per record: EAS / HES / mean entropy, total tokens (length) or
            pass rate; ``None`` for random. A ``None`` score makes a record ineligible.
        n: pool size.
        budget: B.
        seed: for ``random``.

    Raises:
        ValueError: unknown strategy, an empty pool, a negative budget, or scores of
            the wrong length.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")
    if n == 0:
        raise ValueError("the pool is empty: nothing to select from")
    if budget < 1:
        raise ValueError("budget must be >= 1")
    if strategy == "random":
        draws = np.random.default_rng(seed).random(n)
        chosen = [int(i) for i in np.argsort(draws, kind="stable")[:budget]]
        return Selection(chosen, [float(draws[i]) for i in chosen], n, max(0, budget - len(chosen)))
    if scores is None or len(scores) != n:
        raise ValueError(f"strategy {strategy!r} needs one score per record")
    values = list(scores)
    if strategy == "pass-rate":
        # Always right or always wrong teaches nothing the student can use: drop both.
        values = [None if s is None or s <= 0.0 or s >= 1.0 else s for s in values]
    chosen = top_k(values, budget, highest=strategy != "pass-rate")
    eligible = int(sum(v is not None and bool(np.isfinite(v)) for v in values))
    return Selection(chosen, [float(values[i]) for i in chosen], eligible, budget - len(chosen))


def quantiles(values: Sequence[float], qs: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0)) -> dict[str, float]:
    """Named quantiles of finite values, for the selection manifest (empty if none)."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    if not v.size:
        return {}
    return {f"q{int(q * 100)}": float(np.quantile(v, q)) for q in qs}
