"""Crash-safe, resumable output: numbered parts while a run goes, one file at the end.

A long run (scoring 10^6 traces, sampling 64 answers for 10^4 questions) writes each
batch of results as one part file in ``OUT.parts/``: written to a temporary name,
fsynced, then renamed, so a part is either wholly there or not at all, whatever kills
the process. Each part names the records it covers by ``(id, fingerprint)``; a rerun
with the same output path skips every batch whose part covers exactly the same records,
and computes the rest. When every batch is done the parts are combined, in order, into
the output file and the errors file (each written to a temporary name and renamed),
a manifest is written beside the output, and the parts are removed.

The settings that decide the numbers are fingerprinted in ``OUT.parts/manifest.json``;
a rerun with other settings into the same output refuses (``InputError``) unless
``overwrite`` is set. A finished output whose manifest has the same settings is
reported as complete and left alone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eas.records import InputError
from eas.storage.jsontext import dumps

log = logging.getLogger(__name__)

Key = tuple[Any, str]  # (record id, fingerprint of its content)
WriteRows = Callable[[Path, Callable[[], Iterator[list[dict]]]], None]


def fingerprint(value: Any) -> str:
    """Short, stable hash of a JSON-able value (record content, settings)."""
    data = json.dumps(value, sort_keys=True, ensure_ascii=True, default=str)
    return hashlib.sha256(data.encode()).hexdigest()[:16]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, lines: Iterable[str]) -> None:
    """Write lines to ``path`` via a temporary file, fsync, rename: all or nothing."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for line in lines:
            f.write(line)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def manifest_path(out: Path) -> Path:
    return out.with_name(out.name + ".manifest.json")


def read_manifest(out: str | Path) -> dict[str, Any]:
    """The manifest a finished run wrote beside ``out`` (empty if none)."""
    return _read_json(manifest_path(Path(out))) or {}


