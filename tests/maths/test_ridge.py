"""The ridge head: a known linear relation recovered, grouped folds, CV picks a sensible penalty."""

import doctest

import numpy as np
import pytest

import eas.maths.agreement
import eas.maths.ridge
from eas.maths.ridge import fit_ridge, fit_ridge_cv, grouped_folds, standardisation


def test_doctests():
    for module in (eas.maths.ridge, eas.maths.agreement):
        assert doctest.testmod(module).failed == 0


def _synthetic(n_groups=30, per_group=40, d=12, noise=0.05, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_groups * per_group, d)) * rng.uniform(0.1, 10, size=d) + rng.normal(size=d) * 5
    w = rng.normal(size=d)
    y = x @ w + 3.0  # a known linear relation, positive on average
    y = y - y.min() + 0.5 + noise * rng.normal(size=y.size)
    groups = np.repeat(np.arange(n_groups), per_group)
    return x, y, groups, w


def test_head_reproduces_a_known_linear_relation():
    x, y, groups, w = _synthetic(noise=0.0)
    cv = fit_ridge_cv(x, y, groups)
    # Exact data: the smallest penalty wins and the head is the relation itself.
    assert cv.head.alpha == min(cv.alpha_errors) * y.size
    np.testing.assert_allclose(cv.head.predict(x), y, atol=1e-2)
    # Weights on standardised features = true weights times each feature's spread.
    np.testing.assert_allclose(cv.head.weights, w * x.std(axis=0), rtol=1e-3)
    np.testing.assert_allclose(cv.out_of_fold, y, atol=1e-2)


def test_closed_form_matches_the_normal_equations():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(50, 4)), rng.normal(size=50) + 5
    head = fit_ridge(x, y, alpha=7.0)
    mean, scale = standardisation(x)
    xs = (x - mean) / scale
    expected = np.linalg.solve(xs.T @ xs + 7.0 * np.eye(4), xs.T @ (y - y.mean()))
    np.testing.assert_allclose(head.weights, expected, rtol=1e-9)
    assert head.intercept == pytest.approx(y.mean())


def test_noise_makes_cv_choose_a_larger_penalty_than_exact_data():
    x, y, groups, _ = _synthetic(n_groups=10, per_group=5, d=40, noise=0.0)
    noisy = y + np.random.default_rng(2).normal(size=y.size) * 5 * y.std()
    exact_alpha = fit_ridge_cv(x, y, groups).head.alpha
    assert fit_ridge_cv(x, noisy, groups).head.alpha > exact_alpha


def test_folds_never_split_a_group():
    groups = [f"t{i // 7}" for i in range(7 * 13)]
    folds = grouped_folds(groups, folds=5, seed=3)
    for g in set(groups):
        assert len({int(f) for f, h in zip(folds, groups, strict=True) if h == g}) == 1
    assert sorted(set(folds.tolist())) == [0, 1, 2, 3, 4]


def test_out_of_fold_predictions_come_from_heads_without_the_group():
    # One group's target is shifted far away: a head that saw it could fit it, a held-out one cannot.
    x, y, groups, _ = _synthetic(noise=0.0)
    y = y.copy()
    y[groups == 0] += 100.0
    x = np.column_stack([x, (groups == 0).astype(float)])  # a feature that only group 0 has
    cv = fit_ridge_cv(x, y, groups)
    assert np.abs(cv.head.predict(x)[groups == 0] - y[groups == 0]).mean() < 5
    assert np.abs(cv.out_of_fold[groups == 0] - y[groups == 0]).mean() > 50


def test_predictions_never_negative_and_shapes_checked():
    x, y, groups, _ = _synthetic()
    head = fit_ridge_cv(x, y, groups).head
    assert (head.predict(-1000 * np.abs(x)) >= 0).all()
    with pytest.raises(ValueError, match="features"):
        head.predict(x[:, :3])
    with pytest.raises(ValueError, match="two traces"):
        fit_ridge_cv(x, y, np.zeros(len(y)))
