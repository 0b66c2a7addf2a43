"""The decayed cumulative probability and the answer-entropy buckets (docs/method.md section 3)."""

import numpy as np
import pytest

from eas.maths.trajectories import cumulative, decayed_cumulative, entropy_bucket, mean_on_grid


def test_decayed_cumulative_hand_case():
    p = np.array([[0.2, 0.8], [0.6, 0.4], [0.1, 0.9]])
    # t = 3, alpha = 0.5: P3 / 1 + P2 / sqrt(2) + P1 / sqrt(3)
    expected_t3 = p[2] + p[1] / np.sqrt(2) + p[0] / np.sqrt(3)
    got = decayed_cumulative(p, alpha=0.5)
    assert got.shape == (3, 2)
    np.testing.assert_allclose(got[0], p[0])
    np.testing.assert_allclose(got[1], p[1] + p[0] / np.sqrt(2))
    np.testing.assert_allclose(got[2], expected_t3)


def test_decayed_cumulative_limits():
    p = np.random.default_rng(0).random((6, 4))
    np.testing.assert_allclose(decayed_cumulative(p, alpha=0.0), cumulative(p))
    np.testing.assert_allclose(decayed_cumulative(p, alpha=60.0), p, atol=1e-12)
    np.testing.assert_allclose(decayed_cumulative(p, alpha=np.inf), p)
    with pytest.raises(ValueError):
        decayed_cumulative(p, alpha=-1)


def test_buckets_follow_the_paper_bounds():
    assert [entropy_bucket(h) for h in (0.0, 0.49, 0.5, 1.0, 1.5, 1.5001, 3.0)] == [
        "low",
        "low",
        "medium",
        "medium",
        "medium",
        "high",
        "high",
    ]


def test_mean_on_grid():
    grid, mean = mean_on_grid([[0.0, 2.0], [1.0, 1.0, 1.0]], points=3)
    np.testing.assert_allclose(grid, [0, 0.5, 1])
    np.testing.assert_allclose(mean, [0.5, 1.0, 1.5])
    assert np.isnan(mean_on_grid([], points=4)[1]).all()
