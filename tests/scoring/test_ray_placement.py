"""Ray placement: one actor per GPU (``num_gpus=1``) when the cluster has GPUs, CPU actors otherwise."""

import pytest

from eas.config import EASConfig
from eas.scoring.ray import CPU_WORKERS, RayOptions, placement


@pytest.mark.parametrize(
    ("options", "resources", "workers", "gpus"),
    [
        (RayOptions(), {"CPU": 16.0}, CPU_WORKERS, 0.0),
        (RayOptions(), {"CPU": 64.0, "GPU": 8.0}, 8, 1.0),
        (RayOptions(gpus_per_worker=2), {"GPU": 8.0}, 4, 2.0),
        (RayOptions(workers=3), {"GPU": 8.0}, 3, 1.0),
        (RayOptions(gpus_per_worker=0), {"GPU": 8.0}, CPU_WORKERS, 0.0),
        (RayOptions(gpus_per_worker=0.5), {"GPU": 1.0}, 2, 0.5),
        (RayOptions(workers=5, gpus_per_worker=0), {}, 5, 0.0),
    ],
)
def test_placement(options, resources, workers, gpus):
    placed = placement(options, resources)
    assert (placed.workers, placed.gpus_per_worker) == (workers, gpus)
    assert placed.address == options.address and placed.cpus_per_worker == options.cpus_per_worker


@pytest.mark.ray
def test_one_actor_per_gpu_on_a_cluster_with_gpus():
    """Local Ray declaring two GPUs (CPU actors: Ray only hands out the ids): each actor holds one."""
    ray = pytest.importorskip("ray")
    from eas.scoring.ray import _local_runtime_env, score_batches

    class GpuIds:  # defined here, so Ray ships it by value to the actors
        def __init__(self, backend_kwargs, config):
            import os
            import time

            time.sleep(1.0)  # both actors start before the batches run out
            self.who = (os.getpid(), tuple(ray.get_gpu_ids()))

        def score(self, index, batch):
            return index, [self.who]

    ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, runtime_env=_local_runtime_env(), log_to_driver=False)
    try:
        done = list(score_batches(((i, [i]) for i in range(6)), {}, EASConfig(), RayOptions(), scorer=GpuIds))
    finally:
        ray.shutdown()
    actors = {who for _, results in done for who in results}
    assert len(actors) == 2
    assert sorted(len(ids) for _, ids in actors) == [1, 1] and len({ids for _, ids in actors}) == 2
