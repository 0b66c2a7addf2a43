"""Ray engine: the batches of a run scored by a pool of model actors (``--engine ray``).

The driver does what a local run does (``eas.scoring.runs.score_file``): it reads the
input, plans the same batches, skips those already stored in the run's parts and writes
each finished batch as a part; only the scoring of a batch happens elsewhere, on one of
``workers`` actors, each holding one backend loaded from the picklable ``BackendSpec``
(one model, ``gpus_per_worker`` GPUs, or one HTTP client pool for the openai backend)
and the picklable estimator. Any estimator runs: one that must be prepared (``auto``
calibrates a head) is prepared on one actor and handed to the others. So a Ray run is
resumable, refuses other settings and writes the same rows as a local run with the
same batches.

Placement (``placement``): on a cluster with GPUs, by default one actor per GPU
(``num_gpus=1``; Ray gives each its own device, and each backend sizes its probe chunks
from its own GPU's free memory); without GPUs, two CPU actors.

At most ``2 * workers`` batches are in flight, so the driver holds only those in memory
besides the input's ids. Batches finish in any order; parts are numbered by batch, so
the output keeps the input order.

Numbers can differ from a local run only by float rounding where torch uses another
number of threads (one per actor by default).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eas.config import EASConfig
from eas.records import Record, RecordError
from eas.scoring.batches import ScoreError

if TYPE_CHECKING:
    from eas.backends.spec import BackendSpec
    from eas.scoring.estimators.base import Estimator

Batch = list[Record | RecordError]
Scored = list[dict[str, Any] | ScoreError]


class EngineError(RuntimeError):
    """The Ray run failed as a whole (e.g. an actor could not load the model)."""


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide to run.

    Attributes:
        workers: scoring actors (one backend each); None: one per GPU of the cluster
            (``gpus_per_worker`` each), or ``CPU_WORKERS`` without GPUs.
        address: an existing cluster (``ray://head:10001`` or ``auto``); None starts a
            local Ray instance (unless one is already initialised in this process).
        gpus_per_worker: GPUs reserved per actor (0: CPU); None: 1 on a cluster with
            GPUs, else 0.
        cpus_per_worker: CPUs reserved per actor.
        batch_records: records per batch for ``score_with_ray`` (``score_file`` plans
            its batches by tokens, as a local run does).
    """

    workers: int | None = None
    address: str | None = None
    gpus_per_worker: float | None = None
    cpus_per_worker: float = 1.0
    batch_records: int = 8

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise ValueError("workers must be >= 1")
        if (self.gpus_per_worker is not None and self.gpus_per_worker < 0) or self.cpus_per_worker < 0:
            raise ValueError("gpus_per_worker and cpus_per_worker must be >= 0")
        if self.batch_records < 1:
            raise ValueError("batch_records must be >= 1")


CPU_WORKERS = 2


