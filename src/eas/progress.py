"""Progress bars for long work (tqdm), or a stand-in that does nothing when they are off."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def progress_bar(enabled: bool, total: int | None, initial: int = 0, desc: str = "scoring") -> Iterator[Any]:
    """A tqdm bar over records, or a stand-in that does nothing when disabled."""
    if not enabled:
        yield _NoBar()
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, initial=initial, unit="rec", desc=desc, dynamic_ncols=True)
    try:
        yield bar
    finally:
        bar.close()


class _NoBar:
    def update(self, n: int) -> None:
        pass
