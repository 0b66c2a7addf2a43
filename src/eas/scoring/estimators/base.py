"""The Estimator: how a batch of records becomes rows, as one object the run loop plugs in.

An estimator (exact EAS, stratified probing, an amortised head, ``auto`` calibration) is
a frozen, picklable object holding its settings. The run loop (``eas.scoring.runs``)
and the engines (local, Ray) only call the methods below, so they never branch on
which estimator runs:

* ``settings()`` enters the run's identity: a resumed run with other settings is refused;
* ``requires``: the optional backend capabilities it needs (``"features"``);
* ``check(backend)``: refuse a backend it cannot use (a head made for another model);
* ``plan(pool)`` and ``prepare(records, backend)``: work before scoring (``auto``
  calibrates a head on a slice of the pool); ``plan`` sees the input only, so the Ray
  driver can run it and ship the chosen records to an actor for ``prepare``;
* ``score_batch(batch, backend)``: one result row or ``ScoreError`` per record, in order.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from eas.backends.base import CAPABILITIES, Backend
from eas.config import EASConfig
from eas.records import Record, RecordError
from eas.scoring.batches import ScoreError

Batch = Sequence[Record | RecordError]
Result = dict[str, Any] | ScoreError


@dataclass(frozen=True)
class Pool:
    """The records of a run, readable again (``iter`` reads them afresh); ``size``: how many are
    readable ``Record``s (after ``--dedupe``)."""

    read: Any  # Callable[[], Iterator[Record | RecordError]]
    size: int

    def __iter__(self) -> Iterator[Record | RecordError]:
        return iter(self.read())

    def __len__(self) -> int:
        return self.size

    @classmethod
    def of(cls, records: Iterable[Record | RecordError]) -> Pool:
        """A pool held in memory."""
        held = list(records)
        return cls(lambda: iter(held), sum(isinstance(r, Record) for r in held))


class Estimator(ABC):
    """How records become rows; subclasses are frozen dataclasses (they travel to Ray actors)."""

    # Optional backend capabilities this estimator needs (keys of ``eas.backends.base.CAPABILITIES``).
    requires: ClassVar[frozenset[str]] = frozenset()
    # True when a row depends on the whole pool (not on its record alone): the input's
    # identity then enters the settings, and a grown input is scored afresh.
    pool_dependent: ClassVar[bool] = False
    config: EASConfig

    @abstractmethod
    def settings(self) -> dict[str, Any]:
        """Everything of this estimator that decides the numbers (JSON-able)."""

    def label(self) -> str:
        """A few words for people: how the figures were obtained."""
        return str(self.settings().get("method"))

    def warnings(self) -> list[str]:
        """What a person must know about the figures this (ready) estimator gives, one line
        each (e.g. a head that does not rank); the run logs them and keeps them in its manifest."""
        return []

    def check(self, backend: Backend) -> None:  # noqa: B027 - most estimators take any backend
        """Refuse (``InputError`` / ``ValueError``) a loaded backend this estimator cannot use."""

    def plan(self, pool: Pool) -> tuple[Estimator, list[Record]]:
        """Before scoring ``pool``: the estimator to use and the records ``prepare`` must
        measure first (an empty list: it is ready). Reads the input, never a model."""
        return self, []

    def prepare(self, records: Sequence[Record], backend: Backend) -> Estimator:
        """The estimator ready to score, after measuring ``records`` (see ``plan``)."""
        return self

    @abstractmethod
    def score_batch(self, batch: Batch, backend: Backend) -> list[Result]:
        """One planned batch: a result row or ``ScoreError`` per record, in order."""


def check_requires(estimator: Estimator, available: frozenset[str], where: str) -> None:
    """``ValueError`` when ``where`` lacks a capability the estimator needs."""
    missing = sorted(estimator.requires - available)
    if missing:
        needs = "; ".join(CAPABILITIES.get(m, m) for m in missing)
        raise ValueError(f"{estimator.label()} needs {needs}; {where} does not give it")
