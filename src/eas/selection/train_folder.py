"""A training run's folder: what made it (a settings stamp) and a log that matches its checkpoints.

``eas train`` resumes from the newest ``checkpoint-N`` of its folder, so a folder must
never mix runs. ``claim_run_folder`` stamps the folder with the settings that decide the
run (the records, the model's fingerprint, the hyper-parameters, the device kind and the
precision; ``eas.storage.stamp``, as ``eas experiment`` stamps its folder):

* a new run (no ``resume``) into a folder that holds a run is refused, naming
  ``--resume`` and ``--overwrite`` (with ``overwrite`` the old run is removed first);
* a resume with other settings, or of a run without a stamp (an older version's, or
  files copied in), is refused with the settings that differ, unless ``overwrite``.

``cut_log`` cuts ``train_log.jsonl`` back to the checkpoint a resume starts from: the
steps after it are trained (and logged) again, so without the cut they appear twice.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from eas.records import InputError, Record
from eas.storage.jsontext import dumps
from eas.storage.parts import fingerprint, write_atomic
from eas.storage.stamp import STAMP, claim_folder

log = logging.getLogger(__name__)

LOG = "train_log.jsonl"
RUN_FILES = (LOG, "best_checkpoints.json", "train_config.json")


def run_contents(out_dir: Path) -> list[str]:
    """The names in ``out_dir`` that belong to a training run (checkpoints, log, listings)."""
    if not out_dir.is_dir():
        return []
    checkpoints = sorted(p.name for p in out_dir.glob("checkpoint-*") if p.is_dir())
    return checkpoints + [name for name in RUN_FILES if (out_dir / name).exists()]


def train_settings(records: Sequence[Record], model: Any, config: Any, device: str, precision: Any) -> dict[str, Any]:
    """What decides a training run's numbers: records, model weights, hyper-parameters, device kind, precision."""
    from eas.backends.hf.features import model_fingerprint

    return {
        "records": fingerprint([[r.id, r.prompt, r.response] for r in records]),
        "n_records": len(records),
        "model": {"class": type(model).__name__, "fingerprint": model_fingerprint(model)},
        "train": asdict(config),
        "device": device.split(":")[0],  # the kind: cuda:0 and cuda:1 compute alike
        "precision": asdict(precision),
    }


def claim_run_folder(out_dir: Path, settings: dict[str, Any], resume: bool, overwrite: bool) -> None:
    """Stamp ``out_dir`` for this run, or refuse (``InputError``) as the module docstring says."""
    present = run_contents(out_dir)
    if present and not resume:
        if not overwrite:
            raise InputError(
                f"{out_dir} holds a training run ({_listing(present)}); continue it with --resume, "
                "start again with --overwrite, or use another --out"
            )
        _remove(out_dir, present)
        (out_dir / STAMP).unlink(missing_ok=True)
        present = []
    claim_folder(out_dir, settings, present, overwrite)


def cut_log(out_dir: Path, step: int) -> int:
    """Drop the lines of ``train_log.jsonl`` after ``step`` (and a finished run's summary at
    ``step``, which a resume writes again); returns how many were dropped."""
    path = out_dir / LOG
    if not path.exists():
        return 0
    kept, dropped = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:  # a line a kill cut short
            dropped += 1
            continue
        s = int(entry.get("step", 0))
        if s < step or (s == step and "train_runtime" not in entry):
            kept.append(dumps(entry) + "\n")
        else:
            dropped += 1
    if dropped:
        log.info("train_log.jsonl: %d lines after step %d dropped (the resume logs them again)", dropped, step)
        write_atomic(path, kept)
    return dropped


def _listing(names: list[str]) -> str:
    return ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")


def _remove(out_dir: Path, names: list[str]) -> None:
    for name in names:
        path = out_dir / name
        log.warning("removing %s (--overwrite)", path)
        shutil.rmtree(path) if path.is_dir() else path.unlink()
