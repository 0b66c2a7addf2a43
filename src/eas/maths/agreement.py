"""How close estimated trajectories are to exact ones: the figures an estimate is judged by.

Pure numpy (scipy for ranks). Given the exact probe entropies of some traces and an
estimate of each (amortised or stratified), ``agreement`` reports:

* ``per_position_r``: Pearson r of estimated vs exact ``H_t`` over every position of
  every trace pooled;
* ``spearman_eas`` and ``spearman_mean_eas``: rank agreement, across traces, of EAS and
  of mean EAS (EAS ranks are dominated by length, so mean EAS is the honest test);
* ``top25_overlap``: the share of the exact top-25 % traces by mean EAS that the
  estimate also puts in its top 25 % (``top25_overlap_eas``: the same by EAS);
* ``mean_rel_error``: the mean over traces of ``|estimated EAS - EAS| / EAS``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

TOP_FRACTION = 0.25


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rho (average ranks for ties); NaN with fewer than two values or a constant side.

    Example:
        >>> round(spearman([1, 2, 3, 4], [10, 30, 20, 40]), 6)
        0.8
    """
    from scipy.stats import rankdata

    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(np.corrcoef(rankdata(a), rankdata(b))[0, 1])


def top_overlap(estimate: Sequence[float], exact: Sequence[float], fraction: float = TOP_FRACTION) -> float:
    """Share of the exact top ``fraction`` (at least one) that is also in the estimate's top.

    Ties are broken by position (the first wins), as the selection strategies do.

    Example:
        >>> top_overlap([4, 3, 2, 1], [4, 1, 3, 2], fraction=0.5)
        0.5
    """
    a, b = np.asarray(estimate, dtype=np.float64), np.asarray(exact, dtype=np.float64)
    k = max(1, round(fraction * a.size))
    top_a = set(np.argsort(-a, kind="stable")[:k].tolist())
    top_b = set(np.argsort(-b, kind="stable")[:k].tolist())
    return len(top_a & top_b) / k


def pooled_r(estimates: Sequence[np.ndarray], exacts: Sequence[np.ndarray]) -> float:
    """Pearson r over every position of every trace, pooled.

    Example:
        >>> round(pooled_r([np.array([1.0, 2.0])], [np.array([2.0, 4.0])]), 6)
        1.0
    """
    a = np.concatenate([np.asarray(e, dtype=np.float64) for e in estimates])
    b = np.concatenate([np.asarray(e, dtype=np.float64) for e in exacts])
    if a.size != b.size:
        raise ValueError("estimated and exact trajectories differ in length")
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def agreement(estimates: Sequence[np.ndarray], exacts: Sequence[np.ndarray]) -> dict[str, float]:
    """The module docstring's figures for paired per-trace trajectories (one or more probes each).

    Example:
        >>> est = [np.array([1.0, 1.0]), np.array([2.0]), np.array([0.5, 0.5, 0.5])]
        >>> out = agreement(est, [np.array([1.0, 1.2]), np.array([2.5]), np.array([0.4, 0.5, 0.6])])
        >>> out["spearman_mean_eas"], round(out["mean_rel_error"], 4)
        (1.0, 0.097)
    """
    if len(estimates) != len(exacts) or not estimates:
        raise ValueError("need as many estimated as exact trajectories, at least one")
    if any(np.size(e) == 0 for e in exacts):
        raise ValueError("every trajectory needs at least one probe")
    eas_est = np.array([np.sum(e) for e in estimates], dtype=np.float64)
    eas = np.array([np.sum(e) for e in exacts], dtype=np.float64)
    mean_est = np.array([np.mean(e) for e in estimates], dtype=np.float64)
    mean = np.array([np.mean(e) for e in exacts], dtype=np.float64)
    positive = eas > 0
    rel = np.abs(eas_est - eas)[positive] / eas[positive]
    return {
        "per_position_r": pooled_r(estimates, exacts),
        "spearman_eas": spearman(eas_est, eas),
        "spearman_mean_eas": spearman(mean_est, mean),
        "top25_overlap": top_overlap(mean_est, mean),
        "top25_overlap_eas": top_overlap(eas_est, eas),
        "mean_rel_error": float(rel.mean()) if rel.size else float("nan"),
    }
