"""Only a failure another try may pass is retried: out of memory, a server fault; never a
record whose logits are not finite (it would be recomputed on every rerun, forever)."""

from __future__ import annotations

import pytest
from support import arithmetic_records, backend, write_jsonl

from eas.backends.base import NonFiniteLogitsError
from eas.backends.openai.client import ServerError
from eas.backends.spec import LoadedBackend
from eas.config import EASConfig
from eas.records import Record
from eas.scoring.batches import ScoreError
from eas.scoring.runs import RunOptions, score_file, score_records


class _Fails:
    """The tiny backend, except that a record whose response holds ``word`` raises ``exc``."""

    def __init__(self, inner, word, exc):
        self.inner, self.word, self.exc, self.calls = inner, word, exc, 0
        self.tokenizer, self.max_context = inner.tokenizer, inner.max_context

    def describe(self):
        return self.inner.describe()

    def measure(self, batch):
        self.calls += 1
        if any(self.word in e.record.response for e in batch):
            raise self.exc
        return self.inner.measure(batch)


def _oom():
    import torch

    return torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


@pytest.mark.parametrize(
    ("exc", "retry"),
    [
        (NonFiniteLogitsError("non-finite logits at probe t=3"), False),
        (ValueError("a bug in the record's layout"), False),
        (_oom(), True),
        (RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 8 GB"), True),
        (MemoryError(), True),
        (ServerError("gave up after 6 attempts; last: HTTP 503: Loading model", 503), True),
        (ServerError("gave up after 6 attempts; last: timed out", None), True),
        (ServerError("no usable log-probs after 6 answers", 200), True),
        (ServerError("HTTP 400: prompt is too long", 400), False),
    ],
)
def test_only_resource_and_server_faults_are_retried(tiny_model, tokenizer, exc, retry):
    rec = Record("x", "What is 2+3?", r"2 + 3 = 5, so \boxed{5}.")
    (err,) = score_records([rec], _Fails(backend(tiny_model, tokenizer), "5", exc))
    assert isinstance(err, ScoreError) and err.retry is retry


def test_a_non_finite_record_is_final_and_the_parts_are_cleaned_up(tmp_path, tiny_model, tokenizer):
    rows = arithmetic_records(6)
    rows[2]["response"] += " NaN here."
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "scored.jsonl"
    failing = _Fails(backend(tiny_model, tokenizer), "NaN here", NonFiniteLogitsError("non-finite logits at probe t=2"))
    summary = score_file(src, out, LoadedBackend(failing), EASConfig(), RunOptions(batch_tokens=100))
    assert (summary.rows, summary.errors, summary.retry_batches) == (5, 1, 0)
    assert not out.with_name(out.name + ".parts").exists()  # nothing left to retry
    calls = failing.calls
    again = score_file(src, out, LoadedBackend(failing), EASConfig(), RunOptions(batch_tokens=100))
    assert again.already_complete and failing.calls == calls  # not recomputed on the rerun
