"""Select training data from a file: gather each strategy's scores, choose, write.

Scores come from, in order of preference:

* a column already in the input (an ``eas score`` output joined to the traces, say);
* a file written by ``eas score`` (``scores_path``), joined by id;
* a tokenizer (``length``: prompt + response tokens, the way ``eas score`` counts them);
* the model itself: ``eas``/``hes``/``mean-entropy`` score the given traces
  (teacher-forced, not regenerated); ``pass-rate`` samples k answers per question and
  grades them (``pass_rates``).

The chosen rows are written unchanged, plus ``selection_score`` and ``selection_rank``
(1 = first chosen), and a manifest beside them (``picked.jsonl.manifest.json``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eas.records import InputError, Record, RecordError
from eas.scoring.estimators.base import Estimator
from eas.scoring.estimators.exact import Exact
from eas.selection.strategies import SCORE_COLUMNS, STRATEGY_COLUMNS, Selection, quantiles, select
from eas.storage.files import field_names, read_table, write_results
from eas.storage.inputs import FieldMap, read_rows_and_records
from eas.storage.jsontext import dumps
from eas.storage.parts import manifest_path, write_atomic

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SelectRequest:
    """One selection: what to choose, from where, and how to score it."""

    strategy: str
    budget: int
    seed: int = 0
    fields: FieldMap = field(default_factory=FieldMap)
    scores_path: str | None = None
    model: str = "embedded"
    estimator: Estimator = field(default_factory=Exact)  # how --model scores the traces (exact, stride, a head)


def _column_scores(rows: Sequence[dict[str, Any] | None], column: str) -> list[float | None] | None:
    """Scores from an input column, if every readable row has it."""
    present = [r for r in rows if r is not None]
    if not present or not all(column in r for r in present):
        return None
    return [None if r is None or r.get(column) is None else float(r[column]) for r in rows]


def _joined_scores(records: Sequence[Record | RecordError], path: str, column: str) -> list[float | None]:
    scored = {str(r["id"]): r.get(column) for r in read_table(path)}
    if not scored:
        raise InputError(f"{path}: no rows")
    missing = sum(1 for rec in records if isinstance(rec, Record) and str(rec.id) not in scored)
    if missing:
        log.warning("%d records have no row in %s and cannot be chosen", missing, path)
    return [
        None if isinstance(rec, RecordError) or scored.get(str(rec.id)) is None else float(scored[str(rec.id)])
        for rec in records
    ]


def token_lengths(
    records: Sequence[Record | RecordError], tokenizer: Any, use_chat_template: bool
) -> list[float | None]:
    """Total tokens (prompt as rendered + response) per record, as ``eas score`` counts."""
    from eas.scoring.probes import prompt_token_ids

    out: list[float | None] = []
    for rec in records:
        if isinstance(rec, RecordError):
            out.append(None)
            continue
        prompt = prompt_token_ids(tokenizer, rec.prompt, use_chat_template)
        response = tokenizer(rec.response, add_special_tokens=False)["input_ids"]
        out.append(float(len(prompt) + len(response)))
    return out


def model_scores(
    records: Sequence[Record | RecordError], backend: Any, column: str, estimator: Estimator
) -> list[float | None]:
    """Score the traces with the student (teacher-forced) and read one column.

    ``estimator``: how (``eas.scoring.estimators``: exact, stratified, or a head's
    one-pass predictions); through the same run loop as ``eas score``.
    """
    from eas.scoring.batches import ScoreError
    from eas.scoring.runs import score_records

    rows = list(score_records(records, backend, estimator, progress=True, total=len(records)))
    return [None if isinstance(r, ScoreError) or r.get(column) is None else float(r[column]) for r in rows]


def gather_scores(
    request: SelectRequest,
    rows: Sequence[dict[str, Any] | None],
    records: Sequence[Record | RecordError],
    load_backend: Callable[[], Any],
    pass_rates: Callable[[Sequence[Record | RecordError]], list[float | None]] | None = None,
) -> tuple[list[float | None] | None, str]:
    """The strategy's score per record, and where it came from."""
    s = request.strategy
    if s == "random":
        return None, "seeded draw"
    column = STRATEGY_COLUMNS.get(s, s)
    from_column = _column_scores(rows, column)
    if from_column is not None:
        return from_column, f"input column {column!r}"
    if request.scores_path and s in SCORE_COLUMNS:
        return _joined_scores(records, request.scores_path, column), f"{request.scores_path}:{column}"
    if s == "length":
        backend = load_backend()
        return token_lengths(records, backend.tokenizer, request.estimator.config.use_chat_template), "tokenizer"
    if s == "pass-rate":
        if pass_rates is None:
            raise InputError("pass-rate selection needs sampling: give the input a 'pass_rate' column or a model")
        return pass_rates(records), f"sampled with {request.model}"
    label = request.estimator.label()
    scores = model_scores(records, load_backend(), column, request.estimator)
    return scores, f"scored with {request.model}" + ("" if label == "exact" else f" ({label})")


def select_file(
    input_path: str | Path,
    out: str | Path,
    request: SelectRequest,
    load_backend: Callable[[], Any],
    pass_rates: Callable[[Sequence[Record | RecordError]], list[float | None]] | None = None,
) -> dict[str, Any]:
    """Choose ``request.budget`` rows of ``input_path`` and write them to ``out``.

    Returns:
        The manifest written beside ``out``.
    """
    names = field_names(input_path)
    if names is not None and "eas" in names and not {request.fields.prompt, request.fields.response} <= names:
        raise InputError(
            f"{input_path} holds scores without the traces (an `eas score` output?): score with --keep-input, "
            f"or select from the traces with --scores {input_path}"
        )
    pairs = list(read_rows_and_records(input_path, request.fields))
    rows = [row for row, _ in pairs]
    records = [rec for _, rec in pairs]
    try:
        scores, source = gather_scores(request, rows, records, load_backend, pass_rates)
        chosen = select(request.strategy, scores, len(records), request.budget, request.seed)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    picked = [
        {**(rows[i] or {}), "selection_score": score, "selection_rank": rank + 1}
        for rank, (i, score) in enumerate(zip(chosen.indices, chosen.scores, strict=True))
    ]
    write_results(Path(out), lambda: iter([picked]))
    manifest = _manifest(request, input_path, scores, chosen, source, n_pool=len(records))
    write_atomic(manifest_path(Path(out)), [dumps(manifest, indent=1) + "\n"])
    if chosen.shortfall:
        log.warning(
            "only %d records were eligible for %s: chose %d, %d short of the budget",
            chosen.eligible,
            request.strategy,
            len(chosen.indices),
            chosen.shortfall,
        )
    return manifest


def _manifest(
    request: SelectRequest,
    input_path: str | Path,
    scores: Sequence[float | None] | None,
    chosen: Selection,
    source: str,
    n_pool: int,
) -> dict[str, Any]:
    pool_scores = [s for s in (scores or []) if s is not None]
    return {
        "strategy": request.strategy,
        "budget": request.budget,
        "seed": request.seed,
        "model": request.model,
        "input": str(input_path),
        "score_source": source,
        "pool": n_pool,
        "eligible": chosen.eligible,
        "chosen": len(chosen.indices),
        "shortfall": chosen.shortfall,
        "score_quantiles": {"pool": quantiles(pool_scores), "chosen": quantiles(chosen.scores)} if scores else {},
    }
