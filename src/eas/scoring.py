"""Score records: records -> encoded probes -> backend measurements -> per-record figures.

This is the library's main entry point (``eas.score_records``). It owns the batching
policy (short records are grouped up to ``EngineConfig.batch_tokens`` tokens so the
backend can pack them) and turns each failure into a ``ScoreError`` with a one-line
reason instead of stopping the run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from eas.backends.base import Backend, Measurement
from eas.config import EASConfig, EngineConfig
from eas.metrics import record_figures
from eas.probes import EncodedRecord, encode_record
from eas.records import Record, RecordError

log = logging.getLogger(__name__)

RESULT_COLUMNS = (
    "id",
    "eas",
    "mean_eas",
    "n_probes",
    "answer_end_token",
    "response_tokens",
    "ppl",
    "mean_token_entropy",
    "max_seq_logprob",
    "hes",
    "final_entropy",
)


@dataclass(frozen=True)
class ScoreError:
    """A record that was not scored, and why."""

    id: Any
    reason: str

    def row(self) -> dict[str, Any]:
        return {"id": self.id, "error": self.reason}


def load_backend(
    model: str = "embedded",
    *,
    device: str = "auto",
    dtype: str = "auto",
    trust_remote_code: bool = False,
    engine: EngineConfig | None = None,
) -> Backend:
    """The in-process transformers backend for ``model`` (``"embedded"``, a path or an id)."""
    from eas.backends.hf import HFBackend

    return HFBackend.from_pretrained(
        model, device=device, dtype=dtype, trust_remote_code=trust_remote_code, engine=engine
    )


def result_row(enc: EncodedRecord, m: Measurement, config: EASConfig) -> dict[str, Any]:
    """Output row of one scored record (RESULT_COLUMNS, + trajectory, option_probs if asked)."""
    figures = record_figures(m.probe_entropies, m.token_logprobs, m.token_entropies, config.hes_fraction)
    row = {
        "id": enc.record.id,
        **figures,
        "answer_end_token": enc.answer_end,
        "response_tokens": len(enc.response_ids),
    }
    row = {c: row[c] for c in RESULT_COLUMNS}
    if config.trajectory:
        row["trajectory"] = [float(h) for h in m.probe_entropies]
    if config.track_tokens:
        probs = m.probe_token_probs  # (T-1, K), or None from a backend that cannot track tokens
        row["option_probs"] = (
            None if probs is None else {s: [float(p) for p in probs[:, j]] for j, s in enumerate(config.track_tokens)}
        )
    return row


def _batches(encoded: Iterable[EncodedRecord | ScoreError], batch_tokens: int) -> Iterator[list[Any]]:
    """Consecutive runs of encoded records whose total length stays within batch_tokens.

    Errors pass through as one-element lists so the output order equals the input order.
    """
    batch: list[EncodedRecord] = []
    size = 0
    for item in encoded:
        if isinstance(item, ScoreError):
            if batch:
                yield batch
                batch, size = [], 0
            yield [item]
            continue
        n = item.context_length + item.n_probes * len(item.suffix_ids)
        if batch and size + n > batch_tokens:
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += n
    if batch:
        yield batch


def _measure(backend: Backend, batch: Sequence[EncodedRecord]) -> list[Measurement | ScoreError]:
    """Measure a batch; if it fails as a whole (e.g. out of memory), retry record by record."""
    try:
        return list(backend.measure(batch))
    except (RuntimeError, ValueError, MemoryError) as exc:
        if len(batch) == 1:
            log.warning("record %r failed in the backend: %s", batch[0].record.id, exc)
            return [ScoreError(batch[0].record.id, f"backend error: {str(exc).splitlines()[0]}")]
        log.warning("a batch of %d records failed (%s); scoring them one by one", len(batch), exc)
        return [r for enc in batch for r in _measure(backend, [enc])]


def score_records(
    records: Iterable[Record | RecordError],
    backend: Backend,
    config: EASConfig | None = None,
    *,
    batch_tokens: int | None = None,
    progress: bool = False,
    total: int | None = None,
) -> Iterator[dict[str, Any] | ScoreError]:
    """Score records with a backend, yielding a result row or a ``ScoreError`` per record.

    Args:
        records: ``Record`` objects; a ``RecordError`` in the stream (e.g. a row the reader
            could not parse) is passed through as a ``ScoreError``.
        backend: from ``load_backend`` or any ``Backend``.
        config: the metric's settings (trigger, answer prefix, end, ...).
        batch_tokens: group short records up to this many tokens (default: the
            backend's engine setting, else 2048).
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
    config = config or EASConfig()
    if batch_tokens is None:
        batch_tokens = getattr(getattr(backend, "engine", None), "batch_tokens", 2048)

    def encoded() -> Iterator[EncodedRecord | ScoreError]:
        for rec in records:
            if isinstance(rec, RecordError):
                yield ScoreError(rec.record_id, rec.reason)
                continue
            try:
                yield encode_record(backend.tokenizer, rec, config, backend.max_context)
            except RecordError as exc:
                yield ScoreError(rec.id, exc.reason)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, unit="rec", desc="scoring", dynamic_ncols=True)
    try:
        for batch in _batches(encoded(), batch_tokens):
            if isinstance(batch[0], ScoreError):
                results: list[Any] = batch
            else:
                measured = _measure(backend, batch)
                results = [
                    m if isinstance(m, ScoreError) else result_row(e, m, config)
                    for e, m in zip(batch, measured, strict=True)
                ]
            yield from results
            if bar is not None:
                bar.update(len(results))
    finally:
        if bar is not None:
            bar.close()
