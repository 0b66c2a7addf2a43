"""A folder's settings stamp: results made with other settings are never reused quietly.

A command that keeps results in a folder and reuses them on a rerun (``eas experiment``)
writes ``settings.json`` there: the settings that decide its numbers and their
fingerprint (``eas.storage.parts.fingerprint``). A rerun with other settings is refused
with the differences listed, unless ``overwrite`` (then the stamped results are removed
and the folder is stamped again). A folder that holds results but no stamp (written by
an older version) is refused the same way: nothing says what made them.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eas.records import InputError
from eas.storage.jsontext import dumps
from eas.storage.parts import fingerprint, write_atomic

log = logging.getLogger(__name__)

STAMP = "settings.json"


def flatten(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as ``{"a.b": value}``, so that differences name the exact setting."""
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``"name: old -> new"`` for every setting that differs (nested keys dotted).

    Example:
        >>> differences({"model": "a", "train": {"lr": 1e-05}}, {"model": "b", "train": {"lr": 1e-05}})
        ["model: 'a' -> 'b'"]
    """
    a, b = flatten(old), flatten(new)
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def claim_folder(folder: Path, settings: dict[str, Any], results: Sequence[str], overwrite: bool = False) -> None:
    """Stamp ``folder`` with ``settings``, or check that its results were made with them.

    Args:
        folder: the output folder (created if missing).
        settings: JSON-able settings that decide the results.
        results: names (files or folders) in ``folder`` that hold reusable results.
        overwrite: remove those results when the settings differ (or are unknown).

    Raises:
        InputError: the folder holds results made with other (or unknown) settings.
    """
    folder.mkdir(parents=True, exist_ok=True)
    settings = json.loads(dumps(settings, default=str))  # as it reads back
    stamp = folder / STAMP
    present = [name for name in results if (folder / name).exists()]
    previous = json.loads(stamp.read_text()) if stamp.exists() else None
    if previous is not None and previous.get("fingerprint") == fingerprint(settings):
        return
    if present and not overwrite:
        if previous is None:
            raise InputError(
                f"{folder} holds results ({', '.join(present)}) with no record of their settings; "
                "use --overwrite to start again, or another --out"
            )
        changed = "; ".join(differences(previous.get("settings", {}), settings))
        raise InputError(
            f"{folder} holds results made with other settings ({changed}); use --overwrite to start again, "
            "or another --out"
        )
    for name in present:
        log.warning("removing %s (made with other settings)", folder / name)
        path = folder / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    write_atomic(stamp, [dumps({"fingerprint": fingerprint(settings), "settings": settings}, indent=1) + "\n"])
