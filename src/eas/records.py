"""The record a user scores, and the errors that keep bad input from stopping a run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class RecordError(ValueError):
    """A record that cannot be scored; ``reason`` is the one-line explanation.

    The run goes on: the record is written to the errors file with its id.
    """

    def __init__(self, reason: str, record_id: Any = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.record_id = record_id


class InputError(Exception):
    """A file-level problem (bad path, unknown format, a mapped field that no row has).

    Nothing can be scored; the CLI exits with status 2 and this message.
    """


@dataclass(frozen=True)
class Record:
    """One reasoning trace: the question as asked, the model's response, optional answer.

    ``extra`` keeps every other field of the input row, unchanged.
    """

    id: Any
    prompt: str
    response: str
    answer: str | None = None
    extra: dict[str, Any] | None = None
