"""Calibration of an amortised-EAS head, and ``auto``: calibrate on a slice of the pool, predict the rest.

* ``calibrate``: exact packed EAS and features of some records (one encoding and one
  measurement per batch), a ridge head fitted on them with its cross-validated error.
* ``calibrate_file``: the same for a file (``eas calibrate``), the head written with its
  manifest (``eas.storage.heads``); an existing head is never replaced without ``overwrite``.
* ``AutoAmortised`` (``eas score --amortised auto``): an estimator that, before scoring,
  draws a seeded random slice of the readable records (``fraction`` of them, at least
  ``MIN_CALIBRATION``), calibrates a head on it and predicts the rest; the slice's rows
  keep their exact values (``eas_method: "exact"``). The cost is about
  ``f (2 + s) + (1 - f)`` forward passes per record.

Resuming ``auto``: the head is written beside the output (``OUT.head.safetensors``) with
a key of its slice and settings; a resumed run whose slice and settings match reuses it
and computes nothing again. Rows of slice records that are not stored yet are then
measured again, one record at a time as the calibration measured them, so they are the
same numbers. The run's settings are checked before any of this (``eas.scoring.runs``),
so a refused rerun never touches the head of a finished output.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from eas.backends.base import Backend, EncodedRecord, FeatureBackend
from eas.config import CPU_BATCH_TOKENS, AmortisedConfig, EASConfig
from eas.maths.agreement import agreement
from eas.maths.ridge import FOLDS, fit_ridge_cv
from eas.progress import progress_bar
from eas.records import InputError, Record, RecordError
from eas.scoring.batches import ScoreError, encode_batch, finite_or_error, measure, plan_batches, record_key, result_row
from eas.scoring.estimators.amortised import (
    EAS_METHOD,
    check_config,
    check_head_for,
    head_warnings,
    metric_settings,
    predict_batch,
)
from eas.scoring.estimators.base import Batch, Estimator, Pool, Result
from eas.scoring.estimators.exact import Exact
from eas.storage.heads import HeadFile, load_head, save_head
from eas.storage.parts import Key, fingerprint

log = logging.getLogger(__name__)

MIN_CALIBRATION = AmortisedConfig.min_calibration
DEFAULT_FRACTION = AmortisedConfig.calibrate_fraction


@dataclass(frozen=True)
class Calibration:
    """What ``calibrate`` produced: the fitted head's parts and the exact results it measured."""

    head: Any  # eas.maths.ridge.RidgeHead
    manifest: dict[str, Any]
    exact_rows: list[dict[str, Any]]
    errors: list[ScoreError]