class PartStore:
    """Parts of one output file, keyed by batch index.

    Args:
        out: the final output path.
        settings: everything that decides the numbers (JSON-able); fingerprinted.
        overwrite: start again even when the output or its parts hold other settings.
    """

    def __init__(self, out: str | Path, settings: dict[str, Any], overwrite: bool = False):
        self.out = Path(out)
        self.dir = self.out.with_name(self.out.name + ".parts")
        self.settings = settings
        self.settings_fp = fingerprint(settings)
        self.overwrite = overwrite
        self._done: dict[int, list[Key]] = {}
        self._retry: set[int] = set()
        self._header_written = False
        self.complete = False

    # -- opening -------------------------------------------------------------------------

    def open(self) -> PartStore:
        """Check the settings against what is on disk, and load the finished parts."""
        man = manifest_path(self.out)
        if self.overwrite:
            shutil.rmtree(self.dir, ignore_errors=True)
            man.unlink(missing_ok=True)
        elif self.out.exists() and not self.dir.exists():
            previous = _read_json(man)
            if previous is None:
                raise InputError(
                    f"{self.out} exists and was not written by this tool's runs; use --overwrite to replace it"
                )
            if previous.get("settings_fp") != self.settings_fp:
                raise InputError(self._mismatch(previous))
            self.complete = True
            return self
        self.dir.mkdir(parents=True, exist_ok=True)
        header = self.dir / "manifest.json"
        previous = _read_json(header)
        if previous is not None and previous.get("settings_fp") != self.settings_fp:
            raise InputError(self._mismatch(previous))
        self._header_written = previous is not None
        for tmp in self.dir.glob("*.tmp"):  # a write that a kill interrupted
            tmp.unlink()
        for part in sorted(self.dir.glob("part-*.jsonl")):
            header = _read_part_header(part)
            if header is not None and not header.get("retry"):
                self._done[int(part.stem.split("-")[1])] = header["keys"]
        if self._done:
            log.info("resuming: %d batches already done in %s", len(self._done), self.dir)
        return self

    def _mismatch(self, previous: dict[str, Any]) -> str:
        old = previous.get("settings", {})
        diff = [k for k in sorted(set(old) | set(self.settings)) if old.get(k) != self.settings.get(k)]
        changed = ", ".join(f"{k}: {old.get(k)!r} -> {self.settings.get(k)!r}" for k in diff) or "unknown"
        return (
            f"{self.out} was started with other settings ({changed}); use --overwrite to start again, or another --out"
        )

    # -- progress ------------------------------------------------------------------------

    def is_done(self, index: int, keys: Sequence[Key]) -> bool:
        return self._done.get(index) == [list(k) for k in keys]

    def n_done_records(self) -> int:
        return sum(len(k) for k in self._done.values())

    def write_part(
        self, index: int, keys: Sequence[Key], rows: Sequence[dict], errors: Sequence[dict], retry: bool = False
    ) -> None:
        """Store one finished batch: its keys, result rows and error rows.

        ``retry``: some error may pass on another try (a server fault, out of memory);
        the batch is then computed again by the next run with the same output.
        """
        if not self._header_written:  # written with the first part: a run that dies before any has no say
            header = {"settings_fp": self.settings_fp, "settings": self.settings}
            write_atomic(self.dir / "manifest.json", [dumps(header) + "\n"])
            self._header_written = True
        lines = [dumps({"keys": [list(k) for k in keys], "retry": retry}) + "\n"]
        lines += [dumps({"row": r}, ensure_ascii=False, default=str) + "\n" for r in rows]
        lines += [dumps({"error": e}, ensure_ascii=False) + "\n" for e in errors]
        write_atomic(self.dir / f"part-{index:09d}.jsonl", lines)
        if retry:
            self._retry.add(index)
        else:
            self._done[index] = [list(k) for k in keys]

    # -- finishing -----------------------------------------------------------------------

    def iter_parts(self, indices: Iterable[int]) -> Iterator[tuple[list[dict], list[dict]]]:
        for index in indices:
            rows, errors = [], []
            with (self.dir / f"part-{index:09d}.jsonl").open(encoding="utf-8") as f:
                next(f)
                for line in f:
                    item = json.loads(line)
                    (rows if "row" in item else errors).append(item.get("row", item.get("error")))
            yield rows, errors

    def finish(
        self, indices: Sequence[int], write_rows: WriteRows, errors_out: Path, extra: dict[str, Any]
    ) -> dict[str, int]:
        """Combine the parts ``indices`` (in that order) into the outputs.

        The parts are removed afterwards, unless some batch asked for a retry: then they
        stay, so that the next run with the same output computes just those again.

        Args:
            indices: the batch indices of this run, in input order.
            write_rows: ``write_rows(path, make_batches)`` writes the output file in its
                format, all or nothing; ``make_batches()`` yields lists of rows, afresh
                on every call.
            errors_out: the errors file (JSONL).
            extra: more fields for the output's manifest.
        """
        counts = {"rows": 0, "errors": 0}
        for r, e in self.iter_parts(indices):
            counts["rows"] += len(r)
            counts["errors"] += len(e)
        write_rows(self.out, lambda: (r for r, _ in self.iter_parts(indices)))
        write_atomic(
            errors_out,
            (dumps(x, ensure_ascii=False) + "\n" for _, e in self.iter_parts(indices) for x in e),
        )
        counts["retry_batches"] = len(self._retry)
        manifest = {"settings_fp": self.settings_fp, "settings": self.settings, **counts, **extra}
        write_atomic(manifest_path(self.out), [dumps(manifest, indent=1, default=str) + "\n"])
        if self._retry:
            log.warning(
                "%d batches hold errors worth retrying; run the same command again to retry them", len(self._retry)
            )
        else:
            shutil.rmtree(self.dir)
        self.complete = True
        return counts


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _read_part_header(path: Path) -> dict[str, Any] | None:
    """The header of a part, or None for a part that cannot be read whole (recomputed)."""
    try:
        with path.open(encoding="utf-8") as f:
            header = json.loads(next(f))
            if not isinstance(header.get("keys"), list):
                return None
            for line in f:
                json.loads(line)
    except (OSError, ValueError, KeyError, StopIteration, TypeError):
        log.warning("part %s is unreadable; its batch will be computed again", path)
        return None
    return header


@dataclass(frozen=True)
class RunSummary:
    """What a run left behind."""

    rows: int
    errors: int
    already_complete: bool = False
    retry_batches: int = 0
