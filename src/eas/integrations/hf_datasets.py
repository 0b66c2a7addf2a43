"""Hugging Face datasets in (streamed) and out (``save_to_disk``), with the ``datasets`` library.

An input is one of:

* a folder written by ``Dataset.save_to_disk`` (it holds ``state.json``): opened with
  ``datasets.load_from_disk``, which memory-maps the Arrow files;
* a folder of Parquet or Arrow shards (``*.parquet`` / ``*.arrow``, searched
  recursively, read in name order): ``load_dataset("parquet"|"arrow", streaming=True)``;
* ``NAME[:CONFIG]:SPLIT`` (e.g. ``open-r1/OpenR1-Math-220k:default:train``): a data set
  already in the local datasets cache, streamed from it with the Hub switched off.

Rows are read ``ROW_BATCH`` at a time from a generator, so memory holds one batch, not
the table; a run reads its input more than once (ids, then records) and each pass
opens the data set again. The output is the run's results (a Parquet file) converted
batch by batch into an Arrow file, then saved with ``save_to_disk``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from eas.records import InputError
from eas.storage.files import Rows, RowSource

log = logging.getLogger(__name__)

ROW_BATCH = 256
INSTALL_HINT = "pip install 'eas[datasets]' (or: pip install 'datasets>=3')"


def _datasets() -> Any:
    try:
        import datasets
    except ImportError:
        raise ImportError(f"Hugging Face datasets need the datasets package: {INSTALL_HINT}") from None
    return datasets


def is_dataset_spec(spec: str) -> bool:
    """Whether an input names a data set (a folder, or ``NAME[:CONFIG]:SPLIT``) rather than a file."""
    path = Path(spec)
    if path.is_dir():
        return True
    return not path.exists() and ":" in spec and path.suffix.lower() not in (".jsonl", ".parquet", ".csv")


def _shards(folder: Path) -> tuple[str, list[str]]:
    for ext, builder in ((".parquet", "parquet"), (".arrow", "arrow")):
        files = sorted(str(p) for p in folder.rglob(f"*{ext}") if not any(x.startswith(".") for x in p.parts))
        if files:
            return builder, files
    raise InputError(
        f"{folder}: not a data set (expected a save_to_disk folder with state.json, or *.parquet / *.arrow shards)"
    )


@contextlib.contextmanager
def _hub_off() -> Iterator[None]:
    """The Hub switched off while a cached data set is opened (it never downloads), and
    datasets' warnings that it is using the cache (that is the point) silenced."""
    datasets = _datasets()
    old, verbosity = datasets.config.HF_HUB_OFFLINE, datasets.logging.get_verbosity()
    datasets.config.HF_HUB_OFFLINE = True
    datasets.logging.set_verbosity_error()
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE = old
        datasets.logging.set_verbosity(verbosity)


def open_dataset(spec: str) -> Any:
    """The ``Dataset`` (memory-mapped) or ``IterableDataset`` (streamed) that ``spec`` names."""
    datasets = _datasets()
    path = Path(spec)
    if path.is_dir():
        if (path / "dataset_dict.json").is_file():
            splits = sorted(p.name for p in path.iterdir() if (p / "state.json").is_file())
            raise InputError(f"{path}: holds the splits {', '.join(splits)}; name one as {path}/SPLIT")
        if (path / "state.json").is_file():
            return datasets.load_from_disk(str(path))
        builder, files = _shards(path)
        return datasets.load_dataset(builder, data_files=files, split="train", streaming=True)
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise InputError(f"{spec}: not a file, a folder or NAME[:CONFIG]:SPLIT")
    name, config, split = parts[0], (parts[1] if len(parts) == 3 else None), parts[-1]
    try:
        with _hub_off():
            return datasets.load_dataset(name, config, split=split, streaming=True)
    except (ConnectionError, FileNotFoundError) as exc:
        first = str(exc).splitlines()[0]
        raise InputError(
            f"{name}: not in the local datasets cache ({first}); download it once with datasets.load_dataset"
        ) from None
    except ValueError as exc:  # an unknown config or split: datasets lists the ones it has
        raise InputError(f"{spec}: {' '.join(str(exc).split())}") from None


def dataset_columns(ds: Any) -> set[str] | None:
    """Column names from the data set's features, else from its first row (None when empty)."""
    names = getattr(ds, "column_names", None)
    if names:
        return set(names)
    first = next(iter_dataset_rows(ds, 1), None)
    return None if first is None else set(first[1])


def iter_dataset_rows(ds: Any, batch_size: int | None = None) -> Rows:
    """``(row index, row)`` of a data set, read ``batch_size`` (default ``ROW_BATCH``) rows at a time."""
    index = 0
    for batch in ds.iter(batch_size=batch_size or ROW_BATCH):
        columns = list(batch)
        n = len(batch[columns[0]]) if columns else 0
        for i in range(n):
            yield index, {c: batch[c][i] for c in columns}
            index += 1


def dataset_source(spec: str) -> tuple[RowSource, set[str] | None]:
    """The data set ``spec`` as a ``RowSource`` (each pass opens it again) and its columns."""
    columns = dataset_columns(open_dataset(spec))
    source = RowSource(
        spec, lambda: iter_dataset_rows(open_dataset(spec)), None if columns is None else frozenset(columns)
    )
    return source, columns


def is_dataset_output(out: str) -> bool:
    """``--out DIR/`` (a trailing slash) or an existing folder: write a data set."""
    return out.endswith(("/", "\\")) or Path(out).is_dir()


def write_dataset(results: Path, out_dir: Path) -> int:
    """The rows of the Parquet file ``results`` saved as a data set in ``out_dir``
    (``datasets.load_from_disk`` reads it); returns the number of rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    datasets = _datasets()
    arrow = results.with_suffix(".arrow")
    parquet = pq.ParquetFile(results)
    with pa.OSFile(str(arrow), "wb") as sink, pa.ipc.new_stream(sink, parquet.schema_arrow) as writer:
        for batch in parquet.iter_batches(batch_size=ROW_BATCH):
            writer.write_batch(batch)
    try:
        ds = datasets.Dataset.from_file(str(arrow))  # memory-mapped, not loaded
        ds.save_to_disk(str(out_dir))
        return len(ds)
    finally:
        arrow.unlink(missing_ok=True)
