"""Amortised EAS: exact probes on a calibration set, a linear head, then one pass per record.

Exact EAS costs about ``1 + s`` forward passes per record (docs/method.md). The amortised
estimate runs one pass over prompt + response, reads per-position features
(``eas.backends.hf.features``: hidden states of chosen layers at x_t and the next-token
entropy) and predicts every ``H_t`` with a ridge head (``eas.maths.ridge``) fitted on the
exact probe entropies of calibration traces. ``eas``, ``mean_eas``, ``final_entropy`` and
``trajectory`` of a predicted row are then predictions (``eas_method: "amortised"``);
the token figures (PPL, HES, ...) are measured exactly by the same pass.

A head is only good for the distribution it was fitted on: ``calibrate`` reports the
cross-validated error (grouped by trace) in the head's manifest, and the recommended use
calibrates on a random slice of the very pool being scored (``eas.scoring.amortised_runs``).

Deliberate simplifications: in-process transformers models only (the features need the
hidden states); tracked tokens (``option_probs``) are not predicted.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from eas.backends.base import EncodedRecord
from eas.backends.hf.features import PositionFeatures, default_layers, model_fingerprint, position_features
from eas.config import CPU_BATCH_TOKENS, EASConfig
from eas.maths.agreement import agreement
from eas.maths.metrics import record_figures
from eas.maths.ridge import FOLDS, fit_ridge_cv
from eas.progress import progress_bar
from eas.records import Record, RecordError
from eas.scoring.score import RESULT_COLUMNS, ScoreError, encode_batch, plan_batches, score_batch
from eas.storage.heads import HeadFile, check_head

log = logging.getLogger(__name__)

EAS_METHOD = "eas_method"  # output column: "exact" or "amortised"


def metric_settings(config: EASConfig) -> dict[str, Any]:
    """The metric settings a head's targets depend on (checked when the head is used)."""
    return {
        k: v for k, v in asdict(config).items() if k in ("trigger", "answer_prefix_tokens", "end", "use_chat_template")
    }


def hf_model(backend: Any) -> Any:
    """The transformers model of an in-process backend (ValueError for any other backend)."""
    return hf_backend(backend).model


def hf_backend(backend: Any) -> Any:
    """``backend`` itself when it runs a transformers model in this process (ValueError otherwise)."""
    if getattr(backend, "model", None) is None or getattr(backend, "decoder", None) is None:
        raise ValueError("amortised EAS needs the hidden states: use the in-process hf backend (--backend hf)")
    return backend


def check_head_for(head: HeadFile, backend: Any, config: EASConfig) -> None:
    """Refuse a head made for another model or metric, or for tracked tokens (InputError / ValueError)."""
    check_config(config)
    check_head(head, model_fingerprint(hf_model(backend)), metric_settings(config))


def check_config(config: EASConfig) -> None:
    """ValueError for settings amortised EAS cannot honour (tracked tokens, a probe stride)."""
    if config.track_tokens:
        raise ValueError("amortised EAS does not predict option probabilities (track_tokens)")
    if config.probe_stride != 1:
        raise ValueError("amortised EAS runs no probes: it takes no --probe-stride (calibration probes every position)")


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
    return row


def score_batch_amortised(
    batch: Sequence[Record | RecordError],
    backend: Any,
    config: EASConfig,
    head: HeadFile,
    exact_rows: dict[Any, dict[str, Any]] | None = None,
) -> list[dict[str, Any] | ScoreError]:
    """One planned batch scored with the head (one pass per record).

    ``exact_rows``: rows already scored exactly, by id (the calibration slice of ``auto``);
    those records are not run again and keep their exact values.
    """
    exact_rows = exact_rows or {}
    items = encode_batch([r for r in batch if not (isinstance(r, Record) and r.id in exact_rows)], backend, config)
    encoded = [e for e in items if isinstance(e, EncodedRecord)]
    feats = iter(position_features(hf_backend(backend), encoded, head.layers) if encoded else [])
    done = iter(items)
    out: list[dict[str, Any] | ScoreError] = []
    for rec in batch:
        if isinstance(rec, Record) and rec.id in exact_rows:
            out.append(exact_rows[rec.id])
            continue
        item = next(done)
        out.append(predicted_row(item, next(feats), head, config) if isinstance(item, EncodedRecord) else item)
    return out