def calibrate(
    records: Sequence[Record | RecordError],
    backend: Backend,
    config: EASConfig | None = None,
    *,
    layers: Sequence[int] | None = None,
    folds: int = FOLDS,
    seed: int = 0,
    batch_tokens: int = CPU_BATCH_TOKENS,
    progress: bool = False,
) -> Calibration:
    """Exact packed EAS and features of ``records``; a ridge head fitted on them, with its CV error.

    Returns the head, its manifest (model, layers, metric, calibration size, the
    cross-validated figures of ``eas.maths.agreement`` on held-out traces) and the exact
    result rows (as ``config`` asks for them, plus ``eas_method: "exact"``).
    """
    config = config or EASConfig()
    check_config(config)
    if not isinstance(backend, FeatureBackend):
        raise ValueError("calibration needs a backend with features (--backend hf)")
    layers = tuple(layers) if layers else backend.feature_layers()
    rows: list[dict[str, Any]] = []
    errors: list[ScoreError] = []
    features, targets, groups = [], [], []
    with progress_bar(progress, len(records)) as bar:
        for batch in plan_batches(records, batch_tokens):
            items = encode_batch(batch, backend, config)
            errors += [e for e in items if isinstance(e, ScoreError)]
            encoded = [e for e in items if isinstance(e, EncodedRecord)]
            measured = list(zip(encoded, measure(backend, encoded) if encoded else [], strict=True))
            errors += [m for _, m in measured if isinstance(m, ScoreError)]
            checked = [
                (e, m, finite_or_error(result_row(e, m, config))) for e, m in measured if not isinstance(m, ScoreError)
            ]
            errors += [r for _, _, r in checked if isinstance(r, ScoreError)]
            good = [(e, m) for e, m, r in checked if not isinstance(r, ScoreError)]
            rows += [{**r, EAS_METHOD: "exact"} for _, _, r in checked if not isinstance(r, ScoreError)]
            probed = [(e, m) for e, m in good if e.n_probes > 0]
            feats = backend.features([e for e, _ in probed], layers) if probed else []
            for (enc, m), f in zip(probed, feats, strict=True):
                if not np.isfinite(f.features).all():  # its exact row stands; the fit cannot use it
                    errors.append(ScoreError(enc.record.id, "non-finite features: left out of the calibration"))
                    continue
                features.append(f.features)
                targets.append(np.asarray(m.probe_entropies, dtype=np.float64))
                groups += [str(enc.record.id)] * enc.n_probes
            bar.update(len(batch))
    if len(targets) < 2:
        raise ValueError(f"calibration needs at least two traces with probes; {len(targets)} could be scored")
    cv = fit_ridge_cv(np.concatenate(features), np.concatenate(targets), groups, folds=folds, seed=seed)
    bounds = np.cumsum([0] + [t.size for t in targets])
    figures = agreement(np.split(cv.out_of_fold, bounds[1:-1]), targets)
    manifest = {
        "model": backend.describe().get("model"),
        "model_fingerprint": backend.model_fingerprint(),
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


def calibration_slice(n: int, fraction: float, seed: int) -> list[int]:
    """Sorted indices of a seeded random ``fraction`` of ``n`` items (at least ``MIN_CALIBRATION``, at most n).

    Example:
        >>> calibration_slice(100, 0.1, seed=0) == calibration_slice(100, 0.1, seed=0)
        True
        >>> len(calibration_slice(100, 0.1, seed=0)), len(calibration_slice(5, 0.1, seed=0))
        (10, 5)
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"the calibration fraction must be in (0, 1], not {fraction}")
    size = min(n, max(MIN_CALIBRATION, math.ceil(fraction * n)))
    return sorted(np.random.default_rng(seed).choice(n, size=size, replace=False).tolist())


def auto_head_path(out: str | Path) -> Path:
    """Where ``auto`` keeps its head, beside the output ``out``."""
    out = Path(out)
    return out.with_name(out.name + ".head.safetensors")


@dataclass(frozen=True)
class AutoAmortised(Estimator):
    """``--amortised auto``: calibrate a head on a seeded slice of the pool, predict the rest.

    Attributes:
        config: the metric (no probe stride, no tracked tokens).
        fraction, seed: the slice: ``calibration_slice(readable records, fraction, seed)``.
        layers: blocks whose hidden states are features (None: the backend's default).
        folds: cross-validation folds of the penalty.
        head_path: where the head is written and, when its key matches, reused (None: kept
            in memory only). Not a setting: it does not change the numbers.
    """

    config: EASConfig = field(default_factory=EASConfig)
    fraction: float = DEFAULT_FRACTION
    seed: int = AmortisedConfig.seed
    layers: tuple[int, ...] | None = None
    folds: int = FOLDS
    head_path: str | None = None
    # Filled in by ``plan`` and ``prepare``:
    head: HeadFile | None = field(default=None, compare=False)
    calibration_key: str | None = field(default=None, compare=False)
    slice_keys: frozenset[Key] = field(default=frozenset(), compare=False)
    exact: Mapping[Key, Result] = field(default_factory=dict, compare=False)

    requires = frozenset({"features"})
    pool_dependent = True

    def __post_init__(self) -> None:
        check_config(self.config)
        if not 0 < self.fraction <= 1:
            raise ValueError(f"the calibration fraction must be in (0, 1], not {self.fraction}")

    def settings(self) -> dict[str, Any]:
        return {
            "method": "amortised-auto",
            "fraction": self.fraction,
            "seed": self.seed,
            "layers": None if self.layers is None else list(self.layers),
            "folds": self.folds,
            "metric": asdict(self.config),
        }

    def label(self) -> str:
        return f"amortised (auto, calibrated on {self.fraction:g} of the pool)"

    def warnings(self) -> list[str]:
        return head_warnings(self.head)

    def check(self, backend: Backend) -> None:
        if not isinstance(backend, FeatureBackend):
            raise ValueError("amortised EAS needs a backend with features (--backend hf)")
        if self.head is not None:
            check_head_for(self.head, backend, self.config)

    def plan(self, pool: Pool) -> tuple[Estimator, list[Record]]:
        if len(pool) < 2:
            raise InputError("--amortised auto needs at least two readable records")
        wanted = set(calibration_slice(len(pool), self.fraction, self.seed))
        chosen = [r for i, r in enumerate(r for r in pool if isinstance(r, Record)) if i in wanted]
        keys = [record_key(r) for r in chosen]
        key = fingerprint({"slice": [list(k) for k in keys], "settings": self.settings()})
        ready = replace(self, calibration_key=key, slice_keys=frozenset(keys))
        previous = self._saved_head(key)
        if previous is not None:
            log.info("reusing the calibration in %s", self.head_path)
            return replace(ready, head=previous), []
        log.info(
            "calibrating on %d of %d records (fraction %g, seed %d)", len(chosen), len(pool), self.fraction, self.seed
        )
        return ready, chosen

    def prepare(self, records: Sequence[Record], backend: Backend) -> Estimator:
        # One record per batch: a slice row measured again later (a resumed run) is the same number.
        cal = calibrate(list(records), backend, self.config, layers=self.layers, folds=self.folds, seed=self.seed,
                        batch_tokens=0, progress=True)  # fmt: skip
        info = {"fraction": self.fraction, "seed": self.seed, "calibration_traces": len(records)}
        manifest = {**cal.manifest, "calibration_key": self.calibration_key, "calibration_auto": info}
        if self.head_path is not None:
            save_head(self.head_path, cal.head, manifest)
            head = load_head(self.head_path)
        else:
            head = HeadFile(cal.head, manifest, str(self.calibration_key))
        key_of = {r.id: record_key(r) for r in records}
        exact: dict[Key, Result] = {key_of[e.id]: e for e in cal.errors}
        exact |= {key_of[row["id"]]: row for row in cal.exact_rows}
        return replace(self, head=head, exact=exact)

    def score_batch(self, batch: Batch, backend: Backend) -> list[Result]:
        if self.head is None:
            raise RuntimeError("AutoAmortised.score_batch before plan/prepare")
        keys = [record_key(r) if isinstance(r, Record) else None for r in batch]
        rest = [r for r, k in zip(batch, keys, strict=True) if k not in self.slice_keys]
        predicted = iter(predict_batch(rest, backend, self.head, self.config))
        out: list[Result] = []
        for rec, key in zip(batch, keys, strict=True):
            if key not in self.slice_keys:
                out.append(next(predicted))
            elif key in self.exact:
                out.append(self.exact[key])
            else:
                (result,) = Exact(self.config).score_batch([rec], backend)
                out.append(result if isinstance(result, ScoreError) else {**result, EAS_METHOD: "exact"})
        return out

    def _saved_head(self, key: str) -> HeadFile | None:
        if self.head_path is None or not Path(self.head_path).is_file():
            return None
        try:
            found = load_head(self.head_path)
        except InputError:
            return None
        return found if found.manifest.get("calibration_key") == key else None


def calibrate_file(
    input_path: str | Path,
    out_head: str | Path,
    backend: Backend,
    config: EASConfig | None = None,
    *,
    fields: Any = None,
    id_given: bool = False,
    layers: Sequence[int] | None = None,
    seed: int = 0,
    batch_tokens: int = CPU_BATCH_TOKENS,
    overwrite: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Calibrate a head on every record of ``input_path``; write it; return its manifest.

    An existing head is refused unless ``overwrite`` (outputs scored with it name it by its hash).
    """
    from eas.scoring.identity import read_input

    if Path(out_head).exists() and not overwrite:
        raise InputError(f"{out_head} exists (outputs scored with it refer to it); use --overwrite or another --out")
    records = list(read_input(input_path, fields, id_given, dedupe=False))
    cal = calibrate(records, backend, config, layers=layers, seed=seed, batch_tokens=batch_tokens, progress=progress)
    manifest = {**cal.manifest, "calibration_input": str(input_path)}
    save_head(out_head, cal.head, manifest)
    return manifest


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("eas")
    except PackageNotFoundError:  # pragma: no cover - a source tree without an install
        return "unknown"
