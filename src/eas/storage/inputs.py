"""Input rows -> ``Record``s: the field mapping, per-row checks, duplicate ids.

Reading never stops at a bad row: a row that cannot become a ``Record`` is yielded as a
``RecordError`` carrying its id (or row index) and the reason. File-level problems (a
missing file, an unknown extension, a mapped field that the file does not have) raise
``InputError`` before anything is scored.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eas.config import setting
from eas.records import InputError, Record, RecordError
from eas.storage.files import INPUT_FORMATS, RowSource, file_format, format_field_names, iter_rows

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FieldMap:
    """Names of the input fields holding each part of a record."""

    id: str = setting("id", "field with the record id (default 'id', else the 0-based row index)", flag="--id-field")
    prompt: str = setting("prompt", "field with the question (the prompt)", flag="--prompt-field")
    response: str = setting("response", "field with the reasoning trace (the response)", flag="--response-field")
    answer: str = setting("answer", "field with the ground-truth answer", flag="--answer-field")

    def required(self) -> tuple[str, ...]:
        return (self.prompt, self.response)


def _check_fields(path: Path | RowSource, present: set[str], fields: FieldMap, id_given: bool) -> None:
    wanted = list(fields.required()) + ([fields.id] if id_given else [])
    missing = [f for f in wanted if f not in present]
    if missing:
        raise InputError(
            f"{path}: no field {', '.join(map(repr, missing))} (fields found: {', '.join(sorted(present))})"
        )


def _text(row: dict[str, Any], name: str, required: bool) -> str | None:
    value = row.get(name)
    if value is None:
        if required:
            raise RecordError(f"field {name!r} is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise RecordError(f"field {name!r} is a {type(value).__name__}, expected a string")
    if isinstance(value, float) and not math.isfinite(value):
        raise RecordError(f"field {name!r} is {value}, expected a string")
    if required and not isinstance(value, str):
        raise RecordError(f"field {name!r} is a {type(value).__name__}, expected a string")
    text = str(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise RecordError(f"field {name!r} is not valid UTF-8") from None
    return text


def to_record(index: int, row: dict[str, Any], fields: FieldMap) -> Record:
    """A ``Record`` from one input row; the id defaults to the 0-based row index."""
    rid = row.get(fields.id, index)
    if rid is None:
        rid = index
    if isinstance(rid, bool) or not isinstance(rid, (str, int)):
        raise RecordError(f"field {fields.id!r} is a {type(rid).__name__}, expected a string or integer", index)
    try:
        prompt = _text(row, fields.prompt, required=True)
        response = _text(row, fields.response, required=True)
        answer = _text(row, fields.answer, required=False)
    except RecordError as exc:
        raise RecordError(exc.reason, rid) from None
    known = {fields.id, fields.prompt, fields.response, fields.answer}
    extra = {k: v for k, v in row.items() if k not in known}
    return Record(rid, prompt or "", response or "", answer, extra or None)


def input_row(rec: Record, fields: FieldMap) -> dict[str, Any]:
    """The input row a record was read from (the inverse of ``to_record``; the answer as text)."""
    row: dict[str, Any] = {fields.id: rec.id, fields.prompt: rec.prompt, fields.response: rec.response}
    if rec.answer is not None:
        row[fields.answer] = rec.answer
    return {**row, **(rec.extra or {})}


def read_records(
    path: str | Path | RowSource, fields: FieldMap | None = None, id_given: bool = False
) -> Iterator[Record | RecordError]:
    """Records of a JSONL, Parquet or CSV file, bad rows as ``RecordError``.

    Args:
        path: the input file; its extension decides the format. Or a ``RowSource``.
        fields: which input field holds which part of a record.
        id_given: the id field was named explicitly, so it must exist.

    Raises:
        InputError: before the first record, for file-level problems.
    """
    pairs = read_rows_and_records(path, fields, id_given)
    return (rec for _, rec in pairs)


def read_rows_and_records(
    path: str | Path | RowSource, fields: FieldMap | None = None, id_given: bool = False
) -> Iterator[tuple[dict[str, Any] | None, Record | RecordError]]:
    """Like ``read_records``, with each input row as read (None for an unreadable line).

    For commands that write the input rows back unchanged (``eas select``).
    """
    fields = fields or FieldMap()
    if isinstance(path, RowSource):
        names = None if path.fields is None else set(path.fields)
        rows = path.open_rows()
    else:
        path = Path(path)
        fmt = file_format(path, INPUT_FORMATS, "input")
        if not path.is_file():
            raise InputError(f"{path}: no such file")
        names = format_field_names(path, fmt)
        rows = iter_rows(path, fmt)
    if names is not None:
        _check_fields(path, names, fields, id_given)

    def generate() -> Iterator[tuple[dict[str, Any] | None, Record | RecordError]]:
        for index, row in rows:
            if isinstance(row, RecordError):
                yield None, row
                continue
            try:
                yield row, to_record(index, row, fields)
            except RecordError as exc:
                yield row, exc if exc.record_id is not None else RecordError(exc.reason, index)

    return generate()


def readable_records(rows: Iterable[Record | RecordError], source: str) -> list[Record]:
    """The ``Record`` rows; one warning counts the rest (left out) and names the first."""
    records: list[Record] = []
    unread: list[RecordError] = []
    for row in rows:
        (records if isinstance(row, Record) else unread).append(row)
    if unread:
        first = unread[0]
        log.warning(
            "%d of %d rows of %s cannot be read and are left out (first: record %s: %s)",
            len(unread),
            len(records) + len(unread),
            source,
            first.record_id,
            first.reason,
        )
    return records


def find_duplicate_ids(records: Iterable[Record | RecordError]) -> tuple[int, list[Any]]:
    """Number of rows and the ids that occur more than once (one pass over the input)."""
    seen: set[Any] = set()
    dup: dict[Any, None] = {}
    n = 0
    for rec in records:
        n += 1
        rid = rec.id if isinstance(rec, Record) else None
        if rid is None:
            continue
        if rid in seen:
            dup[rid] = None
        seen.add(rid)
    return n, list(dup)
