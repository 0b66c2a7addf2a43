"""File-to-file runs that survive a kill: ``score_file`` (``eas score``) and
``sample_file`` (``eas sample``).

The input is planned into batches that depend on the input alone; each finished batch
is stored as an atomic part (``eas.runstore.PartStore``); a rerun with the same output
skips the stored batches, so its output equals an uninterrupted run's output exactly.
Duplicate ids are refused before any work (or, with ``dedupe``, every occurrence after
the first goes to the errors file).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from eas.backends.base import Backend
from eas.config import EASConfig
from eas.io import (
    FieldMap,
    check_output_path,
    errors_path,
    find_duplicate_ids,
    input_row,
    read_records,
    write_results,
)
from eas.records import InputError, Record, RecordError
from eas.runstore import Key, PartStore, fingerprint, read_manifest
from eas.sampling import FewShot, Question, SamplingConfig
from eas.scoring import ScoreError, plan_batches, progress_bar, score_batch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSummary:
    """What a run left behind."""

    rows: int
    errors: int
    already_complete: bool = False
    retry_batches: int = 0


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
    backend: Backend | Callable[[], Backend],
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
) -> RunSummary:
    """Score a file of records into ``out`` (+ its errors file), resumably.

    Args:
        input_path: JSONL, Parquet or CSV records.
        out: results, JSONL or Parquet; the errors go to ``errors_path(out)``.
        backend: a backend, or a function that makes one (called only if some batch
            still needs work, so a finished run does not load a model).
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

    Raises:
        InputError: bad input file, duplicate ids, or other settings than the run
            that wrote ``out`` (without ``overwrite``).
    """
    config = config or EASConfig()
    fields = fields or FieldMap()
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
    with progress_bar(progress, total) as bar:
        for index, batch in enumerate(plan_batches(records, batch_tokens)):
            keys = [record_key(r, with_extra=keep_input) for r in batch]
            indices.append(index)
            if not store.is_done(index, keys):
                results = score_batch(batch, get_backend(), config)
                errors = [r for r in results if isinstance(r, ScoreError)]
                rows = [r for r in results if not isinstance(r, ScoreError)]
                rows = with_input(rows, batch, fields) if keep_input else rows
                store.write_part(index, keys, rows, [e.row() for e in errors], retry=any(e.retry for e in errors))
            bar.update(len(batch))
    counts = store.finish(indices, write_results, errors_path(out), {"input": str(input_path), "records": total})
    return RunSummary(counts["rows"], counts["errors"], retry_batches=counts["retry_batches"])


def sample_file(
    questions: Sequence[Question],
    out: str | Path,
    backend: Backend | Callable[[], Backend],
    sampling: SamplingConfig,
    *,
    fewshot: Sequence[FewShot] = (),
    extract: Sequence[str] = ("boxed",),
    matcher: Any = None,
    settings: dict[str, Any] | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> RunSummary:
    """Sample and grade answers to ``questions`` into ``out``, resumably.

    One part per sampler batch (``batch_size // n`` questions), seeded by its batch index
    as in an uninterrupted run, so a resumed run writes exactly the same samples.
    """
    from eas.study import grade_samples, sample_questions

    out = Path(out)
    check_output_path(out)
    all_settings = {
        "sampling": asdict(sampling),
        "fewshot": fingerprint([(s.question.text(), s.solution) for s in fewshot]),
        "extract": list(extract),
        **(settings or {}),
    }
    store = PartStore(out, all_settings, overwrite).open()
    if store.complete:
        man = read_manifest(out)
        return RunSummary(man.get("rows", 0), man.get("errors", 0), already_complete=True)
    made: list[Backend] = []
    per_batch = max(1, sampling.batch_size // sampling.n)
    indices = []
    with progress_bar(progress, len(questions), desc="sampling") as bar:
        for b, start in enumerate(range(0, len(questions), per_batch)):
            group = list(questions[start : start + per_batch])
            keys = [(q.id, fingerprint([q.question, q.answer, q.choices])) for q in group]
            indices.append(b)
            if not store.is_done(b, keys):
                if not made:
                    made.append(backend() if callable(backend) and not hasattr(backend, "measure") else backend)
                rows = sample_questions(group, made[0], sampling, fewshot, first_batch=b)
                store.write_part(b, keys, grade_samples(group, rows, extract, matcher), [])
            bar.update(len(group))
    counts = store.finish(indices, write_results, errors_path(out), {"questions": len(questions)})
    return RunSummary(counts["rows"], counts["errors"])