def placement(options: RayOptions, resources: Mapping[str, float]) -> RayOptions:
    """``options`` with ``workers`` and ``gpus_per_worker`` decided for a cluster's resources
    (``ray.cluster_resources()``): one actor per GPU (``gpus_per_worker`` each) when it has
    GPUs, ``CPU_WORKERS`` CPU actors otherwise; what was given explicitly is kept."""
    gpus = float(resources.get("GPU", 0.0))
    per_worker = options.gpus_per_worker
    if per_worker is None:
        per_worker = 1.0 if gpus >= 1 else 0.0
    workers = options.workers
    if workers is None:
        workers = max(1, int(gpus // per_worker)) if per_worker > 0 else CPU_WORKERS
    return replace(options, workers=workers, gpus_per_worker=per_worker)


def cluster_placement(options: RayOptions) -> RayOptions:
    """``placement`` on the cluster of ``options`` (connecting to it, or starting local Ray)."""
    ray = _require_ray()
    init_ray(options)
    return placement(options, ray.cluster_resources())


def _require_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ImportError("the ray engine needs Ray: pip install 'eas[ray]'") from exc
    return ray


def _local_runtime_env() -> dict[str, Any]:
    """Local workers import the same ``eas`` as this driver (e.g. a source checkout)."""
    src = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH", "")) if p)
    return {"env_vars": {"PYTHONPATH": path}}


def init_ray(options: RayOptions) -> None:
    """Connect to ``options.address``, or start local Ray, unless already connected."""
    ray = _require_ray()
    if ray.is_initialized():
        return
    if options.address:
        ray.init(address=options.address)
    else:
        ray.init(runtime_env=_local_runtime_env(), include_dashboard=False)


class BatchScorer:
    """A Ray actor: one backend (loaded from the spec) and the run's estimator; scores whole batches."""

    def __init__(self, spec: BackendSpec, estimator: Estimator):
        from eas.backends.hf.heap import claim_for_scoring

        claim_for_scoring()  # the actor's process exists to score (eas.backends.hf.heap)
        self.backend = spec.load()
        self.estimator = estimator
        estimator.check(self.backend)

    def prepare(self, records: list[Record]) -> Estimator:
        """The estimator prepared on these records (``auto``: calibrated), kept for scoring."""
        self.estimator = self.estimator.prepare(records, self.backend)
        return self.estimator

    def use(self, estimator: Estimator) -> None:
        estimator.check(self.backend)
        self.estimator = estimator

    def describe(self) -> dict[str, Any]:
        return self.backend.describe()

    def close(self) -> None:
        self.backend.close()

    def score(self, index: int, batch: Batch) -> tuple[int, Scored]:
        return index, self.estimator.score_batch(batch, self.backend)


class ActorPool:
    """``options.workers`` scoring actors, each with its own backend and the same estimator."""

    def __init__(self, spec: Any, estimator: Any, options: RayOptions, scorer: type = BatchScorer):
        self.ray = _require_ray()
        options = cluster_placement(options)
        remote = self.ray.remote(num_cpus=options.cpus_per_worker, num_gpus=options.gpus_per_worker)(scorer)
        self.actors = [remote.remote(spec, estimator) for _ in range(options.workers)]

    def get(self, refs: Any) -> Any:
        try:
            return self.ray.get(refs)
        except self.ray.exceptions.RayError as exc:
            raise EngineError(f"the ray engine failed: {_cause(exc)}") from None

    def run(self, batches: Iterable[tuple[int, Batch]]) -> Iterator[tuple[int, Scored]]:
        """``(index, results)`` of every batch, in the order they finish; ``2 * workers`` at most in flight."""
        free = [a for a in self.actors for _ in range(2)]  # two batches queued per actor keep it busy
        running: dict[Any, Any] = {}  # ObjectRef -> actor
        todo = iter(batches)
        while True:
            while free:
                item = next(todo, None)
                if item is None:
                    break
                actor = free.pop(0)
                running[actor.score.remote(*item)] = actor
            if not running:
                return
            done, _ = self.ray.wait(list(running), num_returns=1)
            free.append(running.pop(done[0]))
            yield self.get(done[0])

    def kill(self) -> None:
        """Close every actor's backend (a server backend's connections), then end the actors."""
        closing = [a.close.remote() for a in self.actors if hasattr(a, "close")]
        with contextlib.suppress(Exception):  # an actor that already failed has nothing to close
            self.ray.get(closing, timeout=30)
        for a in self.actors:
            self.ray.kill(a)


class RayEngine:
    """``eas.scoring.runs``' engine on Ray: the actors are started on first use (a finished run starts none)."""

    def __init__(self, spec: Any, options: RayOptions):
        from eas.backends.spec import BackendSpec

        if not isinstance(spec, BackendSpec):
            raise ValueError("the ray engine loads a backend in every actor: give it a BackendSpec")
        self.spec, self.options = spec, options
        self.pool: ActorPool | None = None

    def _actors(self, estimator: Estimator) -> ActorPool:
        if self.pool is None:
            self.pool = ActorPool(self.spec, estimator, self.options)
        return self.pool

    def prepare(self, estimator: Estimator, records: list[Record]) -> Estimator:
        """Prepared on one actor (``auto`` calibrates there), then handed to every actor."""
        pool = self._actors(estimator)
        ready = pool.get(pool.actors[0].prepare.remote(records))
        pool.get([a.use.remote(ready) for a in pool.actors[1:]])
        return ready

    def score(self, batches: Iterable[tuple[int, Batch]], estimator: Estimator) -> Iterator[tuple[int, Scored]]:
        yield from self._actors(estimator).run(batches)

    def describe(self) -> dict[str, Any] | None:
        return None if self.pool is None else self.pool.get(self.pool.actors[0].describe.remote())

    def close(self) -> None:
        if self.pool is not None:
            self.pool.kill()


def score_batches(
    batches: Iterable[tuple[int, Batch]],
    spec: Any,
    estimator: Any,
    options: RayOptions,
    *,
    scorer: type = BatchScorer,
) -> Iterator[tuple[int, Scored]]:
    """``(index, results)`` of every ``(index, batch)``, in the order they finish.

    Args:
        batches: numbered batches; read lazily, ``2 * workers`` at most in flight.
        spec: the ``BackendSpec`` each actor loads its backend with.
        estimator: the (prepared) estimator each actor scores with.
        options: workers, cluster address, resources per actor.
        scorer: the actor class: ``scorer(spec, estimator)``, whose ``score(index, batch)``
            returns ``(index, results)``.

    Raises:
        EngineError: an actor failed (e.g. it could not load the model).
    """
    pool = ActorPool(spec, estimator, options, scorer)
    try:
        yield from pool.run(batches)
    finally:
        pool.kill()


def _cause(exc: BaseException) -> str:
    """The innermost error's one-line message (Ray wraps the actor's error)."""
    while getattr(exc, "cause", None) is not None and exc.cause is not exc:
        exc = exc.cause
    lines = [x for x in str(exc).strip().splitlines() if x.strip()]
    return lines[-1] if lines else type(exc).__name__


def score_with_ray(
    records: Iterable[Record | RecordError],
    spec: BackendSpec,
    estimator: Estimator | EASConfig | None = None,
    options: RayOptions | None = None,
) -> Iterator[dict[str, Any] | ScoreError]:
    """Score records on Ray; yields what ``score_records`` would, in input order.

    Records go in batches of ``options.batch_records``; finished batches wait in memory
    until every earlier one is done. An estimator that must be prepared (``auto``) is
    refused here: ``score_file(..., RunOptions(ray=options))`` is the resumable way, and
    runs every estimator.
    """
    from eas.scoring.estimators.exact import as_estimator

    options = options or RayOptions()
    estimator = as_estimator(estimator)
    if estimator.pool_dependent:
        raise ValueError(f"{estimator.label()} needs the whole pool first: use score_file with RunOptions(ray=...)")
    batches = _chunks(records, options.batch_records)
    yield from in_input_order(score_batches(batches, spec, estimator, options))


def in_input_order(finished: Iterator[tuple[int, Sequence[Any]]]) -> Iterator[Any]:
    """The items of batches ``0, 1, 2, ...`` in that order, from batches that finish in any order."""
    waiting: dict[int, Sequence[Any]] = {}
    next_index = 0
    for index, items in finished:
        waiting[index] = items
        while next_index in waiting:
            yield from waiting.pop(next_index)
            next_index += 1


def _chunks(records: Iterable[Record | RecordError], size: int) -> Iterator[tuple[int, Batch]]:
    batch: Batch = []
    index = 0
    for rec in records:
        batch.append(rec)
        if len(batch) == size:
            yield index, batch
            batch, index = [], index + 1
    if batch:
        yield index, batch
