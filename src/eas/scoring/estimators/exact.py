"""Exact EAS, and its stratified estimate: every probe (or one per block of ``probe_stride``) measured.

The probe stride is a setting of ``EASConfig``: with ``probe_stride == 1`` every position
t = 1 .. T-1 is probed and EAS is exact; with k > 1 one seeded position per block of k
(and always t = T-1) is probed and ``eas`` is the unbiased estimate with its standard
error ``eas_se`` (``eas.maths.stratified``). Either way one packed pass per batch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from eas.backends.base import Backend, EncodedRecord
from eas.config import EASConfig
from eas.scoring.batches import ScoreError, encode_batch, finite_or_error, measure, result_row
from eas.scoring.estimators.base import Batch, Estimator, Result


@dataclass(frozen=True)
class Exact(Estimator):
    """Exact EAS (``probe_stride`` 1) or its stratified estimate (``probe_stride`` k > 1).

    Example:
        >>> Exact(EASConfig(probe_stride=8)).label()
        'stratified (stride 8)'
    """

    config: EASConfig = field(default_factory=EASConfig)

    def settings(self) -> dict[str, Any]:
        return {"method": "exact", "metric": asdict(self.config)}

    def label(self) -> str:
        stride = self.config.probe_stride
        return "exact" if stride == 1 else f"stratified (stride {stride})"

    def score_batch(self, batch: Batch, backend: Backend) -> list[Result]:
        out = encode_batch(batch, backend, self.config)
        encoded = [e for e in out if isinstance(e, EncodedRecord)]
        measured = iter(measure(backend, encoded) if encoded else [])
        results: list[Result] = []
        for item in out:
            if isinstance(item, EncodedRecord):
                m = next(measured)
                results.append(m if isinstance(m, ScoreError) else finite_or_error(result_row(item, m, self.config)))
            else:
                results.append(item)
        return results


def as_estimator(value: Estimator | EASConfig | None) -> Estimator:
    """An estimator from what a caller gave: an estimator as it is, an ``EASConfig`` (or
    nothing) as exact EAS with those settings (the library's original call shape)."""
    if value is None:
        return Exact()
    if isinstance(value, EASConfig):
        return Exact(value)
    return value
