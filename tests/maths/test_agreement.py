"""Agreement figures of estimated vs exact trajectories, against hand derivations."""

import numpy as np
import pytest

from eas.maths.agreement import agreement, pooled_r, spearman, top_overlap


def test_identical_estimates_agree_perfectly():
    exact = [np.array([0.5, 1.0, 2.0]), np.array([0.1]), np.array([3.0, 0.2]), np.array([1.0, 1.0, 1.0, 0.0])]
    out = agreement(exact, exact)
    assert out["per_position_r"] == pytest.approx(1.0)
    assert out["spearman_eas"] == out["spearman_mean_eas"] == 1.0
    assert out["top25_overlap"] == out["top25_overlap_eas"] == 1.0
    assert out["mean_rel_error"] == 0.0


def test_values_by_hand():
    exact = [np.array([1.0, 3.0]), np.array([2.0]), np.array([4.0, 4.0, 4.0]), np.array([0.5])]
    est = [np.array([2.0, 2.0]), np.array([1.0]), np.array([4.0, 4.0, 5.0]), np.array([1.0])]
    out = agreement(est, exact)
    # mean EAS exact 2, 2, 4, 0.5 -> ranks (2.5, 2.5, 4, 1); estimated 2, 1, 4.33, 1 -> (3, 1.5, 4, 1.5)
    ra, rb = np.array([2.5, 2.5, 4, 1]), np.array([3, 1.5, 4, 1.5])
    assert out["spearman_mean_eas"] == pytest.approx(np.corrcoef(ra, rb)[0, 1])
    # |error| / EAS: 0/4, 1/2, 1/12, 0.5/0.5
    assert out["mean_rel_error"] == pytest.approx((0 + 0.5 + 1 / 12 + 1) / 4)
    assert out["top25_overlap"] == 1.0  # the top trace (mean 4) is found by both
    flat_est, flat_exact = np.concatenate(est), np.concatenate(exact)
    assert out["per_position_r"] == pytest.approx(np.corrcoef(flat_est, flat_exact)[0, 1])


def test_helpers_edge_cases():
    assert np.isnan(spearman([1.0], [2.0]))
    assert np.isnan(pooled_r([np.array([1.0, 1.0])], [np.array([1.0, 2.0])]))
    assert top_overlap([1, 2, 3, 4, 5, 6, 7, 8], [8, 7, 6, 5, 4, 3, 2, 1]) == 0.0
    with pytest.raises(ValueError):
        agreement([np.array([1.0])], [np.array([])])
