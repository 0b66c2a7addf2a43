"""The pieces every estimator and engine share: batches, encoding, record keys, result rows.

* ``plan_batches``: consecutive records grouped up to about ``batch_tokens`` tokens of
  work, from the input alone (a resumed run plans the same batches);
* ``encode_batch`` / ``measure``: records -> ``EncodedRecord`` -> backend measurements,
  each failure a ``ScoreError`` with a one-line reason instead of a stopped run;
* ``record_key``: how a resumed run recognises a record it has already scored;
* ``RESULT_COLUMNS`` / ``result_row``: the columns of an exact (or stratified) row.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from eas.backends.base import Backend, EncodedRecord, Measurement
from eas.config import EASConfig
from eas.maths.metrics import non_finite_fields, record_figures, topk_figures
from eas.maths.stratified import block_sizes
from eas.records import Record, RecordError
from eas.scoring.probes import encode_record
from eas.storage.inputs import FieldMap, input_row
from eas.storage.parts import Key, fingerprint

log = logging.getLogger(__name__)

RESULT_COLUMNS = (
    "id",
    "eas",
    "eas_se",
    "mean_eas",
    "n_probes",
    "probe_stride",
    "n_probes_run",
    "answer_end_token",
    "response_tokens",
    "ppl",
    "mean_token_entropy",
    "max_seq_logprob",
    "hes",
    "final_entropy",
)
# Added after RESULT_COLUMNS by top-K backends (servers): exact EAS lies in [eas, eas + eas_bound].
TOPK_COLUMNS = ("eas_bound", "min_topk_mass")


@dataclass(frozen=True)
class ScoreError:
    """A record that was not scored, and why.

    ``retry`` marks a failure that another try may not repeat (out of memory, a server
    fault: ``retryable``), not the record's own: a resumed run scores such records again.
    """

    id: Any
    reason: str
    retry: bool = False

    def row(self) -> dict[str, Any]:
        return {"id": self.id, "error": self.reason}


def finite_or_error(row: dict[str, Any]) -> dict[str, Any] | ScoreError:
    """``row``, or the ScoreError naming its non-finite figures (every path, exact and amortised)."""
    bad = non_finite_fields(row)
    if not bad:
        return row
    log.warning("record %r: non-finite %s; sent to the errors file", row.get("id"), ", ".join(bad))
    return ScoreError(row.get("id"), f"non-finite values in {', '.join(bad)} (the model's outputs are not finite)")


def result_row(enc: EncodedRecord, m: Measurement, config: EASConfig) -> dict[str, Any]:
    """Output row of one scored record: columns RESULT_COLUMNS, then TOPK_COLUMNS for
    top-K backends; with ``trajectory`` also the per-probe lists (``trajectory``, and for
    top-K backends ``trajectory_bound`` and ``trajectory_topk_mass``); with tracked tokens
    ``option_probs``. Under stratified probing (``enc.probe_subset``) the figures are
    estimates (``eas.maths.stratified``), the per-probe lists hold the probes run and
    ``trajectory_t`` their positions t. With ``trajectory`` also ``token_spans``: the
    ``[start, end)`` character span of each response token, for ``eas view``."""
    strided = enc.probe_subset is not None
    weights = np.asarray(block_sizes(enc.n_probes, config.probe_stride)) if strided else None
    if weights is not None and weights.size != len(m.probe_entropies):
        raise ValueError(f"{len(m.probe_entropies)} probe entropies measured for {weights.size} planned probes")
    figures = record_figures(
        m.probe_entropies, m.token_logprobs, m.token_entropies, config.hes_fraction, probe_weights=weights
    )
    row = {
        "id": enc.record.id,
        **figures,
        "probe_stride": config.probe_stride if strided else 1,
        "answer_end_token": enc.answer_end,
        "response_tokens": len(enc.response_ids),
    }
    row = {c: row[c] for c in RESULT_COLUMNS}
    topk = m.probe_bounds is not None and m.probe_topk_mass is not None
    if topk:
        row.update(topk_figures(m.probe_bounds, m.probe_topk_mass, weights))
    if config.trajectory:
        row["trajectory"] = [float(h) for h in m.probe_entropies]
        if strided:
            row["trajectory_t"] = list(enc.probe_positions)
        if topk:
            row["trajectory_bound"] = [float(b) for b in m.probe_bounds]
            row["trajectory_topk_mass"] = [float(x) for x in m.probe_topk_mass]
        row["token_spans"] = [list(span) for span in enc.response_offsets]
    if config.track_tokens:
        probs = m.probe_token_probs  # (probes run, K), or None from a backend that cannot track tokens
        row["option_probs"] = (
            None if probs is None else {s: [float(p) for p in probs[:, j]] for j, s in enumerate(config.track_tokens)}
        )
    return row


# Batches are planned from characters, not tokens, so that a resumed run can plan the
# same batches without tokenizing the records it skips (about 3.5 characters a token).
CHARS_PER_TOKEN = 3.5


def estimated_tokens(rec: Record | RecordError, suffix_tokens: int = 4) -> int:
    """Rough token count of the packed work for a record: context + probe suffixes."""
    if isinstance(rec, RecordError):
        return 0
    response = len(rec.response) / CHARS_PER_TOKEN
    return int((len(rec.prompt) / CHARS_PER_TOKEN) + response * (1 + suffix_tokens))


def plan_batches(records: Iterable[Record | RecordError], batch_tokens: int) -> Iterator[list[Record | RecordError]]:
    """Consecutive records grouped up to about ``batch_tokens`` tokens of work.

    Deterministic in the input alone: every run over the same input plans the same
    batches (a resumed run relies on it, and so do bit-identical results).
    """
    batch: list[Record | RecordError] = []
    size = 0
    for rec in records:
        n = estimated_tokens(rec)
        if batch and size + n > batch_tokens:
            yield batch
            batch, size = [], 0
        batch.append(rec)
        size += n
    if batch:
        yield batch


def retryable(exc: BaseException) -> bool:
    """Whether another try may pass: out of memory, or a server that did not answer well
    (its error says, ``retryable``); not non-finite logits or any other fault of the record."""
    if isinstance(exc, MemoryError | ConnectionError | TimeoutError):
        return True
    text = str(exc).lower()
    if isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text):
        return True  # torch.OutOfMemoryError (CUDA, MPS), the CPU allocator's failure
    return bool(getattr(exc, "retryable", False))


def measure(backend: Backend, batch: Sequence[EncodedRecord]) -> list[Measurement | ScoreError]:
    """Measure a batch; if it fails as a whole (e.g. out of memory), retry record by record."""
    try:
        return list(backend.measure(batch))
    except (RuntimeError, ValueError, MemoryError, OSError) as exc:
        if len(batch) == 1:
            log.warning("record %r failed in the backend: %s", batch[0].record.id, exc)
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return [ScoreError(batch[0].record.id, f"backend error: {reason}", retry=retryable(exc))]
        log.warning("a batch of %d records failed (%s); scoring them one by one", len(batch), exc)
        return [r for enc in batch for r in measure(backend, [enc])]


def encode_batch(
    batch: Sequence[Record | RecordError], backend: Backend, config: EASConfig
) -> list[EncodedRecord | ScoreError]:
    """Each record encoded for the backend, or the ScoreError saying why it cannot be."""
    out: list[EncodedRecord | ScoreError] = []
    for rec in batch:
        if isinstance(rec, RecordError):
            out.append(ScoreError(rec.record_id, rec.reason))
            continue
        try:
            out.append(encode_record(backend.tokenizer, rec, config, backend.max_context))
        except RecordError as exc:
            out.append(ScoreError(rec.id, exc.reason))
    return out


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
