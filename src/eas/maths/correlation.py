"""How well a single-pass metric tracks a reference uncertainty: pure statistics.

* ``correlate``: Pearson r and its p-value, Spearman rho, a seeded 95 % bootstrap
  confidence interval for r (``scipy.stats.bootstrap``, paired resampling, BCa with a
  percentile fallback when BCa is undefined), and n.
* ``auroc``: area under the ROC curve of a metric used to predict that an answer is wrong
  (higher metric = more uncertain = predicted wrong); ties count one half.
* ``prr``: prediction-rejection ratio as LM-Polygraph reports it. The prediction-rejection
  area (PRA) is the mean, over rejection levels r = 0 .. n-1, of the mean quality of the
  n - r least uncertain samples; PRR = (PRA - PRA_random) / (PRA_oracle - PRA_random),
  where the oracle rejects the worst samples first. **(ours)** PRA_random is its exact
  expectation, the mean quality, instead of LM-Polygraph's average over 1,000 shuffles.

Pairs where either value is missing (None or NaN) are dropped before anything is computed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

NAN = float("nan")


@dataclass(frozen=True)
class Correlation:
    """Agreement between one metric and a reference over n questions."""

    n: int
    pearson_r: float
    pearson_p: float
    ci_low: float
    ci_high: float
    spearman_rho: float
    spearman_p: float

    def row(self) -> dict[str, Any]:
        return dict(self.__dict__)


def finite_pairs(x: Sequence[Any], y: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """``x`` and ``y`` as float arrays, keeping only positions where both are finite numbers."""
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length ({len(x)} != {len(y)})")
    xs = np.array([NAN if v is None else float(v) for v in x], dtype=np.float64)
    ys = np.array([NAN if v is None else float(v) for v in y], dtype=np.float64)
    keep = np.isfinite(xs) & np.isfinite(ys)
    return xs[keep], ys[keep]


def _pearson_along(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """Pearson r along ``axis`` (vectorised, for the bootstrap); NaN for constant input."""
    xm = x - x.mean(axis=axis, keepdims=True)
    ym = y - y.mean(axis=axis, keepdims=True)
    den = np.sqrt((xm * xm).sum(axis=axis) * (ym * ym).sum(axis=axis))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, (xm * ym).sum(axis=axis) / np.where(den > 0, den, 1.0), NAN)


def bootstrap_ci(
    x: np.ndarray, y: np.ndarray, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Bootstrap confidence interval of Pearson r (paired resampling of questions).

    BCa when scipy can compute it, else the percentile interval; NaNs when n < 3 or the
    data are constant.
    """
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return NAN, NAN
    import warnings

    from scipy import stats

    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = stats.bootstrap(
                (x, y),
                _pearson_along,
                paired=True,
                vectorized=True,
                confidence_level=confidence,
                n_resamples=n_resamples,
                method=method,
                rng=np.random.default_rng(seed),
            )
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if math.isfinite(lo) and math.isfinite(hi):
            return lo, hi
    return NAN, NAN


def pearson(x: Sequence[Any], y: Sequence[Any]) -> tuple[float, float]:
    """Pearson r and its two-sided p-value over the finite pairs; NaNs when undefined.

    Example:
        >>> r, p = pearson([1, 2, 3], [2, 4, 6])
        >>> round(r, 6)
        1.0
    """
    xs, ys = finite_pairs(x, y)
    if xs.size < 2 or np.ptp(xs) == 0 or np.ptp(ys) == 0:
        return NAN, NAN
    from scipy import stats

    res = stats.pearsonr(xs, ys)
    return float(res.statistic), float(res.pvalue)


def correlate(
    x: Sequence[Any], y: Sequence[Any], confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> Correlation:
    """Pearson r (with p and a bootstrap CI) and Spearman rho of ``x`` against ``y``.

    Args:
        x: the metric, one value per question (None/NaN entries are dropped with their pair).
        y: the reference (e.g. answer entropy).
        confidence: level of the bootstrap interval.
        n_resamples: bootstrap resamples.
        seed: seed of the bootstrap, so a rerun gives the same interval.

    Example:
        >>> c = correlate([1, 2, 3, 4], [1, 2, 3, 5])
        >>> round(c.pearson_r, 4), c.n
        (0.9827, 4)
    """
    xs, ys = finite_pairs(x, y)
    n = int(xs.size)
    if n < 2 or np.ptp(xs) == 0 or np.ptp(ys) == 0:
        return Correlation(n, NAN, NAN, NAN, NAN, NAN, NAN)
    from scipy import stats

    pr = stats.pearsonr(xs, ys)
    sr = stats.spearmanr(xs, ys)
    lo, hi = bootstrap_ci(xs, ys, confidence, n_resamples, seed)
    return Correlation(n, float(pr.statistic), float(pr.pvalue), lo, hi, float(sr.statistic), float(sr.pvalue))


def auroc(scores: Sequence[Any], positive: Sequence[Any]) -> float:
    """AUROC of ``scores`` for detecting the positives (e.g. wrong answers).

    The probability that a random positive scores higher than a random negative, ties
    counting one half (the Mann-Whitney statistic). NaN without both classes.

    Example:
        >>> auroc([0.9, 0.1, 0.4, 0.5, 0.4], [1, 0, 1, 0, 0])
        0.75
    """
    s, pos = finite_pairs(scores, positive)
    pos = pos.astype(bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return NAN
    from scipy.stats import rankdata

    ranks = rankdata(s)  # average ranks: ties count one half
    u = ranks[pos].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def _rejection_area(uncertainty: np.ndarray, quality: np.ndarray) -> float:
    """Mean over rejection levels of the mean quality of the samples kept."""
    order = np.argsort(uncertainty, kind="stable")  # least uncertain first
    kept_means = np.cumsum(quality[order]) / np.arange(1, quality.size + 1)
    return float(kept_means.mean())


def prr(uncertainty: Sequence[Any], quality: Sequence[Any]) -> float:
    """Prediction-rejection ratio of an uncertainty score against a quality (higher better).

    1 = ranks like the oracle, 0 = no better than random, negative = worse than random.
    NaN when the quality is constant (nothing to rank) or fewer than two pairs remain.

    Example:
        >>> round(prr([0.1, 0.5, 0.3], [1, 1, 0]), 6)
        0.25
    """
    u, q = finite_pairs(uncertainty, quality)
    if q.size < 2 or np.ptp(q) == 0:
        return NAN
    q = (q - q.min()) / (q.max() - q.min())  # LM-Polygraph normalises the quality to [0, 1]
    area = _rejection_area(u, q)
    oracle = _rejection_area(-q, q)
    random = float(q.mean())
    return (area - random) / (oracle - random)
