"""Amortised EAS: a linear head predicts every H_t from one forward pass per record.

Exact EAS costs about ``1 + s`` forward passes per record (docs/method.md). The amortised
estimate runs one pass over prompt + response, reads per-position features (the
backend's ``features``: hidden states of chosen layers at x_t and the next-token
entropy) and predicts every ``H_t`` with a ridge head (``eas.maths.ridge``) fitted on the
exact probe entropies of calibration traces (``eas.scoring.calibration``). ``eas``,
``mean_eas``, ``final_entropy`` and ``trajectory`` of a predicted row are then
predictions (``eas_method: "amortised"``); the token figures (PPL, HES, ...) are measured
exactly by the same pass.

A head is only good for the distribution it was fitted on: its manifest reports the
cross-validated error (grouped by trace), and the recommended use calibrates on a random
slice of the very pool being scored (``--amortised auto``, ``calibration.AutoAmortised``).

Deliberate simplifications: backends with ``features`` only (the in-process hf backend);
tracked tokens (``option_probs``) are not predicted.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from eas.backends.base import Backend, EncodedRecord, FeatureBackend, PositionFeatures
from eas.config import EASConfig
from eas.maths.metrics import record_figures
from eas.scoring.batches import RESULT_COLUMNS, encode_batch, finite_or_error
from eas.scoring.estimators.base import Batch, Estimator, Result
from eas.storage.heads import HeadFile, check_head, head_quality_warning

log = logging.getLogger(__name__)

EAS_METHOD = "eas_method"  # output column: "exact" or "amortised"


def metric_settings(config: EASConfig) -> dict[str, Any]:
    """The metric settings a head's targets depend on (checked when the head is used)."""
    return {
        k: v for k, v in asdict(config).items() if k in ("trigger", "answer_prefix_tokens", "end", "use_chat_template")
    }


def check_config(config: EASConfig) -> None:
    """ValueError for settings amortised EAS cannot honour (tracked tokens, a probe stride)."""
    if config.track_tokens:
        raise ValueError("amortised EAS does not predict option probabilities (track_tokens)")
    if config.probe_stride != 1:
        raise ValueError("amortised EAS runs no probes: it takes no --probe-stride (calibration probes every position)")


def check_head_for(head: HeadFile, backend: FeatureBackend, config: EASConfig) -> None:
    """Refuse a head made for another model or metric, or for tracked tokens (InputError / ValueError)."""
    check_config(config)
    check_head(head, backend.model_fingerprint(), metric_settings(config))


def predicted_row(enc: EncodedRecord, feats: PositionFeatures, head: HeadFile, config: EASConfig) -> dict[str, Any]:
    """The output row of one record from its features: H_t predicted, token figures exact."""
    h = head.head.predict(feats.features) if enc.n_probes else np.zeros(0)  # (T-1,)
    figures = record_figures(h, feats.token_logprobs, feats.token_entropies, config.hes_fraction)
    row = {"id": enc.record.id, **figures, "answer_end_token": enc.answer_end, "response_tokens": len(enc.response_ids)}
    # No probe was run: no stride, and no sampling error (the head's CV error is in its manifest).
    row |= {"eas_se": None, "probe_stride": None, "n_probes_run": 0}
    row = {c: row[c] for c in RESULT_COLUMNS}
    row[EAS_METHOD] = "amortised"
    if config.trajectory:
        row["trajectory"] = [float(x) for x in h]
        row["token_spans"] = [list(span) for span in enc.response_offsets]  # for eas view, as exact rows
    return row


def head_warnings(head: HeadFile | None) -> list[str]:
    """The head's quality warning (``eas.storage.heads.head_quality_warning``), as a list."""
    warning = None if head is None else head_quality_warning(head.manifest)
    return [warning] if warning else []


def predict_batch(batch: Batch, backend: Backend, head: HeadFile, config: EASConfig) -> list[Result]:
    """One row (predicted) or ScoreError per record of ``batch``: one encoding, one pass each."""
    if not isinstance(backend, FeatureBackend):
        raise ValueError("amortised EAS needs a backend with features (--backend hf)")
    items = encode_batch(batch, backend, config)
    encoded = [e for e in items if isinstance(e, EncodedRecord)]
    feats = iter(backend.features(encoded, head.layers) if encoded else [])
    return [
        finite_or_error(predicted_row(e, next(feats), head, config)) if isinstance(e, EncodedRecord) else e
        for e in items
    ]


@dataclass(frozen=True)
class Amortised(Estimator):
    """EAS predicted by a head file (``eas calibrate``), one forward pass per record."""

    head: HeadFile
    config: EASConfig = field(default_factory=EASConfig)
    requires = frozenset({"features"})

    def __post_init__(self) -> None:
        check_config(self.config)

    def settings(self) -> dict[str, Any]:
        return {"method": "amortised", "head": self.head.sha256, "metric": asdict(self.config)}

    def label(self) -> str:
        return f"amortised (head {self.head.sha256})"

    def warnings(self) -> list[str]:
        return head_warnings(self.head)

    def check(self, backend: Backend) -> None:
        if not isinstance(backend, FeatureBackend):
            raise ValueError("amortised EAS needs a backend with features (--backend hf)")
        check_head_for(self.head, backend, self.config)

    def score_batch(self, batch: Batch, backend: Backend) -> list[Result]:
        return predict_batch(batch, backend, self.head, self.config)
