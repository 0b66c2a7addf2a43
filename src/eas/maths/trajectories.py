"""Pure maths on per-probe trajectories: option probabilities and entropy curves.

docs/method.md section 3: for each option o, the probe probabilities ``P_t(o)`` are shown raw,
cumulated, and with a decayed cumulative sum
``P~_t(o) = sum_{k<=t} P_k(o) / (t - k + 1)^alpha`` (alpha = 0: plain cumulative sum;
alpha -> inf: raw ``P_t``). Questions are bucketed by answer entropy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BUCKETS: tuple[tuple[str, float, float], ...] = (
    ("low", 0.0, 0.5),  # [0, 0.5)
    ("medium", 0.5, 1.5),  # [0.5, 1.5]
    ("high", 1.5, float("inf")),  # (1.5, inf)
)


def decayed_cumulative(probs: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """``P~_t = sum_{k=1}^{t} P_k / (t - k + 1)^alpha`` along the first axis.

    Args:
        probs: ``(T, ...)`` probabilities per probe (e.g. ``(T, n_options)``).
        alpha: decay exponent, >= 0. ``np.inf`` returns ``probs`` unchanged.

    Example:
        >>> decayed_cumulative(np.array([1.0, 0.0, 1.0]), alpha=1.0).tolist()
        [1.0, 0.5, 1.3333333333333333]
    """
    p = np.asarray(probs, dtype=np.float64)
    if alpha < 0:
        raise ValueError("alpha must be >= 0")
    if np.isinf(alpha):
        return p.copy()
    t = p.shape[0]
    lag = np.arange(t)[:, None] - np.arange(t)[None, :]  # (T, T): t - k
    weights = np.where(lag >= 0, 1.0 / (np.maximum(lag, 0) + 1.0) ** alpha, 0.0)
    return np.tensordot(weights, p, axes=(1, 0))


def cumulative(probs: np.ndarray) -> np.ndarray:
    """Plain cumulative sum along the first axis (``decayed_cumulative`` with alpha = 0)."""
    return np.cumsum(np.asarray(probs, dtype=np.float64), axis=0)


def entropy_bucket(h: float) -> str:
    """``low`` for [0, 0.5), ``medium`` for [0.5, 1.5], ``high`` above 1.5 bits.

    Example:
        >>> [entropy_bucket(h) for h in (0.0, 0.5, 1.5, 1.51)]
        ['low', 'medium', 'medium', 'high']
    """
    if h < 0.5:
        return "low"
    if h <= 1.5:
        return "medium"
    return "high"


def mean_on_grid(trajectories: Sequence[Sequence[float]], points: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Mean of trajectories of different lengths on a common relative-position grid.

    Each trajectory is linearly interpolated onto ``points`` positions spanning its
    first (0) to last (1) probe, then the curves are averaged.

    Returns:
        ``(grid (points,), mean (points,))``; the mean is all NaN without trajectories.
    """
    grid = np.linspace(0.0, 1.0, points)
    curves = []
    for tr in trajectories:
        h = np.asarray(tr, dtype=np.float64)
        if h.size == 0:
            continue
        x = np.linspace(0.0, 1.0, h.size) if h.size > 1 else np.zeros(1)
        curves.append(np.interp(grid, x, h) if h.size > 1 else np.full(points, h[0]))
    if not curves:
        return grid, np.full(points, np.nan)
    return grid, np.mean(curves, axis=0)
