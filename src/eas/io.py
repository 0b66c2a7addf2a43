"""Records in (JSONL, Parquet, CSV), results and errors out (JSONL or Parquet).

Reading never stops at a bad row: a row that cannot become a ``Record`` is yielded as a
``RecordError`` carrying its id (or row index) and the reason. File-level problems (a
missing file, an unknown extension, a mapped field that the file does not have) raise
``InputError`` before anything is scored.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eas.records import InputError, Record, RecordError
from eas.runstore import write_atomic

log = logging.getLogger(__name__)

INPUT_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".csv": "csv"}
OUTPUT_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}


@dataclass(frozen=True)
class FieldMap:
    """Names of the input fields holding each part of a record."""

    id: str = "id"
    prompt: str = "prompt"
    response: str = "response"
    answer: str = "answer"

    def required(self) -> tuple[str, ...]:
        return (self.prompt, self.response)


def _format(path: Path, formats: dict[str, str], what: str) -> str:
    fmt = formats.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"{path}: unknown {what} format {path.suffix!r} (use one of {', '.join(sorted(formats))})")
    return fmt


def _check_fields(path: Path, present: set[str], fields: FieldMap, id_given: bool) -> None:
    wanted = list(fields.required()) + ([fields.id] if id_given else [])
    missing = [f for f in wanted if f not in present]
    if missing:
        raise InputError(
            f"{path}: no field {', '.join(map(repr, missing))} (fields found: {', '.join(sorted(present))})"
        )


def parse_json_line(raw: bytes | str, index: int) -> dict[str, Any] | RecordError:
    """One non-blank JSONL line as an object, or the ``RecordError`` saying why not."""
    try:
        row = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    except UnicodeDecodeError as exc:
        return RecordError(f"line is not valid UTF-8 ({exc.reason} at byte {exc.start})", index)
    except json.JSONDecodeError as exc:
        return RecordError(f"line is not valid JSON ({exc.msg} at column {exc.colno})", index)
    except RecursionError:
        return RecordError("line is JSON nested too deeply to read", index)
    if isinstance(row, dict):
        return row
    return RecordError(f"line holds a JSON {type(row).__name__}, not an object", index)


def _rows_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any] | RecordError]]:
    index = 0
    with path.open("rb") as f:
        for raw in f:
            if not raw.strip():
                continue
            yield index, parse_json_line(raw, index)
            index += 1


def _rows_parquet(path: Path) -> Iterator[tuple[int, dict[str, Any] | RecordError]]:
    import pyarrow.parquet as pq

    index = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
        for row in batch.to_pylist():
            yield index, row
            index += 1


def _rows_csv(path: Path) -> Iterator[tuple[int, dict[str, Any] | RecordError]]:
    csv.field_size_limit(sys.maxsize)
    # Undecodable bytes become lone surrogates here; _text() turns them into a record error.
    with path.open(newline="", encoding="utf-8", errors="surrogateescape") as f:
        yield from enumerate(csv.DictReader(f))


def field_names(path: str | Path) -> set[str] | None:
    """Field names of an input file (None for a JSONL file without a readable object)."""
    path = Path(path)
    fmt = _format(path, INPUT_FORMATS, "input")
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    return _field_names(path, fmt)


def _field_names(path: Path, fmt: str) -> set[str] | None:
    """Field names of the file, from its schema/header or its first JSON object."""
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return set(pq.read_schema(path).names)
        if fmt == "csv":
            with path.open(newline="", encoding="utf-8", errors="surrogateescape") as f:
                return set(next(csv.reader(f), []))
        for _, row in _rows_jsonl(path):
            if isinstance(row, dict):
                return set(row)
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    except Exception as exc:  # pyarrow raises its own error types for a bad file
        raise InputError(f"{path}: cannot read as {fmt} ({exc})") from None


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
    path: str | Path, fields: FieldMap | None = None, id_given: bool = False
) -> Iterator[Record | RecordError]:
    """Records of a JSONL, Parquet or CSV file, bad rows as ``RecordError``.

    Args:
        path: the input file; its extension decides the format.
        fields: which input field holds which part of a record.
        id_given: the id field was named explicitly, so it must exist.

    Raises:
        InputError: before the first record, for file-level problems.
    """
    pairs = read_rows_and_records(path, fields, id_given)
    return (rec for _, rec in pairs)


def read_rows_and_records(
    path: str | Path, fields: FieldMap | None = None, id_given: bool = False
) -> Iterator[tuple[dict[str, Any] | None, Record | RecordError]]:
    """Like ``read_records``, with each input row as read (None for an unreadable line).

    For commands that write the input rows back unchanged (``eas select``).
    """
    path = Path(path)
    fields = fields or FieldMap()
    fmt = _format(path, INPUT_FORMATS, "input")
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    names = _field_names(path, fmt)
    if names is not None:
        _check_fields(path, names, fields, id_given)
    rows = {"jsonl": _rows_jsonl, "parquet": _rows_parquet, "csv": _rows_csv}[fmt](path)

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


def errors_path(out: str | Path) -> Path:
    """``scored.jsonl`` -> ``scored.errors.jsonl``, beside the output."""
    out = Path(out)
    return out.with_name(out.stem + ".errors.jsonl")


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def check_output_path(path: str | Path) -> str:
    """The output format of ``path``; raises ``InputError`` for a bad extension or folder."""
    path = Path(path)
    fmt = _format(path, OUTPUT_FORMATS, "output")
    if not path.parent.is_dir():
        raise InputError(f"{path.parent}: output folder does not exist")
    return fmt


def jsonl_line(row: dict[str, Any]) -> str:
    """One JSONL line; non-finite floats become null (JSON has no NaN), other values JSON
    cannot hold (a Parquet timestamp or decimal carried from the input) their ``str``."""
    return json.dumps({k: _jsonable(v) for k, v in row.items()}, ensure_ascii=False, default=str) + "\n"


def write_jsonl(path: Path, make_batches: Callable[[], Iterator[list[dict[str, Any]]]]) -> None:
    """Write row batches as JSONL, all or nothing (temporary name, fsync, rename)."""
    write_atomic(path, (jsonl_line(row) for batch in make_batches() for row in batch))


def write_parquet(path: Path, make_batches: Callable[[], Iterator[list[dict[str, Any]]]]) -> None:
    """Write row batches as one Parquet file, streaming, all or nothing.

    A first pass over the batches settles the schema (a column that is null in one
    batch and a float in another is a float column; ids of mixed types become strings).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    schemas, id_types, has_id = [], set(), False
    for batch in make_batches():
        if batch:
            has_id = has_id or any("id" in r for r in batch)
            id_types |= {type(r["id"]) for r in batch if r.get("id") is not None}
            schemas.append(pa.Table.from_pylist([{k: v for k, v in r.items() if k != "id"} for r in batch]).schema)
    stringify = len(id_types) > 1  # ids from row indices beside string ids
    rest = pa.unify_schemas(schemas, promote_options="permissive") if schemas else pa.schema([])
    id_field = [pa.field("id", pa.int64() if id_types == {int} else pa.string())] if has_id or not schemas else []
    schema = pa.schema([*id_field, *rest])
    tmp = path.with_name(path.name + ".tmp")
    with pq.ParquetWriter(tmp, schema) as writer:
        for batch in make_batches():
            if batch:
                rows = _id_as(batch, str if stringify else None)
                writer.write_table(pa.Table.from_pylist(rows, schema=schema))
    with tmp.open("rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _id_as(rows: list[dict[str, Any]], cast: Callable[[Any], Any] | None) -> list[dict[str, Any]]:
    if cast is None:
        return rows
    return [{**r, "id": None if r.get("id") is None else cast(r["id"])} for r in rows]


def write_results(path: str | Path, make_batches: Callable[[], Iterator[list[dict[str, Any]]]]) -> None:
    """Write row batches to ``path`` in the format its extension names."""
    path = Path(path)
    {"jsonl": write_jsonl, "parquet": write_parquet}[check_output_path(path)](path, make_batches)


def read_table(path: str | Path) -> list[dict[str, Any]]:
    """All rows of a results file (JSONL or Parquet) as dicts, e.g. a study's per-question table.

    Raises:
        InputError: a missing file, an unknown extension, or a line that is not a JSON object.
    """
    path = Path(path)
    fmt = _format(path, OUTPUT_FORMATS, "results")
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    rows = []
    for index, row in _rows_jsonl(path):
        if isinstance(row, RecordError):
            raise InputError(f"{path}: row {index}: {row.reason}")
        rows.append(row)
    return rows
