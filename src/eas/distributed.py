"""Ray engine: the same scoring spread over a pool of model actors (``--engine ray``).

``score_file_with_ray`` (what ``eas score --engine ray`` runs) lets ``ray.data`` read
the input file (Parquet: ``read_parquet``; JSONL: ``read_text``, one line per row, parsed
in the actors with the same messages as a local run); ``map_batches`` runs the rows
through a pool of ``workers`` actors, each holding one backend (one model,
``gpus_per_worker`` GPUs, or one HTTP client pool for the openai backend) and calling
``eas.score_records`` on its batch. The dataset keeps the input order
(``preserve_order``), so results stream back, and into the output file, in input order
as they finish; the driver numbers the rows (ids default to the 0-based row index).
The input is read into the object store first (``materialize``), then scored.

Deliberate simplifications: CSV input (whose typing differs between pyarrow and the
local reader) and ``score_with_ray`` (records already in memory) go through the driver:
it hands the records to ``ray.data.from_items`` and so holds their texts in memory.

Each actor scores its batch with the same code as a local run, so the rows are the
same; numbers can differ from a local run only by float rounding where records are packed
into different groups (``batch_tokens``) or torch uses another number of threads.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from eas.config import EASConfig
from eas.records import Record, RecordError
from eas.scoring import ScoreError

log = logging.getLogger(__name__)


class EngineError(RuntimeError):
    """The Ray run failed as a whole (e.g. an actor could not load the model)."""


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide to run.

    Attributes:
        workers: scoring actors (one backend each).
        address: an existing cluster (``ray://head:10001`` or ``auto``); None starts a
            local Ray instance (unless one is already initialised in this process).
        gpus_per_worker: GPUs reserved per actor (0: CPU).
        cpus_per_worker: CPUs reserved per actor.
        batch_records: records per ``map_batches`` call.
    """

    workers: int = 2
    address: str | None = None
    gpus_per_worker: float = 0.0
    cpus_per_worker: float = 1.0
    batch_records: int = 8

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError("workers must be >= 1")
        if self.gpus_per_worker < 0 or self.cpus_per_worker < 0:
            raise ValueError("gpus_per_worker and cpus_per_worker must be >= 0")
        if self.batch_records < 1:
            raise ValueError("batch_records must be >= 1")


def _require_ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise ImportError("the ray engine needs Ray Data: pip install 'eas[ray]'") from exc
    return ray


def _local_runtime_env() -> dict[str, Any]:
    """Local workers import the same ``eas`` as this driver (e.g. a source checkout)."""
    src = str(Path(__file__).resolve().parent.parent)
    path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH", "")) if p)
    return {"env_vars": {"PYTHONPATH": path}}


def init_ray(options: RayOptions) -> None:
    """Connect to ``options.address``, or start local Ray, unless already connected.

    Also makes the datasets created from now on keep their input order: a dataset
    snapshots the current ``DataContext`` when it is created (Ray 2.60 does), so setting
    ``preserve_order`` later, on the context, does not reach it.
    """
    ray = _require_ray()
    ray.data.DataContext.get_current().execution_options.preserve_order = True
    if ray.is_initialized():
        return
    if options.address:
        ray.init(address=options.address)
    else:
        ray.init(runtime_env=_local_runtime_env(), include_dashboard=False)


class _Scorer:
    """A Ray Data actor: one backend, scores batches of JSON-encoded records."""

    def __init__(self, backend_kwargs: dict[str, Any], config: EASConfig):
        from eas.scoring import load_backend

        self.backend = load_backend(**backend_kwargs)
        self.config = config

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        from eas.scoring import score_records

        records = [Record(**json.loads(p)) for p in batch["payload"]]
        out = []
        for item in score_records(records, self.backend, self.config):
            out.append(json.dumps({"error": item.reason, "id": item.id} if isinstance(item, ScoreError) else item))
        return {"i": np.asarray(batch["i"]), "result": np.asarray(out, dtype=object)}


class _FileScorer(_Scorer):
    """A Ray Data actor for rows read by ``ray.data`` from the input file."""

    def __init__(self, backend_kwargs: dict[str, Any], config: EASConfig, fields: Any, lines: bool):
        super().__init__(backend_kwargs, config)
        self.fields = fields
        self.lines = lines

    def __call__(self, batch: Any) -> dict[str, Any]:  # batch: a pyarrow Table
        import numpy as np

        from eas.io import parse_json_line, to_record
        from eas.scoring import score_records

        records: list[Record | RecordError] = []
        by_index: list[bool] = []  # the id falls back to the row index, which the driver knows
        for row in batch.to_pylist():
            row = parse_json_line(row["text"], 0) if self.lines else row
            if isinstance(row, RecordError):
                records.append(row)
                by_index.append(True)
                continue
            by_index.append(row.get(self.fields.id) is None)
            try:
                records.append(to_record(0, row, self.fields))
            except RecordError as exc:
                records.append(exc)
        out = []
        for item in score_records(records, self.backend, self.config):
            out.append(json.dumps({"error": item.reason, "id": item.id} if isinstance(item, ScoreError) else item))
        return {"result": np.asarray(out, dtype=object), "by_index": np.asarray(by_index)}