def score_records_amortised(
    records: Sequence[Record | RecordError], backend: Any, config: EASConfig, head: HeadFile, *, progress: bool = False
) -> list[dict[str, Any] | ScoreError]:
    """``score_records`` with the head: one row or ScoreError per record, in input order (checks the head first)."""
    check_head_for(head, backend, config)
    out: list[dict[str, Any] | ScoreError] = []
    with progress_bar(progress, len(records)) as bar:
        for batch in plan_batches(records, getattr(backend, "batch_tokens", CPU_BATCH_TOKENS)):
            out += score_batch_amortised(batch, backend, config, head)
            bar.update(len(batch))
    return out


@dataclass(frozen=True)
class Calibration:
    """What ``calibrate`` produced: the fitted head's parts and the exact rows it measured."""

    head: Any  # eas.maths.ridge.RidgeHead
    manifest: dict[str, Any]
    exact_rows: list[dict[str, Any]]
    errors: list[ScoreError]


def calibrate(
    records: Sequence[Record | RecordError],
    backend: Any,
    config: EASConfig | None = None,
    *,
    layers: Sequence[int] | None = None,
    folds: int = FOLDS,
    seed: int = 0,
    batch_tokens: int = 2048,
    progress: bool = False,
) -> Calibration:
    """Exact packed EAS and features of ``records``; a ridge head fitted on them, with its CV error.

    Returns the head, its manifest (model, layers, metric, calibration size, the
    cross-validated figures of ``eas.maths.agreement`` on held-out traces) and the exact
    result rows (as ``config`` asks for them, plus ``eas_method: "exact"``).
    """
    config = config or EASConfig()
    check_config(config)
    model = hf_model(backend)
    layers = tuple(layers) if layers else default_layers(model)
    exact_config = replace(config, trajectory=True)
    rows: list[dict[str, Any]] = []
    errors: list[ScoreError] = []
    features, targets, groups = [], [], []
    with progress_bar(progress, len(records)) as bar:
        for batch in plan_batches(records, batch_tokens):
            scored = score_batch(batch, backend, exact_config)
            good = {r["id"]: r for r in scored if not isinstance(r, ScoreError)}
            errors += [r for r in scored if isinstance(r, ScoreError)]
            encs = [e for e in encode_batch(batch, backend, config) if isinstance(e, EncodedRecord)]
            encs = [e for e in encs if e.record.id in good and e.n_probes > 0]
            for enc, f in zip(encs, position_features(backend, encs, layers), strict=True):
                features.append(f.features)
                targets.append(np.asarray(good[enc.record.id]["trajectory"], dtype=np.float64))
                groups += [str(enc.record.id)] * enc.n_probes
            for r in scored:
                if not isinstance(r, ScoreError):
                    row = {k: v for k, v in r.items() if config.trajectory or k != "trajectory"}
                    rows.append({**row, EAS_METHOD: "exact"})
            bar.update(len(batch))
    if len(targets) < 2:
        raise ValueError(f"calibration needs at least two traces with probes; {len(targets)} could be scored")
    cv = fit_ridge_cv(np.concatenate(features), np.concatenate(targets), groups, folds=folds, seed=seed)
    bounds = np.cumsum([0] + [t.size for t in targets])
    held_out = np.split(cv.out_of_fold, bounds[1:-1])
    figures = agreement(held_out, targets)
    manifest = {
        "model": getattr(backend, "name", None),
        "model_fingerprint": model_fingerprint(model),
        "layers": list(layers),
        "features": [f"hidden_state[{k}]" for k in layers] + ["next_token_entropy"],
        "n_features": int(cv.head.weights.size),
        "metric": metric_settings(config),
        "calibration": {"traces": len(targets), "positions": int(bounds[-1]), "skipped": len(errors)},
        "alpha": cv.head.alpha,
        "cv": {"folds": folds, "seed": seed, **figures},
        "eas_version": _version(),
    }
    log.info(
        "calibrated on %d traces (%d positions): CV per-position r %.3f, Spearman(mean EAS) %.3f",
        len(targets),
        int(bounds[-1]),
        figures["per_position_r"],
        figures["spearman_mean_eas"],
    )
    return Calibration(cv.head, manifest, rows, errors)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("eas")
    except PackageNotFoundError:  # pragma: no cover - a source tree without an install
        return "unknown"
