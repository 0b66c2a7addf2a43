"""Amortised-EAS head files: safetensors weights plus a JSON manifest, checked on load.

``head.safetensors`` holds the tensors ``mean``, ``scale``, ``weights`` (float64, ``(d,)``)
and ``intercept``, ``alpha`` (``(1,)``); its metadata holds the manifest as JSON, and the
same manifest is written beside it (``head.safetensors.json``) for people to read. The
manifest says which model the head is for (name and ``model_fingerprint``), which layers
it reads, the metric settings its targets were measured with, the calibration size and
the cross-validated error. ``check_head`` refuses a head made for another model or other
metric settings.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eas.config import AmortisedConfig
from eas.maths.ridge import RidgeHead
from eas.records import InputError
from eas.storage.jsontext import dumps

FORMAT = "eas-amortised-head/1"


@dataclass(frozen=True)
class HeadFile:
    """A loaded head: the regression, its manifest and a hash of the file."""

    head: RidgeHead
    manifest: dict[str, Any]
    sha256: str

    @property
    def layers(self) -> tuple[int, ...]:
        return tuple(self.manifest["layers"])


def manifest_beside(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".json")


def save_head(path: str | Path, head: RidgeHead, manifest: dict[str, Any]) -> str:
    """Write the head and its manifest (each via a temporary file and a rename); returns the file's sha256."""
    from safetensors.numpy import save_file

    path = Path(path)
    manifest = {"format": FORMAT, **manifest}
    tensors = {
        "mean": np.ascontiguousarray(head.mean, dtype=np.float64),
        "scale": np.ascontiguousarray(head.scale, dtype=np.float64),
        "weights": np.ascontiguousarray(head.weights, dtype=np.float64),
        "intercept": np.array([head.intercept], dtype=np.float64),
        "alpha": np.array([head.alpha], dtype=np.float64),
    }
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={"manifest": dumps(manifest, sort_keys=True)})
    tmp.replace(path)
    side = manifest_beside(path)
    side_tmp = side.with_name(side.name + ".tmp")
    side_tmp.write_text(dumps(manifest, indent=1, sort_keys=True) + "\n")
    side_tmp.replace(side)
    return _sha256(path)


def load_head(path: str | Path) -> HeadFile:
    """Read a head file (``InputError`` when it is missing or not a head)."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such head file (make one with `eas calibrate`)")
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
            t = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open is not a dict
        manifest = json.loads(meta["manifest"])
        head = RidgeHead(t["mean"], t["scale"], t["weights"], float(t["intercept"][0]), float(t["alpha"][0]))
    except (OSError, ValueError, KeyError, TypeError, SafetensorError) as exc:
        raise InputError(f"{path}: not an amortised-EAS head ({type(exc).__name__}: {exc})") from None
    if manifest.get("format") != FORMAT:
        raise InputError(f"{path}: unknown head format {manifest.get('format')!r} (expected {FORMAT})")
    return HeadFile(head, manifest, _sha256(path))


def check_head(head: HeadFile, model_fingerprint: str, metric: dict[str, Any]) -> None:
    """Refuse (``InputError``) a head made for another model or other metric settings."""
    man = head.manifest
    if man.get("model_fingerprint") != model_fingerprint:
        raise InputError(
            f"this head was calibrated for model {man.get('model')!r} (fingerprint {man.get('model_fingerprint')}), "
            f"not for the model loaded now (fingerprint {model_fingerprint}); calibrate one for this model"
        )
    theirs = man.get("metric", {})
    diff = sorted(k for k in set(theirs) | set(metric) if theirs.get(k) != metric.get(k))
    if diff:
        changed = ", ".join(f"{k}: {theirs.get(k)!r} (head) != {metric.get(k)!r}" for k in diff)
        raise InputError(f"this head was calibrated with other metric settings ({changed})")


def head_quality_warning(manifest: dict[str, Any], min_spearman: float = AmortisedConfig.min_spearman) -> str | None:
    """One line when a head's cross-validated Spearman(mean EAS) is below ``min_spearman``, else None.

    The figure is the manifest's ``cv.spearman_mean_eas`` (``eas.maths.agreement``, on
    held-out traces); a missing or non-finite one counts as below.

    Example:
        >>> head_quality_warning({"cv": {"spearman_mean_eas": 0.93}, "calibration": {"traces": 20}}) is None
        True
        >>> print(head_quality_warning({"cv": {"spearman_mean_eas": -0.02}, "calibration": {"traces": 8}}))
        the amortised head does not rank its calibration traces: cross-validated Spearman(mean EAS) -0.02 < 0.5 on 8 traces; its predictions are not a usable ranking (calibrate on more traces of the pool's style: --calibrate-fraction, or exact scoring)
    """
    value = (manifest.get("cv") or {}).get("spearman_mean_eas")
    try:
        rho = float(value)
    except (TypeError, ValueError):
        rho = float("nan")
    if np.isfinite(rho) and rho >= min_spearman:
        return None
    traces = (manifest.get("calibration") or {}).get("traces")
    on = f" on {traces} traces" if traces is not None else ""
    shown = f"{rho:.2f}" if np.isfinite(rho) else "n/a"
    return (
        f"the amortised head does not rank its calibration traces: cross-validated Spearman(mean EAS) {shown} "
        f"< {min_spearman:g}{on}; its predictions are not a usable ranking (calibrate on more traces of the "
        "pool's style: --calibrate-fraction, or exact scoring)"
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