def _stream(ds: Any, actor: type, kwargs: dict[str, Any], options: RayOptions, fmt: str) -> Iterator[dict[str, Any]]:
    """Rows of ``ds`` mapped by a pool of ``actor``, in input order; Ray failures as EngineError."""
    ray = _require_ray()
    ds.context.execution_options.preserve_order = True  # the context the dataset runs with
    mapped = ds.map_batches(
        actor,
        fn_constructor_kwargs=kwargs,
        batch_size=options.batch_records,
        compute=ray.data.ActorPoolStrategy(size=options.workers),
        num_gpus=options.gpus_per_worker,
        num_cpus=options.cpus_per_worker,
        batch_format=fmt,
    )
    rows = iter(mapped.iter_rows())
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except ray.exceptions.RayError as exc:
            raise EngineError(f"the ray engine failed: {_cause(exc)}") from None
        yield row


def _progress(items: Iterator[Any], progress: bool, total: int | None) -> Iterator[Any]:
    if not progress:
        yield from items
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, unit="rec", desc="scoring (ray)", dynamic_ncols=True) as bar:
        for item in items:
            yield item
            bar.update(1)


def score_file_with_ray(
    path: str | Path,
    fields: Any,
    backend_kwargs: dict[str, Any],
    config: EASConfig | None = None,
    options: RayOptions | None = None,
    *,
    id_given: bool = False,
    progress: bool = False,
    total: int | None = None,
) -> Iterator[dict[str, Any] | ScoreError]:
    """Score a JSONL/Parquet/CSV file on Ray, ``ray.data`` reading it (CSV: the driver).

    Yields what ``score_records(read_records(path, fields, id_given), ...)`` would, in
    input order. File-level problems raise ``InputError`` before anything starts.
    """
    from eas.io import read_records

    records = read_records(path, fields, id_given=id_given)  # checks the file and its fields now
    fmt = Path(path).suffix.lower()
    if fmt not in (".parquet", ".jsonl", ".ndjson"):
        yield from score_with_ray(records, backend_kwargs, config, options, progress=progress, total=total)
        return
    ray = _require_ray()
    options = options or RayOptions()
    init_ray(options)
    lines = fmt != ".parquet"
    ds = ray.data.read_text(str(path)) if lines else ray.data.read_parquet(str(path))
    # Read into the object store before the actors start: actors holding every CPU
    # (workers == CPUs, e.g. a small local run) would otherwise starve the read tasks.
    # Several blocks per worker, so that one big block (a one-row-group Parquet file) does
    # not go to a single actor; shuffle=False keeps the order.
    ds = ds.repartition(4 * options.workers, shuffle=False).materialize()
    kwargs = {"backend_kwargs": backend_kwargs, "config": config or EASConfig(), "fields": fields, "lines": lines}

    def results() -> Iterator[dict[str, Any] | ScoreError]:
        for index, row in enumerate(_stream(ds, _FileScorer, kwargs, options, "pyarrow")):
            item = _decode(row["result"])
            if bool(row["by_index"]):
                item = ScoreError(index, item.reason) if isinstance(item, ScoreError) else {**item, "id": index}
            yield item

    yield from _progress(results(), progress, total)


def _cause(exc: BaseException) -> str:
    """The innermost error's one-line message (Ray wraps the actor's error)."""
    while getattr(exc, "cause", None) is not None and exc.cause is not exc:
        exc = exc.cause
    lines = [x for x in str(exc).strip().splitlines() if x.strip()]
    return lines[-1] if lines else type(exc).__name__


def _decode(result: str) -> dict[str, Any] | ScoreError:
    row = json.loads(result)
    if set(row) == {"error", "id"}:
        return ScoreError(row["id"], row["error"])
    return row


def score_with_ray(
    records: Iterable[Record | RecordError],
    backend_kwargs: dict[str, Any],
    config: EASConfig | None = None,
    options: RayOptions | None = None,
    *,
    progress: bool = False,
    total: int | None = None,
) -> Iterator[dict[str, Any] | ScoreError]:
    """Score records on Ray; yields what ``score_records`` would, in input order.

    Args:
        records: as for ``score_records``.
        backend_kwargs: keyword arguments of ``eas.scoring.load_backend``; each actor
            loads its own backend with them (they must pickle).
        config: the metric's settings.
        options: workers, cluster address, resources per actor.
        progress: show a progress bar.
        total: number of records, for the progress bar.
    """
    ray = _require_ray()
    config = config or EASConfig()
    options = options or RayOptions()
    items: list[dict[str, Any] | ScoreError] = []
    for index, rec in enumerate(records):
        if isinstance(rec, RecordError):
            items.append(ScoreError(rec.record_id, rec.reason))
            continue
        fields = asdict(rec)
        fields.pop("extra")  # not used for scoring; keeps every payload JSON-serialisable
        items.append({"i": index, "payload": json.dumps(fields)})
    pending = [it for it in items if isinstance(it, dict)]
    stream: Iterator[dict[str, Any]] = iter(())
    if pending:
        init_ray(options)
        kwargs = {"backend_kwargs": backend_kwargs, "config": config}
        stream = _stream(ray.data.from_items(pending), _Scorer, kwargs, options, "numpy")

    def results() -> Iterator[dict[str, Any] | ScoreError]:
        for it in items:
            if isinstance(it, ScoreError):
                yield it
                continue
            row = next(stream)
            if int(row["i"]) != it["i"]:
                raise EngineError(f"ray returned record {row['i']} where {it['i']} was expected")
            yield _decode(row["result"])

    yield from _progress(results(), progress, total)
