"""Stratified probing: the positions drawn, the estimate and its standard error."""

import math

import numpy as np
import pytest

from eas.maths.metrics import record_figures
from eas.maths.stratified import block_sizes, probe_plan, record_seed, stratified_area, stratified_se


@pytest.mark.parametrize("n", [1, 2, 3, 9, 10, 17, 64, 1001])
@pytest.mark.parametrize("k", [1, 2, 3, 8, 16])
def test_one_position_per_block_and_the_last_always(n, k):
    plan = probe_plan(n, k, seed=record_seed("r", 0))
    assert plan == probe_plan(n, k, seed=record_seed("r", 0))  # deterministic
    assert sum(plan.weights) == n and plan.positions[-1] == n and plan.weights[-1] == 1
    assert len(plan.positions) == len(plan.weights) == (1 + math.ceil((n - 1) / k))
    start = 1
    for t, size in zip(plan.positions[:-1], plan.weights[:-1], strict=True):
        assert start <= t < start + size  # inside its own block: every block covered once
        start += size
    assert start == n  # the blocks tile 1 .. T-2, then T-1 alone


def test_stride_one_is_every_position():
    assert probe_plan(5, 1, seed=123).positions == (1, 2, 3, 4, 5)


def test_seed_and_record_id_change_the_draw():
    plans = {probe_plan(200, 8, record_seed(rid, s)).positions for rid in ("a", "b", 1, "1") for s in (0, 1)}
    assert len(plans) == 8


def test_each_offset_is_equally_likely():
    """Unbiasedness rests on a uniform draw inside each block: count over many seeds."""
    counts = np.zeros(4)
    for seed in range(4000):
        counts[probe_plan(6, 4, seed).positions[0] - 1] += 1  # block {1, 2, 3, 4}
    np.testing.assert_allclose(counts / 4000, 0.25, atol=0.03)


def test_block_sizes_hand_worked():
    assert block_sizes(10, 4) == [4, 4, 1, 1]
    assert block_sizes(11, 4) == [4, 4, 2, 1]
    assert block_sizes(9, 4) == [4, 4, 1]


def test_se_hand_worked():
    # y = (1, 3, 2) over blocks of (4, 4, 2): sigma^2 = ((3-1)^2 + (2-3)^2) / (2 * 2) = 1.25;
    # sum n (n - 1) = 12 + 12 + 2 = 26; se = sqrt(1.25 * 26) = sqrt(32.5).
    assert stratified_se([1.0, 3.0, 2.0], [4, 4, 2]) == pytest.approx(math.sqrt(32.5), rel=1e-12)
    # The certain last probe (weight 1) is outside the differences and adds nothing.
    total, se = stratified_area([1.0, 3.0, 2.0, 100.0], [4, 4, 2, 1])
    assert total == 4 + 12 + 4 + 100 and se == pytest.approx(math.sqrt(32.5))
    assert stratified_se([5.0], [3]) is None and stratified_se([5.0, 1.0], [1, 1]) == 0.0


def _trajectory(rng, n):
    """Spiky entropies around a slow trend, like the embedded model's trajectories."""
    trend = 2 + np.sin(np.linspace(0, 3, n))
    return trend * rng.gamma(2.0, 0.5, n)


def test_estimate_is_unbiased_and_the_se_is_honest():
    """Over many draws on one trajectory: mean estimate = exact sum; the stated SE is
    within 25 % of the spread of the estimates; |error| <= 2 SE in at least 90 %."""
    rng = np.random.default_rng(0)
    h = _trajectory(rng, 700)
    exact = h.sum()
    est, ses = [], []
    for seed in range(1500):
        plan = probe_plan(h.size, 8, seed)
        total, se = stratified_area(h[np.asarray(plan.positions) - 1], plan.weights)
        est.append(total)
        ses.append(se)
    est, ses = np.array(est), np.array(ses)
    spread = est.std()
    assert abs(est.mean() - exact) < 4 * spread / math.sqrt(est.size)
    assert np.sqrt(np.mean(ses**2)) == pytest.approx(spread, rel=0.25)
    assert np.mean(np.abs(est - exact) <= 2 * ses) >= 0.9


def test_record_figures_under_stride():
    h = np.array([1.0, 3.0, 2.0, 0.5])
    fig = record_figures(h, None, None, probe_weights=np.array([4, 4, 2, 1]))
    assert fig["eas"] == 20.5 and fig["n_probes"] == 11 and fig["n_probes_run"] == 4
    assert fig["mean_eas"] == pytest.approx(20.5 / 11) and fig["final_entropy"] == 0.5
    assert fig["eas_se"] == pytest.approx(math.sqrt(32.5))
    exact = record_figures(h, None, None)
    assert exact["eas"] == 6.5 and exact["eas_se"] == 0.0 and exact["n_probes"] == exact["n_probes_run"] == 4
