"""The Backend protocol: what every model runtime provides to the scorer.

A backend measures; it never computes the per-record figures (``eas.metrics`` does).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from eas.probes import EncodedRecord


@dataclass(frozen=True)
class Measurement:
    """What a backend measured on one record.

    Attributes:
        probe_entropies: ``(T-1,)`` H_t in bits for t = 1 .. T-1. Exact for in-process
            backends; for top-K backends the entropy of the K returned tokens (a lower
            bound of H_t).
        token_logprobs: ``(R,)`` natural-log probability of each response token, or None
            when the backend cannot measure them (some servers).
        token_entropies: ``(R,)`` bits, entropy of the distribution predicting each token,
            or None when the backend cannot measure them.
        probe_token_probs: ``(T-1, K)`` probability, at each probe, of each of the record's
            tracked tokens (``EncodedRecord.track_ids``), from the same logits as the probe
            entropies; ``None`` when no token is tracked.
        probe_bounds: top-K backends only: ``(T-1,)`` bits the missing tail can add to
            each H_t (so H_t lies in ``[probe_entropies, probe_entropies + probe_bounds]``).
        probe_topk_mass: top-K backends only: ``(T-1,)`` probability mass of the K tokens.
    """

    probe_entropies: np.ndarray
    token_logprobs: np.ndarray | None
    token_entropies: np.ndarray | None
    probe_token_probs: np.ndarray | None = None
    probe_bounds: np.ndarray | None = None
    probe_topk_mass: np.ndarray | None = None


class Backend(Protocol):
    """A model runtime that can measure encoded records."""

    tokenizer: Any
    max_context: int | None

    def describe(self) -> dict[str, Any]:
        """Model name, device, dtype: what a results manifest should record."""
        ...

    def measure(self, batch: Sequence[EncodedRecord]) -> list[Measurement]:
        """Measure every record of ``batch``; one Measurement per record, same order."""
        ...
