"""Per-record figures from probe entropies and the response's own token statistics.

Pure numpy. Inputs are what a backend measured for one record:

* ``probe_entropies``: ``H_t`` in bits for t = 1 .. T-1 (docs/method.md section 1);
* ``token_logprobs``: natural-log ``log P(x_t | x_<t)`` for every response token;
* ``token_entropies``: entropy in bits of the next-token distribution that predicted
  each response token (teacher-forced).

For top-K backends (servers) two more per-probe arrays exist: the truncation bound of
each ``H_t`` and the top-K mass; ``topk_figures`` and ``topk_table`` summarise them.

Sums are accumulated in float64.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from eas.maths.stratified import stratified_area

HES_FRACTION = 0.005


@dataclass(frozen=True)
class Metric:
    """One single-pass metric of the registry.

    Attributes:
        column: its column in scored rows (``eas score``) and in the study's tables.
        label: display name in tables and figures.
        sign: +1 when a higher value means more uncertain, -1 when lower does (so that
            ``sign * value`` is an uncertainty score for AUROC, PRR and selection).
        strategy: the ``eas select`` strategy that keeps the highest values, if any.
    """

    column: str
    label: str
    sign: float = 1.0
    strategy: str | None = None


# Every single-pass metric, in table order: the one place their names, labels and signs live.
METRICS: dict[str, Metric] = {
    m.column: m
    for m in (
        Metric("eas", "EAS", strategy="eas"),
        Metric("mean_eas", "Mean EAS"),
        Metric("ppl", "PPL"),
        Metric("response_tokens", "Length"),
        Metric("mean_token_entropy", "Mean token entropy", strategy="mean-entropy"),
        Metric("max_seq_logprob", "Max seq. log-prob", sign=-1.0),
        Metric("hes", "HES", strategy="hes"),
        Metric("final_entropy", "Final-answer entropy"),
    )
}


def metric_label(column: str) -> str:
    """The display name of a metric column (the column itself when it is not registered)."""
    return METRICS[column].label if column in METRICS else column


def entropy_area(probe_entropies: np.ndarray) -> float:
    """EAS: the area under the entropy trajectory, ``sum_{t=1}^{T-1} H_t`` (bits).

    Example:
        >>> entropy_area(np.array([1.0, 0.5, 0.25]))
        1.75
    """
    return float(np.sum(np.asarray(probe_entropies, dtype=np.float64)))


def mean_entropy_area(probe_entropies: np.ndarray) -> float | None:
    """Mean EAS = EAS / (T-1); ``None`` when there is no probe (T = 1).

    Example:
        >>> mean_entropy_area(np.array([1.0, 0.5]))
        0.75
    """
    h = np.asarray(probe_entropies, dtype=np.float64)
    return float(h.mean()) if h.size else None


def perplexity(token_logprobs: np.ndarray) -> float | None:
    """``exp(-mean log P(x_t | x_<t))`` over the response tokens; ``None`` if empty.

    Example:
        >>> round(perplexity(np.log(np.array([0.5, 0.5]))), 6)
        2.0
    """
    lp = np.asarray(token_logprobs, dtype=np.float64)
    return float(math.exp(-lp.mean())) if lp.size else None


def max_sequence_logprob(token_logprobs: np.ndarray) -> float:
    """Maximum sequence probability baseline: ``sum_t log P(x_t | x_<t)`` (nats).

    Example:
        >>> round(max_sequence_logprob(np.log(np.array([0.5, 0.5]))), 6)
        -1.386294
    """
    return float(np.sum(np.asarray(token_logprobs, dtype=np.float64)))


def mean_token_entropy(token_entropies: np.ndarray) -> float | None:
    """Mean of the response tokens' next-token entropies (bits); ``None`` if empty."""
    h = np.asarray(token_entropies, dtype=np.float64)
    return float(h.mean()) if h.size else None


def high_entropy_sum(token_entropies: np.ndarray, fraction: float = HES_FRACTION) -> float:
    """HES: the sum of the ``ceil(fraction * n)`` highest token entropies (at least one).

    Example:
        >>> high_entropy_sum(np.array([0.1, 3.0, 0.2, 2.0]), fraction=0.5)
        5.0
    """
    h = np.asarray(token_entropies, dtype=np.float64)
    if not h.size:
        return 0.0
    k = max(1, math.ceil(fraction * h.size))
    return float(np.sort(h)[-k:].sum())


def final_entropy(probe_entropies: np.ndarray) -> float | None:
    """``H_{T-1}``: the entropy of the last probe, just before the final answer token."""
    h = np.asarray(probe_entropies)
    return float(h[-1]) if h.size else None


