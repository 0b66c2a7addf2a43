"""The one run loop: input -> batches -> estimator -> parts -> output (``score_records``, ``score_file``).

Every estimator (``eas.scoring.estimators``) and both engines (this process, or a Ray
actor pool: ``eas.scoring.ray``) go through ``score_file``; it never asks which
estimator runs. In order:

1. the input is read once for its identity (``eas.scoring.identity``): ids, a hash of
   what is scored, duplicate ids refused before any work (or deduped);
2. the run's settings are the estimator's settings, the backend's settings as they
   resolve here (dtype, device kind, attention kernel: never ``"auto"``), the fields
   and the options that change rows; the run store (``eas.storage.parts``) refuses other
   settings, naming what differs. A finished output with the same settings and input
   is complete; with another input it is refused, and a grown input scores only its
   new records. All of this happens before a model is loaded or a head calibrated;
3. the input is planned into batches that depend on the input alone, so a resumed run
   plans the same ones; the batches no stored part covers are scored, after the
   estimator's ``plan``/``prepare`` step (``auto`` calibrates there);
4. each finished batch becomes one atomic part; at the end the parts are combined, in
   input order, into the output, the errors file (only if some record failed) and a
   manifest that records the input's identity.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eas.backends.base import Backend
from eas.backends.spec import BackendSource, LoadedBackend
from eas.config import CPU_BATCH_TOKENS, EASConfig
from eas.progress import progress_bar
from eas.records import InputError, Record, RecordError
from eas.scoring.batches import ScoreError, plan_batches, record_key, with_input
from eas.scoring.estimators.base import Estimator, Pool, Result, check_requires
from eas.scoring.estimators.exact import as_estimator
from eas.scoring.identity import InputIdentity, input_identity, read_input
from eas.storage.files import check_output_path, errors_path, iter_rows, write_results
from eas.storage.inputs import FieldMap
from eas.storage.parts import Key, PartStore, RunSummary, read_manifest

if TYPE_CHECKING:
    from eas.scoring.ray import RayOptions

log = logging.getLogger(__name__)

Batch = list[Record | RecordError]


@dataclass(frozen=True)
class RunOptions:
    """How a file-to-file run reads, stores and schedules (not what it measures).

    Attributes:
        fields: input field names.
        id_given: the id field was named explicitly, so it must exist.
        batch_tokens: records are packed into batches of about this many tokens.
        overwrite: discard earlier output or parts made with other settings or input.
        dedupe: keep the first occurrence of a duplicate id instead of refusing.
        keep_input: each result row also carries its input row's fields (prompt,
            response, answer and the rest, under their input names).
        progress: show a progress bar.
        allow_empty: an input without a single row is scored into empty outputs;
            otherwise it is refused (``InputError``).
        ray: score the batches on a Ray actor pool (``eas.scoring.ray``); None: here.
    """

    fields: FieldMap = field(default_factory=FieldMap)
    id_given: bool = False
    batch_tokens: int = CPU_BATCH_TOKENS
    overwrite: bool = False
    dedupe: bool = False
    keep_input: bool = False
    progress: bool = False
    allow_empty: bool = True
    ray: RayOptions | None = None


class LocalEngine:
    """Scores in this process; the backend is loaded on first use (a finished run loads none)."""

    def __init__(self, source: BackendSource):
        self.source = source
        self._stack = contextlib.ExitStack()
        self._backend: Backend | None = None
        self._checked: set[int] = set()

    def backend(self, estimator: Estimator) -> Backend:
        if self._backend is None:
            self._backend = self._stack.enter_context(self.source.open())
        if id(estimator) not in self._checked:
            estimator.check(self._backend)
            self._checked.add(id(estimator))
        return self._backend

    def prepare(self, estimator: Estimator, records: list[Record]) -> Estimator:
        return estimator.prepare(records, self.backend(estimator))

    def score(self, batches: Iterable[tuple[int, Batch]], estimator: Estimator) -> Iterator[tuple[int, list[Result]]]:
        for index, batch in batches:
            yield index, estimator.score_batch(batch, self.backend(estimator))

    def describe(self) -> dict[str, Any] | None:
        return None if self._backend is None else self._backend.describe()

    def close(self) -> None:
        self._stack.close()


def score_records(
    records: Iterable[Record | RecordError],
    backend: Backend,
    estimator: Estimator | EASConfig | None = None,
    *,
    batch_tokens: int | None = None,
    progress: bool = False,
    total: int | None = None,
) -> Iterator[dict[str, Any] | ScoreError]:
    """Score records with a backend, yielding a result row or a ``ScoreError`` per record.

    Args:
        records: ``Record`` objects; a ``RecordError`` in the stream (e.g. a row the reader
            could not parse) is passed through as a ``ScoreError``.
        backend: from ``load_backend`` or any ``Backend`` (the caller closes it).
        estimator: how rows are made (``eas.scoring.estimators``); an ``EASConfig`` (or
            None) is exact EAS with those settings.
        batch_tokens: group short records up to this many tokens (default: the
            backend's, resolved for its device, else ``CPU_BATCH_TOKENS``).
        progress: show a progress bar.
        total: number of records, for the progress bar.

    Yields:
        In input order: a dict with the columns of ``RESULT_COLUMNS`` (+ ``trajectory``)
        or a ``ScoreError``.

    Example:
        >>> backend = load_backend("embedded")  # doctest: +SKIP
        >>> rec = Record("q1", "What is 2+3?", "2+3 = 5, so \\\\boxed{5}.")
        >>> next(score_records([rec], backend))["eas"]  # doctest: +SKIP
        3.91...
    """
    estimator = as_estimator(estimator)
    source = LoadedBackend(backend)
    check_requires(estimator, source.capabilities(), "this backend")
    if batch_tokens is None:
        batch_tokens = getattr(backend, "batch_tokens", CPU_BATCH_TOKENS)
    if estimator.pool_dependent:
        records = list(records)
    pool = Pool.of(records) if estimator.pool_dependent else Pool(lambda: iter(()), 0)
    engine = LocalEngine(source)
    with progress_bar(progress, total) as bar:
        numbered = enumerate(plan_batches(records, batch_tokens))
        for _, results in run_batches(engine, estimator, pool, numbered):
            yield from results
            bar.update(len(results))


def run_batches(
    engine: Any,
    estimator: Estimator,
    pool: Pool,
    batches: Iterable[tuple[int, Batch]],
    warnings: list[str] | None = None,
) -> Iterator[tuple[int, list[Result]]]:
    """``(index, results)`` of every numbered batch: the estimator planned and prepared once,
    on the first batch (so a run with nothing to do prepares nothing). The ready
    estimator's warnings are logged and appended to ``warnings``."""
    todo = iter(batches)
    first = next(todo, None)
    if first is None:
        return
    ready, needed = estimator.plan(pool)
    if needed:
        ready = engine.prepare(ready, needed)
    for warning in ready.warnings():
        log.warning("%s", warning)
        if warnings is not None:
            warnings.append(warning)
    yield from engine.score(_chain(first, todo), ready)


def _chain(first: tuple[int, Batch], rest: Iterator[tuple[int, Batch]]) -> Iterator[tuple[int, Batch]]:
    yield first
    yield from rest


def run_settings(estimator: Estimator, source: BackendSource, options: RunOptions, ident: InputIdentity) -> dict:
    """Everything that decides a run's rows: what a resumed run must match."""
    settings: dict[str, Any] = {
        "estimator": estimator.settings(),
        "backend": source.resolved(),
        "fields": asdict(options.fields),
        "dedupe": options.dedupe,
        "keep_input": options.keep_input,
    }
    if estimator.pool_dependent:  # its rows depend on every record: the input is a setting
        settings["input"] = ident.describe()
    return settings


def score_file(
    input_path: str | Path,
    out: str | Path,
    backend: BackendSource,
    estimator: Estimator | EASConfig | None = None,
    options: RunOptions | None = None,
) -> RunSummary:
    """Score a file of records into ``out`` (+ its errors file), resumably.

    Args:
        input_path: JSONL, Parquet or CSV records.
        out: results, JSONL or Parquet; the errors go to ``errors_path(out)``.
        backend: where the backend comes from: a ``BackendSpec`` (loaded only if some
            batch still needs work; each Ray actor loads its own) or a ``LoadedBackend``.
        estimator: how rows are made; an ``EASConfig`` (or None) is exact EAS.
        options: fields, batching, resuming, engine (``RunOptions``).

    Raises:
        InputError: bad input file, duplicate ids, an empty input (unless
            ``allow_empty``), or other settings or another input than the run that
            wrote ``out`` (without ``overwrite``).
    """
    options = options or RunOptions()
    estimator = as_estimator(estimator)
    out = Path(out)
    check_output_path(out)
    check_requires(estimator, backend.capabilities(), "this backend")
    previous = read_manifest(out) if out.exists() and not options.overwrite else {}
    read = lambda: read_input(input_path, options.fields, options.id_given, options.dedupe)  # noqa: E731
    ident = input_identity(input_path, options.fields, options.id_given, options.dedupe, options.keep_input,
                           checkpoint=previous.get("records"))  # fmt: skip
    if ident.items == 0 and not options.allow_empty:
        raise InputError(f"{input_path}: no records to score; pass --allow-empty to write empty outputs")
    store = PartStore(out, run_settings(estimator, backend, options, ident), options.overwrite).open()
    keys_of = lambda batch: [record_key(r, with_extra=options.keep_input) for r in batch]  # noqa: E731
    if store.complete:
        if previous.get("input_sha256") == ident.sha256:
            log.info("%s is already complete with these settings and this input; nothing to do", out)
            return RunSummary(previous.get("rows", 0), previous.get("errors", 0), already_complete=True)
        _reopen(store, out, previous, ident, (keys_of(b) for b in plan_batches(read(), options.batch_tokens)))
    engine = _engine(backend, options)
    indices: list[int] = []
    in_flight: dict[int, tuple[Batch, list[Key]]] = {}
    try:
        with progress_bar(options.progress, ident.items) as bar:

            def pending() -> Iterator[tuple[int, Batch]]:
                """The planned batches that no stored part covers yet."""
                for index, batch in enumerate(plan_batches(read(), options.batch_tokens)):
                    keys = keys_of(batch)
                    indices.append(index)
                    if store.is_done(index, keys):
                        bar.update(len(batch))
                        continue
                    in_flight[index] = (batch, keys)
                    yield index, batch

            notes: list[str] = []
            for index, results in run_batches(engine, estimator, Pool(read, ident.records), pending(), notes):
                batch, keys = in_flight.pop(index)
                errors = [r for r in results if isinstance(r, ScoreError)]
                rows = [r for r in results if not isinstance(r, ScoreError)]
                rows = with_input(rows, batch, options.fields) if options.keep_input else rows
                store.write_part(index, keys, rows, [e.row() for e in errors], retry=any(e.retry for e in errors))
                bar.update(len(batch))
        extra: dict[str, Any] = {"input": str(input_path), "records": ident.items, "input_sha256": ident.sha256}
        extra["estimator"] = estimator.label()
        if notes:  # e.g. a head that does not rank
            extra["warnings"] = notes
        described = engine.describe()
        if described is not None:  # what the backend found out (e.g. what a server accepts)
            extra["backend"] = described
    finally:
        engine.close()
    counts = store.finish(indices, write_results, errors_path(out), extra)
    return RunSummary(counts["rows"], counts["errors"], retry_batches=counts["retry_batches"])


def _engine(backend: BackendSource, options: RunOptions) -> Any:
    if options.ray is None:
        return LocalEngine(backend)
    from eas.scoring.ray import RayEngine

    return RayEngine(backend, options.ray)


def _reopen(
    store: PartStore, out: Path, previous: dict[str, Any], ident: InputIdentity, keys: Iterator[list[Key]]
) -> None:
    """A finished ``out`` whose input has changed: refused, or (the input grew) reopened."""
    n_old = previous.get("records")
    if n_old is None or ident.prefix_sha256 is None or ident.prefix_sha256 != previous.get("input_sha256"):
        was = f"{previous.get('records', '?')} records of {previous.get('input', 'another file')}"
        raise InputError(
            f"{out} holds the scores of another input ({was}); use --overwrite to score this input into it, "
            "or another --out"
        )
    log.info("%s: the input grew from %d to %d records; scoring the new ones", out, n_old, ident.items)

    def old_batches() -> Iterator[tuple[int, list[Key]]]:
        seen = 0
        for index, batch_keys in enumerate(keys):
            seen += len(batch_keys)
            if seen > n_old:
                return
            yield index, batch_keys

    rows = (row for _, row in iter_rows(out, check_output_path(out)) if isinstance(row, dict))
    err_file = errors_path(out)
    errors = (e for _, e in iter_rows(err_file, "jsonl") if isinstance(e, dict)) if err_file.exists() else iter(())
    store.reopen(old_batches(), rows, errors)
