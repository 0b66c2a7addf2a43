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
a rerun with other settings into the same output refuses (``InputError``, naming only the
settings that differ, old -> new) unless ``overwrite`` is set. A finished output whose
manifest has the same settings is reported as complete (the caller then checks that it
scored the same input); ``reopen`` turns a finished output back into parts, so that a
grown input scores only its new records. The errors file is written only when some
record failed.
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
        self.settings = _normalized(settings)
        self.settings_fp = fingerprint(self.settings)
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
        header = self.dir / "manifest.json"  # the folder is made with the first part: a failed start leaves none
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
        old, new = _flat(_normalized(previous.get("settings", {}))), _flat(self.settings)
        diff = [k for k in sorted(set(old) | set(new)) if old.get(k, _MISSING) != new.get(k, _MISSING)]
        changed = ", ".join(f"{k}: {_show(old.get(k, _MISSING))} -> {_show(new.get(k, _MISSING))}" for k in diff)
        return (
            f"{self.out} was started with other settings ({changed or 'an older format'}); "
            "use --overwrite to start again, or another --out"
        )

    def reopen(self, batches: Iterable[tuple[int, Sequence[Key]]], rows: Iterator[dict], errors: Iterator[dict]) -> int:
        """Turn a finished output back into parts: its input has grown, the old records stay scored.

        ``batches``: the planned batches of the grown input that hold old records only,
        in order; their results are taken, in order, from the output's ``rows`` and the
        errors file's ``errors`` (each record is one or the other, matched by id). Stops
        at the first record that cannot be matched (that batch and the rest are scored
        again). Returns the number of batches restored.
        """
        self.complete = False
        row, err = next(rows, None), next(errors, None)
        restored = 0
        for index, keys in batches:
            got_rows, got_errors = [], []
            for rid, _ in keys:
                if row is not None and str(row.get("id")) == str(rid):
                    got_rows.append(row)
                    row = next(rows, None)
                elif err is not None and str(err.get("id")) == str(rid):
                    got_errors.append(err)
                    err = next(errors, None)
                else:
                    log.warning("%s does not hold record %r in input order; scoring from there on", self.out, rid)
                    return restored
            self.write_part(index, keys, got_rows, got_errors)
            restored += 1
        return restored

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
            self.dir.mkdir(parents=True, exist_ok=True)
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
        if counts["errors"]:
            write_atomic(
                errors_out,
                (dumps(x, ensure_ascii=False) + "\n" for _, e in self.iter_parts(indices) for x in e),
            )
        else:  # no errors: no errors file (nor a stale one from an earlier run)
            errors_out.unlink(missing_ok=True)
        counts["retry_batches"] = len(self._retry)
        manifest = {"settings_fp": self.settings_fp, "settings": self.settings, **counts, **extra}
        write_atomic(manifest_path(self.out), [dumps(manifest, indent=1, default=str) + "\n"])
        if self._retry:
            log.warning(
                "%d batches hold errors worth retrying; run the same command again to retry them", len(self._retry)
            )
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        self.complete = True
        return counts


def _normalized(value: Any) -> Any:
    """``value`` as the manifest gives it back (tuples become lists, NaN null), so a stored setting equals a live one."""
    return json.loads(dumps(value, sort_keys=True, default=str))


def _flat(settings: Any, prefix: str = "") -> dict[str, Any]:
    """Nested settings as ``{"a.b": value}``, so that a difference names the one key that differs."""
    if not isinstance(settings, dict) or (prefix and not settings):
        return {prefix: settings}
    out: dict[str, Any] = {}
    for k, v in settings.items():
        out |= _flat(v, f"{prefix}.{k}" if prefix else str(k))
    return out


_MISSING = object()  # a setting one side does not have


def _show(value: Any) -> str:
    text = "(not set)" if value is _MISSING else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


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
