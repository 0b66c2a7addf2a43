"""File-to-file amortised EAS: ``eas calibrate`` and ``eas score --amortised HEAD|auto``.

* ``calibrate_file``: exact EAS and features of a calibration file, a head fitted on
  them, written with its manifest (``eas.storage.heads``).
* ``score_file_amortised`` with a head file: every record gets one forward pass and
  predicted EAS figures; the run is ``score_file``'s (parts, resuming, errors file), and
  the head's hash is part of the settings fingerprint, so a rerun with another head
  refuses to mix the two.
* ``score_file_amortised`` with ``"auto"``: a seeded random slice of the readable
  records (``fraction`` of them, at least ``MIN_CALIBRATION``) is scored exactly, the
  head is fitted on it (``OUT.head.safetensors``, its exact rows in
  ``OUT.calibration.jsonl``), and the rest is predicted; the slice's rows keep their exact
  values (``eas_method: "exact"``). The cost is about ``f (2 + s) + (1 - f)`` passes.

Resuming ``auto``: a finished calibration whose manifest matches the slice and settings
is reused and the prediction phase resumes from its parts; a run killed during the
calibration itself computes the calibration again (it is the small part of the work).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from eas.backends.base import Backend
from eas.config import AmortisedConfig, EASConfig
from eas.records import InputError, Record, RecordError
from eas.scoring.amortised import calibrate, check_head_for, score_batch_amortised
from eas.scoring.runs import check_unique_ids, record_key, score_file
from eas.storage.heads import HeadFile, head_quality_warning, load_head, save_head
from eas.storage.inputs import FieldMap, read_records
from eas.storage.parts import RunSummary, fingerprint, manifest_path, read_manifest, write_atomic

log = logging.getLogger(__name__)

MIN_CALIBRATION = AmortisedConfig.min_calibration
DEFAULT_FRACTION = AmortisedConfig.calibrate_fraction


def calibrate_file(
    input_path: str | Path,
    out_head: str | Path,
    backend: Backend,
    config: EASConfig | None = None,
    *,
    fields: FieldMap | None = None,
    id_given: bool = False,
    layers: Sequence[int] | None = None,
    seed: int = 0,
    batch_tokens: int = 2048,
    progress: bool = False,
) -> dict[str, Any]:
    """Calibrate a head on every record of ``input_path``; write it; return its manifest."""
    fields = fields or FieldMap()
    check_unique_ids(input_path, fields, id_given, dedupe=False)
    records = list(read_records(input_path, fields, id_given))
    cal = calibrate(records, backend, config, layers=layers, seed=seed, batch_tokens=batch_tokens, progress=progress)
    manifest = {**cal.manifest, "calibration_input": str(input_path)}
    save_head(out_head, cal.head, manifest)
    return manifest


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


def auto_paths(out: str | Path) -> tuple[Path, Path]:
    """Where ``auto`` keeps its head and its calibration rows, beside ``out``."""
    out = Path(out)
    return out.with_name(out.name + ".head.safetensors"), out.with_name(out.name + ".calibration.jsonl")


def score_file_amortised(
    input_path: str | Path,
    out: str | Path,
    backend: Backend | Callable[[], Backend],
    config: EASConfig | None = None,
    *,
    head: str | Path = "auto",
    fraction: float = DEFAULT_FRACTION,
    seed: int = 0,
    fields: FieldMap | None = None,
    id_given: bool = False,
    settings: dict[str, Any] | None = None,
    batch_tokens: int = 2048,
    overwrite: bool = False,
    dedupe: bool = False,
    keep_input: bool = False,
    progress: bool = False,
) -> RunSummary:
    """Score ``input_path`` into ``out`` with a head file, or with ``head="auto"`` (see the module docstring).

    The other arguments are ``score_file``'s.
    """
    config = config or EASConfig()
    fields = fields or FieldMap()
    made: list[Backend] = []

    def get_backend() -> Backend:
        if not made:
            made.append(backend() if callable(backend) and not hasattr(backend, "measure") else backend)
        return made[0]

    exact_rows: dict[Any, dict[str, Any]] = {}
    if str(head) == "auto":
        head_file, exact_rows, auto = _auto_calibration(
            input_path, out, get_backend, config, fraction, seed, fields, id_given, settings, batch_tokens, dedupe
        )
        extra = {"mode": "auto", **auto}
    else:
        head_file = load_head(head)
        extra = {"mode": "head", "head_file": str(head)}
    warning = head_quality_warning(head_file.manifest)
    if warning:
        log.warning("%s", warning)
    checked: list[Backend] = []

    def checked_backend() -> Backend:
        if not checked:
            check_head_for(head_file, get_backend(), config)
            checked.append(get_backend())
        return checked[0]

    def scorer(batch: Any, b: Backend, c: EASConfig) -> list:
        return score_batch_amortised(batch, b, c, head_file, exact_rows)

    summary = score_file(
        input_path,
        out,
        checked_backend,
        config,
        fields=fields,
        id_given=id_given,
        settings={**(settings or {}), "amortised": {**extra, "head": head_file.sha256}},
        batch_tokens=batch_tokens,
        overwrite=overwrite,
        dedupe=dedupe,
        keep_input=keep_input,
        progress=progress,
        scorer=scorer,
    )
    if warning:
        note_warning(out, warning)
    return summary


def note_warning(out: str | Path, warning: str) -> None:
    """Add ``warning`` to the ``warnings`` list of the manifest of the finished run ``out``."""
    manifest = read_manifest(out)
    if manifest and warning not in manifest.get("warnings", []):
        manifest["warnings"] = [*manifest.get("warnings", []), warning]
        write_atomic(manifest_path(Path(out)), [json.dumps(manifest, indent=1, default=str) + "\n"])


def _auto_calibration(
    input_path: str | Path,
    out: str | Path,
    get_backend: Callable[[], Backend],
    config: EASConfig,
    fraction: float,
    seed: int,
    fields: FieldMap,
    id_given: bool,
    settings: dict[str, Any] | None,
    batch_tokens: int,
    dedupe: bool,
) -> tuple[HeadFile, dict[Any, dict[str, Any]], dict[str, Any]]:
    """The head and exact rows of ``auto``'s calibration slice: reused when they match, else computed."""
    check_unique_ids(input_path, fields, id_given, dedupe)
    seen: set[Any] = set()
    valid: list[Record] = []
    for rec in read_records(input_path, fields, id_given):
        if isinstance(rec, Record) and rec.id not in seen:
            seen.add(rec.id)
            valid.append(rec)
    if len(valid) < 2:
        raise InputError(f"{input_path}: --amortised auto needs at least two readable records")
    chosen = [valid[i] for i in calibration_slice(len(valid), fraction, seed)]
    key = fingerprint(
        {
            "slice": [list(record_key(r)) for r in chosen],
            "metric": asdict(config),
            "settings": settings or {},
            "fraction": fraction,
            "seed": seed,
        }
    )
    head_path, rows_path = auto_paths(out)
    info = {"fraction": fraction, "seed": seed, "calibration_traces": len(chosen), "pool": len(valid)}
    previous = _matching_head(head_path, rows_path, key)
    if previous is None:
        log.info("calibrating on %d of %d records (fraction %g, seed %d)", len(chosen), len(valid), fraction, seed)
        records: list[Record | RecordError] = list(chosen)
        cal = calibrate(records, get_backend(), config, seed=seed, batch_tokens=batch_tokens, progress=True)
        write_atomic(rows_path, (json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in cal.exact_rows))
        save_head(head_path, cal.head, {**cal.manifest, "calibration_key": key, "calibration_auto": info})
        previous = load_head(head_path)
    else:
        log.info("reusing the calibration in %s", head_path)
    with rows_path.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return previous, {r["id"]: r for r in rows}, info


def _matching_head(head_path: Path, rows_path: Path, key: str) -> HeadFile | None:
    if not (head_path.is_file() and rows_path.is_file()):
        return None
    try:
        found = load_head(head_path)
    except InputError:
        return None
    return found if found.manifest.get("calibration_key") == key else None
