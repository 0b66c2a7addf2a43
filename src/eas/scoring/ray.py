"""Ray engine: the batches of a run scored by a pool of model actors (``--engine ray``).

The driver does what a local run does (``eas.scoring.runs.score_file``): it reads the
input, plans the same batches, skips those already stored in the run's parts and writes
each finished batch as a part; only the scoring of a batch happens elsewhere, on one of
``workers`` actors, each holding one backend (one model, ``gpus_per_worker`` GPUs, or one
HTTP client pool for the openai backend). So a Ray run is resumable, refuses other
settings and writes the same rows as a local run with the same batches.

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

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from eas.config import EASConfig
from eas.records import Record, RecordError
from eas.scoring.score import ScoreError

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
    """A Ray actor: one backend, scores whole batches as a local run does."""

    def __init__(self, backend_kwargs: dict[str, Any], config: EASConfig):
        from eas.backends.load import load_backend

        self.backend = load_backend(**backend_kwargs)
        self.config = config

    def score(self, index: int, batch: Batch) -> tuple[int, Scored]:
        from eas.scoring.score import score_batch

        return index, score_batch(batch, self.backend, self.config)


def score_batches(
    batches: Iterable[tuple[int, Batch]],
    backend_kwargs: dict[str, Any],
    config: EASConfig,
    options: RayOptions,
    *,
    scorer: type = BatchScorer,
) -> Iterator[tuple[int, Scored]]:
    """``(index, results)`` of every ``(index, batch)``, in the order they finish.

    Args:
        batches: numbered batches; read lazily, ``2 * workers`` at most in flight.
        backend_kwargs: keyword arguments of ``eas.backends.load.load_backend``; each
            actor loads its own backend with them (they must pickle).
        config: the metric's settings.
        options: workers, cluster address, resources per actor.
        scorer: the actor class (its ``score(index, batch)`` returns ``(index, results)``).

    Raises:
        EngineError: an actor failed (e.g. it could not load the model).
    """
    ray = _require_ray()
    options = cluster_placement(options)
    remote = ray.remote(num_cpus=options.cpus_per_worker, num_gpus=options.gpus_per_worker)(scorer)
    actors = [remote.remote(backend_kwargs, config) for _ in range(options.workers)]
    free = [a for a in actors for _ in range(2)]  # two batches queued per actor keep it busy
    running: dict[Any, Any] = {}  # ObjectRef -> actor
    todo = iter(batches)
    try:
        while True:
            while free:
                item = next(todo, None)
                if item is None:
                    break
                actor = free.pop(0)
                running[actor.score.remote(*item)] = actor
            if not running:
                return
            done, _ = ray.wait(list(running), num_returns=1)
            actor = running.pop(done[0])
            free.append(actor)
            try:
                yield ray.get(done[0])
            except ray.exceptions.RayError as exc:
                raise EngineError(f"the ray engine failed: {_cause(exc)}") from None
    finally:
        for a in actors:
            ray.kill(a)


def _cause(exc: BaseException) -> str:
    """The innermost error's one-line message (Ray wraps the actor's error)."""
    while getattr(exc, "cause", None) is not None and exc.cause is not exc:
        exc = exc.cause
    lines = [x for x in str(exc).strip().splitlines() if x.strip()]
    return lines[-1] if lines else type(exc).__name__


def score_with_ray(
    records: Iterable[Record | RecordError],
    backend_kwargs: dict[str, Any],
    config: EASConfig | None = None,
    options: RayOptions | None = None,
) -> Iterator[dict[str, Any] | ScoreError]:
    """Score records on Ray; yields what ``score_records`` would, in input order.

    Records go in batches of ``options.batch_records``; finished batches wait in memory
    until every earlier one is done. For files, ``score_file(..., ray=options)`` is the
    resumable way.
    """
    options = options or RayOptions()
    batches = _chunks(records, options.batch_records)
    yield from in_input_order(score_batches(batches, backend_kwargs, config or EASConfig(), options))


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
