"""File-to-file scoring that survives a kill: ``score_file`` (``eas score``).

The input is planned into batches that depend on the input alone; each finished batch
is stored as an atomic part (``eas.storage.parts.PartStore``); a rerun with the same output
skips the stored batches, so its output equals an uninterrupted run's output exactly.
Duplicate ids are refused before any work (or, with ``dedupe``, every occurrence after
the first goes to the errors file).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eas.backends.base import Backend
from eas.config import EASConfig
from eas.records import InputError, Record, RecordError
from eas.storage.files import check_output_path, errors_path, write_results
from eas.storage.inputs import FieldMap, find_duplicate_ids, input_row, read_records

if TYPE_CHECKING:
    from eas.scoring.ray import RayOptions
from eas.progress import progress_bar
from eas.scoring.score import ScoreError, plan_batches, score_batch
from eas.storage.parts import Key, PartStore, RunSummary, fingerprint, read_manifest

log = logging.getLogger(__name__)


def record_key(rec: Record | RecordError, with_extra: bool = False) -> Key:
    """(id, fingerprint of the content): how a resumed run recognises finished work.

    ``with_extra``: the other input fields count too (they are copied to the output).
    """
    if isinstance(rec, RecordError):
        return (rec.record_id, fingerprint(["unreadable", rec.reason]))
    content = [rec.prompt, rec.response, rec.answer] + ([rec.extra] if with_extra else [])
    return (rec.id, fingerprint(content))


def with_input(rows: Sequence[dict[str, Any]], batch: Sequence[Record | RecordError], fields: FieldMap) -> list[dict]:
    """Result rows preceded by the fields of the input rows they score (results win a clash)."""
    by_id = {rec.id: rec for rec in batch if isinstance(rec, Record)}
    return [{**input_row(by_id[row["id"]], fields), **row} for row in rows]


def _dedupe(records: Iterable[Record | RecordError]) -> Iterator[Record | RecordError]:
    seen: set[Any] = set()
    for rec in records:
        if isinstance(rec, Record):
            if rec.id in seen:
                yield RecordError("duplicate id: --dedupe kept its first occurrence", rec.id)
                continue
            seen.add(rec.id)
        yield rec


def check_unique_ids(input_path: str | Path, fields: FieldMap, id_given: bool, dedupe: bool) -> int:
    """Count the input's rows; refuse duplicate ids unless ``dedupe`` (InputError)."""
    n, dups = find_duplicate_ids(read_records(input_path, fields, id_given))
    if dups and not dedupe:
        shown = ", ".join(map(repr, dups[:20])) + (" ..." if len(dups) > 20 else "")
        raise InputError(
            f"{input_path}: {len(dups)} ids occur more than once ({shown}); fix the input or pass --dedupe "
            "to keep the first occurrence of each"
        )
    return n


def score_file(
    input_path: str | Path,
    out: str | Path,
    backend: Backend | Callable[[], Backend] | dict[str, Any],
    config: EASConfig | None = None,
    *,
    fields: FieldMap | None = None,
    id_given: bool = False,
    settings: dict[str, Any] | None = None,
    batch_tokens: int = 2048,
    overwrite: bool = False,
    dedupe: bool = False,
    keep_input: bool = False,
    progress: bool = False,
    ray: RayOptions | None = None,
    scorer: Callable[..., list[dict[str, Any] | ScoreError]] = score_batch,
) -> RunSummary:
    """Score a file of records into ``out`` (+ its errors file), resumably.

    Args:
        input_path: JSONL, Parquet or CSV records.
        out: results, JSONL or Parquet; the errors go to ``errors_path(out)``.
        backend: a backend, or a function that makes one (called only if some batch
            still needs work, so a finished run does not load a model); with ``ray``, the
            keyword arguments of ``load_backend``.
        config: the metric's settings.
        fields: input field names.
        id_given: the id field was named explicitly, so it must exist.
        settings: more settings that decide the numbers (model, dtype, backend ...);
            with ``config`` and ``fields`` they must match for a run to resume.
        batch_tokens: records are packed into batches of about this many tokens.
        overwrite: discard earlier output or parts made with other settings.
        dedupe: keep the first occurrence of a duplicate id instead of refusing.
        keep_input: each result row also carries its input row's fields (prompt,
            response, answer and the rest, under their input names), so the output can be
            selected from and trained on directly.
        progress: show a progress bar.
        ray: score the batches on a Ray actor pool (``eas.scoring.ray``); then
            ``backend`` is the dict of ``eas.backends.load.load_backend`` keyword
            arguments each actor loads its backend with. Parts, resuming and the
            settings check are the same as for a local run.
        scorer: ``scorer(batch, backend, config)`` scores one planned batch (default
            ``score_batch``, exact EAS; the amortised runs pass their own). Local runs only.

    Raises:
        InputError: bad input file, duplicate ids, or other settings than the run
            that wrote ``out`` (without ``overwrite``).
    """
    config = config or EASConfig()
    fields = fields or FieldMap()
    if ray is not None and scorer is not score_batch:
        raise ValueError("only exact scoring runs on the Ray engine")
    out = Path(out)
    check_output_path(out)
    total = check_unique_ids(input_path, fields, id_given, dedupe)
    all_settings = {
        "metric": asdict(config),
        "fields": asdict(fields),
        "dedupe": dedupe,
        "keep_input": keep_input,
        **(settings or {}),
    }
    store = PartStore(out, all_settings, overwrite).open()
    if store.complete:
        log.info("%s is already complete with these settings; nothing to do", out)
        man = read_manifest(out)
        return RunSummary(man.get("rows", 0), man.get("errors", 0), already_complete=True)

    made: list[Backend] = []

    def get_backend() -> Backend:
        if not made:
            made.append(backend() if callable(backend) and not hasattr(backend, "measure") else backend)
        return made[0]

    records: Iterable[Record | RecordError] = read_records(input_path, fields, id_given)
    if dedupe:
        records = _dedupe(records)
    indices: list[int] = []
    in_flight: dict[int, tuple[list[Record | RecordError], list[Key]]] = {}
    with progress_bar(progress, total) as bar:

        def pending() -> Iterator[tuple[int, list[Record | RecordError]]]:
            """The planned batches that no stored part covers yet."""
            for index, batch in enumerate(plan_batches(records, batch_tokens)):
                keys = [record_key(r, with_extra=keep_input) for r in batch]
                indices.append(index)
                if store.is_done(index, keys):
                    bar.update(len(batch))
                    continue
                in_flight[index] = (batch, keys)
                yield index, batch

        if ray is None:
            scored = ((index, scorer(batch, get_backend(), config)) for index, batch in pending())
        else:
            from eas.scoring.ray import score_batches

            scored = score_batches(pending(), dict(backend), config, ray)  # type: ignore[call-overload]
        for index, results in scored:
            batch, keys = in_flight.pop(index)
            errors = [r for r in results if isinstance(r, ScoreError)]
            rows = [r for r in results if not isinstance(r, ScoreError)]
            rows = with_input(rows, batch, fields) if keep_input else rows
            store.write_part(index, keys, rows, [e.row() for e in errors], retry=any(e.retry for e in errors))
            bar.update(len(batch))
    extra: dict[str, Any] = {"input": str(input_path), "records": total}
    if made and hasattr(made[0], "describe"):  # what the backend found out (e.g. what a server accepts)
        extra["backend"] = made[0].describe()
    counts = store.finish(indices, write_results, errors_path(out), extra)
    return RunSummary(counts["rows"], counts["errors"], retry_batches=counts["retry_batches"])
