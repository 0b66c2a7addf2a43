"""Progress bars for long work: tqdm on a terminal, plain periodic lines elsewhere.

When stderr is not a terminal (a log file, a pipe, a CI job), a redrawn bar would fill
it with carriage returns and cursor codes; there ``progress_bar`` writes one plain line
every ``PLAIN_INTERVAL_S`` seconds and a last one when the work ends.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

PLAIN_INTERVAL_S = 30.0


@contextmanager
def progress_bar(
    enabled: bool, total: int | None, initial: int = 0, desc: str = "scoring", unit: str = "rec"
) -> Iterator[Any]:
    """A bar over ``total`` items (``update(n)``), or a stand-in that does nothing when disabled."""
    bar = open_bar(total, initial, desc, unit) if enabled else _NoBar()
    try:
        yield bar
    finally:
        bar.close()


def open_bar(total: int | None, initial: int = 0, desc: str = "scoring", unit: str = "rec") -> Any:
    """A bar to ``update(n)`` and ``close()``: tqdm when stderr is a terminal, else a ``PlainBar``."""
    if not _is_terminal(sys.stderr):
        return PlainBar(sys.stderr, total, initial, desc, unit)
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit=unit, desc=desc, dynamic_ncols=True)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class PlainBar:
    """Progress as plain lines (``scoring: 40/100 rec (40%), 2.1 rec/s, 29 s left``), at most one
    per ``interval_s`` and one at the end; nothing but text and newlines."""

    def __init__(
        self,
        stream: TextIO,
        total: int | None,
        initial: int = 0,
        desc: str = "scoring",
        unit: str = "rec",
        interval_s: float = PLAIN_INTERVAL_S,
    ) -> None:
        self.stream, self.total, self.n, self.desc, self.unit = stream, total, initial, desc, unit
        self.interval_s = interval_s
        self.started = self.last = time.monotonic()
        self.initial = initial

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.total is not None and self.n >= self.total:
            return  # the end: close() writes the last line
        now = time.monotonic()
        if now - self.last >= self.interval_s:
            self.last = now
            self._write(now)

    def close(self) -> None:
        self._write(time.monotonic(), done=True)

    def _write(self, now: float, done: bool = False) -> None:
        elapsed = now - self.started
        rate = (self.n - self.initial) / elapsed if elapsed > 0 else 0.0
        text = f"{self.desc}: {self.n}"
        if self.total:
            text += f"/{self.total} {self.unit} ({100 * self.n / self.total:.0f}%)"
        else:
            text += f" {self.unit}"
        text += f", {rate:.2f} {self.unit}/s"
        if done:
            text += f", {elapsed:.0f} s"
        elif self.total and rate > 0:
            text += f", {(self.total - self.n) / rate:.0f} s left"
        self.stream.write(text + "\n")
        self.stream.flush()


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass
