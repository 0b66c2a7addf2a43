"""Paired bootstrap interval of a difference of means, resampling clusters.

``eas early-exit`` compares, sample by sample, the accuracy (or any per-sample value) of
an early exit with that of the full generation it cuts short. The n samples of one
question are not independent (they share the question), so the bootstrap resamples
questions (clusters) with replacement, each with all its samples, and recomputes the
difference of the two means over the resampled samples. The interval is the percentile
interval of those differences. With every difference equal to d it is [d, d].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class PairedDifference:
    """``mean(a) - mean(b)`` over the samples and its bootstrap interval.

    Attributes:
        difference: the observed difference of means.
        low, high: the percentile interval at ``confidence`` (NaN with fewer than 2 clusters).
        clusters: how many clusters (questions) were resampled.
        samples: how many paired samples.
        confidence: the interval's level.
    """

    difference: float
    low: float
    high: float
    clusters: int
    samples: int
    confidence: float


def cluster_sums(values: Sequence[Any], clusters: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """``(sums, counts)``: per cluster (in order of first appearance), the sum of ``values`` and the count."""
    index: dict[Any, int] = {}
    which = np.asarray([index.setdefault(c, len(index)) for c in clusters], dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)
    return np.bincount(which, weights=v, minlength=len(index)), np.bincount(which, minlength=len(index)).astype(float)


def paired_bootstrap(
    a: Sequence[Any],
    b: Sequence[Any],
    clusters: Sequence[Any],
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedDifference:
    """Difference of means ``a - b`` of paired samples, with a cluster-bootstrap percentile interval.

    Args:
        a, b: paired per-sample values (e.g. 1/0 correct of the early exit and of the full run).
        clusters: each sample's cluster (its question id).
        resamples: bootstrap draws.
        confidence: the interval's level.
        seed: seeds the draws (``numpy.random.default_rng``): draw i takes the clusters
            ``rng.integers(0, G, size=(resamples, G))[i]``.
    """
    if not len(a) == len(b) == len(clusters):
        raise ValueError("a, b and clusters must have one entry per sample")
    if not len(a):
        raise ValueError("no samples")
    if not 0 < confidence < 1 or resamples < 1:
        raise ValueError("need 0 < confidence < 1 and resamples >= 1")
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    sums, counts = cluster_sums(d, clusters)
    g = len(sums)
    observed = float(sums.sum() / counts.sum())
    if g < 2:
        return PairedDifference(observed, float("nan"), float("nan"), g, len(d), confidence)
    picks = np.random.default_rng(seed).integers(0, g, size=(resamples, g))
    draws = sums[picks].sum(axis=1) / counts[picks].sum(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(draws, [tail, 1 - tail])
    return PairedDifference(observed, float(low), float(high), g, len(d), confidence)
