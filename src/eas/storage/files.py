"""Rows in (JSONL, Parquet, CSV) and out (JSONL, Parquet), written all or nothing.

A JSONL line that is not a JSON object is yielded as a ``RecordError`` with the reason,
so reading never stops at a bad row; file-level problems raise ``InputError``. Turning
rows into records is ``eas.storage.inputs``.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import json
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eas.records import InputError, RecordError
from eas.storage.jsontext import dumps
from eas.storage.parts import write_atomic

log = logging.getLogger(__name__)

INPUT_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".csv": "csv"}
OUTPUT_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}

Rows = Iterator[tuple[int, "dict[str, Any] | RecordError"]]


@dataclass(frozen=True)
class RowSource:
    """Input rows that do not come from one plain file: an evaluator's output, a data set
    (``eas.integrations``). Everything that reads an input path also takes one of these.

    Attributes:
        name: how messages and manifests name the input.
        open_rows: a fresh pass over ``(row index, row or the reason it cannot be read)``
            at each call (a run reads its input more than once), streamed.
        fields: the field names known before reading (checked like a file's header), or None.
    """

    name: str
    open_rows: Callable[[], Rows]
    fields: frozenset[str] | None = None

    def __str__(self) -> str:
        return self.name


def file_format(path: Path, formats: dict[str, str], what: str) -> str:
    fmt = formats.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"{path}: unknown {what} format {path.suffix!r} (use one of {', '.join(sorted(formats))})")
    return fmt


def parse_json_line(raw: bytes | str, index: int, line: int | None = None) -> dict[str, Any] | RecordError:
    """One non-blank JSONL line as an object, or the ``RecordError`` saying why not.

    ``index`` is the row index (the record's id when it has none); the reason names the
    file's ``line`` number (1-based, blank lines counted) when given.
    """
    where = f"line {line}" if line is not None else "line"
    try:
        row = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    except UnicodeDecodeError as exc:
        return RecordError(f"{where} is not valid UTF-8 ({exc.reason}, byte {exc.start})", index)
    except json.JSONDecodeError as exc:
        # json's own messages may end in "at" ("Unterminated string starting at"): one "at".
        return RecordError(f"{where} is not valid JSON ({exc.msg.removesuffix(' at')} at column {exc.colno})", index)
    except RecursionError:
        return RecordError(f"{where} is JSON nested too deeply to read", index)
    if isinstance(row, dict):
        return row
    return RecordError(f"{where} holds a JSON {type(row).__name__}, not an object", index)


def _rows_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any] | RecordError]]:
    index = 0
    with path.open("rb") as f:
        for line, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            # without its line break, an unterminated string is reported as such
            yield index, parse_json_line(raw.rstrip(b"\r\n"), index, line)
            index += 1


def _rows_parquet(path: Path) -> Iterator[tuple[int, dict[str, Any] | RecordError]]:
    import pyarrow.parquet as pq

    index = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
        for row in batch.to_pylist():
            yield index, row
            index += 1


@contextlib.contextmanager
def _csv_field_limit() -> Iterator[None]:
    """csv's field size limit lifted (a response can exceed its 128 KiB) while the block
    runs, then put back: the module-wide setting stays the caller's.

    ``sys.maxsize`` overflows the C long of some platforms (64-bit Windows: 32 bits);
    there the largest 32-bit limit is used.
    """
    previous = csv.field_size_limit()
    try:
        csv.field_size_limit(sys.maxsize)
    except OverflowError:
        csv.field_size_limit(2**31 - 1)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def _rows_csv(path: Path) -> Iterator[tuple[int, dict[str, Any] | RecordError]]:
    # Undecodable bytes become lone surrogates here; _text() turns them into a record error.
    with path.open(newline="", encoding="utf-8", errors="surrogateescape") as f:
        reader = csv.DictReader(f)
        for index in itertools.count():
            with _csv_field_limit():  # only around the read: the generator may wait between rows
                row = next(reader, None)
            if row is None:
                return
            yield index, row


def iter_rows(path: Path, fmt: str) -> Iterator[tuple[int, dict[str, Any] | RecordError]]:
    """(row index, row or the reason it cannot be read) for every row of a ``fmt`` file."""
    return {"jsonl": _rows_jsonl, "parquet": _rows_parquet, "csv": _rows_csv}[fmt](path)


def field_names(path: str | Path | RowSource) -> set[str] | None:
    """Field names of an input file (None for a JSONL file without a readable object)."""
    if isinstance(path, RowSource):
        return None if path.fields is None else set(path.fields)
    path = Path(path)
    fmt = file_format(path, INPUT_FORMATS, "input")
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    return format_field_names(path, fmt)


def format_field_names(path: Path, fmt: str) -> set[str] | None:
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


def errors_path(out: str | Path) -> Path:
    """``scored.jsonl`` -> ``scored.errors.jsonl``, beside the output."""
    out = Path(out)
    return out.with_name(out.stem + ".errors.jsonl")


def check_output_path(path: str | Path) -> str:
    """The output format of ``path``; raises ``InputError`` for a bad extension or folder."""
    path = Path(path)
    fmt = file_format(path, OUTPUT_FORMATS, "output")
    if not path.parent.is_dir():
        raise InputError(f"{path.parent}: output folder does not exist")
    return fmt


def jsonl_line(row: dict[str, Any]) -> str:
    """One JSONL line; non-finite floats become null at any depth (JSON has no NaN,
    ``eas.storage.jsontext``), other values JSON cannot hold (a Parquet timestamp or
    decimal carried from the input) their ``str``."""
    return dumps(row, ensure_ascii=False, default=str) + "\n"


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
    fmt = file_format(path, OUTPUT_FORMATS, "results")
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    rows = []
    for _, row in _rows_jsonl(path):
        if isinstance(row, RecordError):
            raise InputError(f"{path}: {row.reason}")
        rows.append(row)
    return rows


def write_rows(rows: Iterable[dict[str, Any]], path: str | Path) -> Path:
    """``rows`` to one JSONL or Parquet file, all or nothing; returns the path."""
    write_results(path, lambda: iter([list(rows)]))
    return Path(path)