def record_figures(
    probe_entropies: np.ndarray,
    token_logprobs: np.ndarray | None,
    token_entropies: np.ndarray | None,
    hes_fraction: float = HES_FRACTION,
    probe_weights: np.ndarray | None = None,
) -> dict[str, float | int | None]:
    """All single-pass figures of one record, keyed by their output column names.

    Token statistics a backend could not measure (``None``) give ``None`` figures.
    ``probe_weights``: under stratified probing (``eas.maths.stratified``), the block
    size each probed ``H_t`` stands for; then ``eas`` is the estimate, ``eas_se`` its
    standard error, ``n_probes`` still T-1 and ``n_probes_run`` the probes run. Without
    weights every probe was run: ``eas`` is exact and ``eas_se`` is 0.
    """
    has_lp, has_h = token_logprobs is not None, token_entropies is not None
    h = np.asarray(probe_entropies)
    if probe_weights is None:
        eas, se, n = entropy_area(h), 0.0, int(h.size)
        mean = mean_entropy_area(h)
    else:
        eas, se = stratified_area(h, probe_weights)
        n = int(np.sum(probe_weights))
        mean = eas / n if n else None
    return {
        "eas": eas,
        "eas_se": se,
        "mean_eas": mean,
        "n_probes": n,
        "n_probes_run": int(h.size),
        "ppl": perplexity(token_logprobs) if has_lp else None,
        "mean_token_entropy": mean_token_entropy(token_entropies) if has_h else None,
        "max_seq_logprob": max_sequence_logprob(token_logprobs) if has_lp else None,
        "hes": high_entropy_sum(token_entropies, hes_fraction) if has_h else None,
        "final_entropy": final_entropy(h),
    }


def non_finite_fields(row: Mapping[str, Any]) -> list[str]:
    """The fields of a result row that hold a number that is not finite (NaN, +-inf), at any depth.

    Every scoring path (exact, stratified, amortised) checks its rows with it: a record
    whose figures are not finite goes to the errors file, never into the results with a
    NaN (or a null standing for one). The ``id`` is the input's and is not checked.

    Example:
        >>> non_finite_fields({"id": 1, "eas": 2.0, "trajectory": [0.5, float("nan")], "ppl": None})
        ['trajectory']
    """
    return [k for k, v in row.items() if k != "id" and not _all_finite(v)]


def _all_finite(value: Any) -> bool:
    if isinstance(value, float | np.floating):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_all_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(_all_finite(v) for v in value)
    if isinstance(value, np.ndarray):
        return value.dtype.kind not in "fc" or bool(np.isfinite(value).all())
    return True


def topk_figures(
    probe_bounds: np.ndarray, probe_topk_mass: np.ndarray, probe_weights: np.ndarray | None = None
) -> dict[str, float | None]:
    """Per-record top-K figures: ``eas_bound`` (exact EAS lies in [eas, eas + eas_bound])
    and the smallest top-K mass over the probes. Under stratified probing
    (``probe_weights``) ``eas_bound`` is estimated like ``eas`` and the mass is the
    smallest over the probes run.

    Example:
        >>> topk_figures(np.array([0.01, 0.04]), np.array([0.999, 0.99]))
        {'eas_bound': 0.05, 'min_topk_mass': 0.99}
    """
    mass = np.asarray(probe_topk_mass, dtype=np.float64)
    bounds = np.asarray(probe_bounds, dtype=np.float64)
    if probe_weights is not None:
        bounds = bounds * np.asarray(probe_weights, dtype=np.float64)
    return {
        "eas_bound": float(np.sum(bounds)),
        "min_topk_mass": float(mass.min()) if mass.size else None,
    }


TOPK_PERCENTILES = (90, 95, 99)


def topk_table(
    topk_mass: np.ndarray, bounds: np.ndarray, entropies: np.ndarray | None = None
) -> list[dict[str, float | str]]:
    """Summary of top-K truncation over probe positions (the paper's Table 1).

    Row ``all``: mean top-K mass and mean bound. Row ``p90`` (``p95``, ``p99``): the
    positions at that percentile of badness, i.e. the (100-p)-th percentile of the mass
    and the p-th percentile of the bound. ``entropy`` is the mean top-K entropy per
    position (row ``all`` only) when ``entropies`` are given.

    Example:
        >>> rows = topk_table(np.array([1.0, 0.5]), np.array([0.0, 1.0]))
        >>> rows[0]["mass"], rows[0]["bound"]
        (0.75, 0.5)
    """
    mass = np.asarray(topk_mass, dtype=np.float64)
    bound = np.asarray(bounds, dtype=np.float64)
    if mass.shape != bound.shape or not mass.size:
        raise ValueError("topk_table needs equal, non-empty arrays of masses and bounds")
    rows: list[dict[str, float | str]] = [
        {"positions": "all", "mass": float(mass.mean()), "bound": float(bound.mean())}
    ]
    if entropies is not None:
        rows[0]["entropy"] = float(np.mean(np.asarray(entropies, dtype=np.float64)))
    for p in TOPK_PERCENTILES:
        rows.append(
            {
                "positions": f"p{p}",
                "mass": float(np.percentile(mass, 100 - p)),
                "bound": float(np.percentile(bound, p)),
            }
        )
    return rows
