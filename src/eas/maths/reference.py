"""The reference uncertainty of N sampled answers (docs/method.md section 2), pure.

Answer entropy, correctness entropy and pass rate are functions of one class label or
one correctness flag per sample (``eas.answers`` extracts and groups the answers).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np


def answer_entropy(labels: Sequence[Any]) -> float:
    """Entropy, in bits, of the share of samples in each answer class.

    ``labels`` holds one class label per sample (e.g. from ``group_answers``).

    Example:
        >>> answer_entropy([0, 1, 2, 3])
        2.0
        >>> answer_entropy([0, 0, 1, 1])
        1.0
    """
    if not labels:
        raise ValueError("answer_entropy needs at least one sample")
    counts = np.array(list(Counter(labels).values()), dtype=np.float64)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum()) + 0.0  # + 0.0 turns -0.0 into 0.0


def pass_rate(correct: Sequence[bool]) -> float:
    """Fraction of samples that are correct.

    Example:
        >>> pass_rate([True, False, False, False])
        0.25
    """
    if not correct:
        raise ValueError("pass_rate needs at least one sample")
    return float(np.mean(np.asarray(correct, dtype=np.float64)))


def correctness_entropy(correct: Sequence[bool]) -> float:
    """Binary entropy, in bits, of the fraction correct: ``-p log2 p - (1-p) log2 (1-p)``.

    Example:
        >>> correctness_entropy([True, False])
        1.0
        >>> correctness_entropy([True, True, True])
        0.0
    """
    p = pass_rate(correct)
    if p in (0.0, 1.0):
        return 0.0
    return float(-p * math.log2(p) - (1 - p) * math.log2(1 - p))
