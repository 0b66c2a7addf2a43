"""Stratified probing: which positions to probe at stride k, and the EAS estimate with its SE.

Pure (numpy and hashlib only). docs/method.md, "Stratified probing", derives every formula.

The strata of a record with T-1 probes (t = 1 .. T-1):

* the positions 1 .. T-2 cut into consecutive blocks of k (the last block may be
  shorter): one position per block, drawn uniformly from a seeded generator;
* ``t = T-1`` alone, probed with certainty (weight 1): the last probe is always run, so
  the final-answer entropy stays exact.

Estimate: ``EAS_hat = sum_b n_b * H_{t_b}``, ``n_b`` the size of block b; unbiased,
since ``E[n_b H_{t_b}] = sum_{t in b} H_t``. Its standard error assumes the entropies
of a block scatter around a locally constant level with a variance ``sigma^2`` that is
estimated from the differences between the probes of neighbouring blocks (conservative
where the trajectory trends).

Deliberate simplification: the offsets come from numpy's PCG64 generator, which is
stable for a given numpy version (the seed, not the stream, is what a run records).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ProbePlan:
    """The probes of one record.

    Attributes:
        positions: 1-based t of every probe to run, increasing; the last is T-1.
        weights: how many positions each probe stands for (its block's size); the
            last (t = T-1) is 1. ``sum(weights) == T-1``.
    """

    positions: tuple[int, ...]
    weights: tuple[int, ...]


def record_seed(record_id: Any, probe_seed: int) -> int:
    """The generator seed of one record: a hash of (``probe_seed``, the record id).

    The id's JSON type counts (``1`` and ``"1"`` differ), so a rerun or a resumed run
    draws the same positions for the same record, and records differ from each other.

    Example:
        >>> record_seed("q1", 0) == record_seed("q1", 0) != record_seed("q1", 1)
        True
    """
    data = json.dumps([int(probe_seed), record_id], sort_keys=True, default=str)
    return int.from_bytes(hashlib.sha256(data.encode()).digest()[:8], "little")


def block_sizes(n_probes: int, stride: int) -> list[int]:
    """Sizes of the strata of ``n_probes`` positions at ``stride``: blocks of ``stride``
    over t = 1 .. T-2 (the last one shorter if need be), then 1 for t = T-1.

    Example:
        >>> block_sizes(10, 4)
        [4, 4, 1, 1]
        >>> block_sizes(1, 8), block_sizes(0, 8)
        ([1], [])
    """
    if stride < 1:
        raise ValueError("stride must be >= 1")
    if n_probes < 1:
        return []
    m = n_probes - 1  # positions before the certain last one
    return [stride] * (m // stride) + ([m % stride] if m % stride else []) + [1]


def probe_plan(n_probes: int, stride: int, seed: int) -> ProbePlan:
    """One position per block, drawn with ``np.random.default_rng(seed)``, and T-1.

    Stride 1 probes every position (no draw); a record without a probe (T = 1) has an
    empty plan at any stride.

    Example:
        >>> plan = probe_plan(10, 4, seed=7)
        >>> plan.weights, plan.positions[-1], len(plan.positions)
        ((4, 4, 1, 1), 10, 4)
        >>> all(1 + 4 * b <= t <= 4 * (b + 1) for b, t in enumerate(plan.positions[:2]))
        True
        >>> probe_plan(3, 1, seed=7)
        ProbePlan(positions=(1, 2, 3), weights=(1, 1, 1))
        >>> probe_plan(0, 4, seed=7)
        ProbePlan(positions=(), weights=())
    """
    sizes = block_sizes(n_probes, stride)
    if not sizes:
        return ProbePlan((), ())
    if stride == 1:
        return ProbePlan(tuple(range(1, n_probes + 1)), tuple(sizes))
    random_blocks = np.asarray(sizes[:-1], dtype=np.int64)
    starts = 1 + np.concatenate([[0], np.cumsum(random_blocks)[:-1]]).astype(np.int64) if random_blocks.size else []
    offsets = np.random.default_rng(seed).integers(0, random_blocks) if random_blocks.size else []
    positions = [int(s + o) for s, o in zip(starts, offsets, strict=True)] + [n_probes]
    return ProbePlan(tuple(positions), tuple(sizes))


def stratified_se(values: Sequence[float], sizes: Sequence[int]) -> float | None:
    """Standard error of ``sum_b n_b y_b`` for one uniform draw ``y_b`` per block of ``n_b``.

    ``se^2 = sigma2 * sum_b n_b (n_b - 1)``, with
    ``sigma2 = sum_{b=1}^{B-1} (y_{b+1} - y_b)^2 / (2 (B - 1))`` (docs/method.md).
    Blocks of one position add nothing (0.0 when every block has one); ``None`` when
    the error cannot be estimated (a block of several positions but fewer than two blocks).

    Example (the test's hand-worked case): y = (1, 3, 2), sizes (4, 4, 2):
    sigma2 = ((3-1)^2 + (2-3)^2) / 4 = 1.25, sum n(n-1) = 12 + 12 + 2 = 26,
    se = sqrt(32.5):
        >>> round(stratified_se([1.0, 3.0, 2.0], [4, 4, 2]), 6)
        5.700877
        >>> stratified_se([1.0, 2.0], [1, 1]), stratified_se([1.0], [3])
        (0.0, None)
    """
    y = np.asarray(values, dtype=np.float64)
    n = np.asarray(sizes, dtype=np.float64)
    if y.shape != n.shape:
        raise ValueError("one value per block is needed")
    spread = float(np.sum(n * (n - 1)))
    if spread == 0:
        return 0.0
    if y.size < 2:
        return None
    sigma2 = float(np.sum(np.diff(y) ** 2)) / (2 * (y.size - 1))
    return math.sqrt(sigma2 * spread)


def stratified_area(probe_entropies: Sequence[float], weights: Sequence[int]) -> tuple[float, float | None]:
    """``(EAS_hat, se)`` from the probed ``H_t`` of a ``ProbePlan`` (the last one certain).

    Example:
        >>> stratified_area([1.0, 3.0, 2.0, 0.5], [4, 4, 2, 1])
        (20.5, 5.70087712549569)
    """
    h = np.asarray(probe_entropies, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if h.shape != w.shape:
        raise ValueError("one weight per probed entropy is needed")
    if not h.size:
        return 0.0, 0.0
    return float(np.sum(w * h)), stratified_se(h[:-1], w[:-1])
