"""A run's input and its identity: the records as scored, and a hash of all of them.

``read_input`` is the one reader of a run's records (``--dedupe`` turns every repeated
id after the first into an error record). ``input_identity`` reads them once, before any
work: it refuses duplicate ids (unless dedupe), counts the rows and the readable
records, and hashes the key (id, content fingerprint) of every record in order. A
finished output remembers that hash; a rerun into it with another input is refused, and
one whose input only grew (the old hash is the hash of its first rows) scores the new
records only (``eas.scoring.runs``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eas.records import InputError, Record, RecordError
from eas.scoring.batches import record_key
from eas.storage.inputs import FieldMap, read_records

DEDUPED = "duplicate id: --dedupe kept its first occurrence"


def read_input(
    path: str | Path, fields: FieldMap | None = None, id_given: bool = False, dedupe: bool = False
) -> Iterator[Record | RecordError]:
    """The records of ``path`` as a run scores them (with ``dedupe``, repeats as errors)."""
    records = read_records(path, fields or FieldMap(), id_given)
    if not dedupe:
        yield from records
        return
    seen: set[Any] = set()
    for rec in records:
        if isinstance(rec, Record):
            if rec.id in seen:
                yield RecordError(DEDUPED, rec.id)
                continue
            seen.add(rec.id)
        yield rec


@dataclass(frozen=True)
class InputIdentity:
    """What a run's input is.

    Attributes:
        items: rows, readable or not (each gives a row or an error).
        records: readable records (distinct ids): the pool an estimator may calibrate on.
        sha256: hash of every item's key (id, content fingerprint), in order.
        prefix_sha256: the same hash over the first ``checkpoint`` items (None when the
            input has fewer, or no checkpoint was asked for).
    """

    items: int
    records: int
    sha256: str
    prefix_sha256: str | None = None

    def describe(self) -> dict[str, Any]:
        return {"records": self.items, "sha256": self.sha256}


def input_identity(
    path: str | Path,
    fields: FieldMap | None = None,
    id_given: bool = False,
    dedupe: bool = False,
    with_extra: bool = False,
    checkpoint: int | None = None,
) -> InputIdentity:
    """Read the input once: its identity (see ``InputIdentity``).

    Raises:
        InputError: an unreadable file, or ids that occur more than once (without ``dedupe``).
    """
    digest = hashlib.sha256()
    items = records = 0
    prefix = digest.hexdigest()[:16] if checkpoint == 0 else None
    seen: set[Any] = set()
    dups: list[Any] = []
    for rec in read_input(path, fields, id_given, dedupe):
        if isinstance(rec, Record):
            if rec.id in seen:
                dups.append(rec.id)
            seen.add(rec.id)
            records += 1
        digest.update(json.dumps(list(record_key(rec, with_extra)), default=str).encode() + b"\n")
        items += 1
        if items == checkpoint:
            prefix = digest.hexdigest()[:16]
    if dups and not dedupe:
        shown = ", ".join(map(repr, dups[:20])) + (" ..." if len(dups) > 20 else "")
        raise InputError(
            f"{path}: {len(dups)} ids occur more than once ({shown}); fix the input or pass --dedupe "
            "to keep the first occurrence of each"
        )
    return InputIdentity(items, records - len(dups), digest.hexdigest()[:16], prefix)
