"""A ridge-regression head in closed form, with a penalty chosen by grouped cross-validation.

Pure numpy. The amortised EAS (docs/method.md, "Amortised EAS") predicts each probe
entropy ``H_t`` from features of position t; this module fits that linear map:

* features are standardised (mean 0, standard deviation 1 over the calibration rows;
  a constant feature keeps scale 1), the target is centred, and the weights minimise
  ``||y - X w||^2 + alpha ||w||^2`` in closed form;
* ``alpha`` is chosen from a grid (``PENALTIES`` times the number of training rows) by
  grouped K-fold cross-validation: all rows of one group (one trace) fall in the same
  fold, so the error estimate is that of a trace the head never saw. Each fold's
  Gram matrix is eigendecomposed once and every penalty of the grid is solved from it;
* predictions are clipped at 0 from below (an entropy is never negative).

Deliberate simplifications: one penalty for every feature; folds balance the number of
traces, not of rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Penalty grid, relative to the number of training rows (features are standardised).
PENALTIES = tuple(10.0**k for k in range(-5, 3))
FOLDS = 5


@dataclass(frozen=True)
class RidgeHead:
    """A fitted linear head: ``predict(X) = max(0, ((X - mean) / scale) @ weights + intercept)``.

    Attributes:
        mean, scale: ``(d,)`` the feature standardisation.
        weights: ``(d,)`` on standardised features.
        intercept: the mean target.
        alpha: the ridge penalty the weights were fitted with.
    """

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    intercept: float
    alpha: float

    def predict(self, features: np.ndarray) -> np.ndarray:
        """``(n,)`` predictions for ``(n, d)`` features, clipped at 0.

        Example:
            >>> head = RidgeHead(np.zeros(1), np.ones(1), np.array([2.0]), 1.0, 0.0)
            >>> head.predict(np.array([[1.0], [-3.0]])).tolist()
            [3.0, 0.0]
        """
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.weights.size:
            raise ValueError(f"features of shape {x.shape} do not fit a head of {self.weights.size} features")
        return np.maximum(0.0, ((x - self.mean) / self.scale) @ self.weights + self.intercept)


def standardisation(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations (1 for a constant column).

    Example:
        >>> m, s = standardisation(np.array([[1.0, 5.0], [3.0, 5.0]]))
        >>> m.tolist(), s.tolist()
        ([2.0, 5.0], [1.0, 1.0])
    """
    x = np.asarray(features, dtype=np.float64)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    return mean, np.where(scale > 0, scale, 1.0)


def _ridge_path(x: np.ndarray, y: np.ndarray, alphas: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Standardisation and weights for every alpha: ``mean (d,)``, ``scale (d,)``, ``W (len(alphas), d)``."""
    mean, scale = standardisation(x)
    xs = (x - mean) / scale  # (n, d)
    yc = y - y.mean()
    evals, evecs = np.linalg.eigh(xs.T @ xs)  # (d,), (d, d)
    proj = evecs.T @ (xs.T @ yc)  # (d,)
    weights = np.stack([evecs @ (proj / (np.maximum(evals, 0.0) + a)) for a in alphas])
    return mean, scale, weights


def fit_ridge(features: np.ndarray, target: np.ndarray, alpha: float) -> RidgeHead:
    """The ridge head for one penalty ``alpha`` (absolute, on standardised features)."""
    x, y = _check(features, target)
    mean, scale, w = _ridge_path(x, y, [alpha])
    return RidgeHead(mean, scale, w[0], float(y.mean()), float(alpha))


def grouped_folds(groups: Sequence[object], folds: int = FOLDS, seed: int = 0) -> np.ndarray:
    """``(n,)`` fold index of every row: the groups are shuffled (seeded) and dealt round-robin.

    Every row of a group lands in the same fold; with fewer groups than ``folds``, one fold
    per group.

    Example:
        >>> f = grouped_folds(["a", "a", "b", "c", "c"], folds=2)
        >>> bool(f[0] == f[1] and f[3] == f[4]), sorted(set(f.tolist()))
        (True, [0, 1])
    """
    labels, inverse = np.unique(np.asarray([str(g) for g in groups]), return_inverse=True)
    order = np.random.default_rng(seed).permutation(labels.size)
    fold_of_group = np.empty(labels.size, dtype=np.int64)
    fold_of_group[order] = np.arange(labels.size) % max(1, min(folds, labels.size))
    return fold_of_group[inverse]


@dataclass(frozen=True)
class CrossValidated:
    """A head fitted on all rows with the penalty that cross-validation chose.

    Attributes:
        head: fitted on every row.
        out_of_fold: ``(n,)`` each row's prediction by the head of the folds without its group.
        alpha_errors: mean squared out-of-fold error for each penalty tried.
    """

    head: RidgeHead
    out_of_fold: np.ndarray
    alpha_errors: dict[float, float]


def fit_ridge_cv(
    features: np.ndarray,
    target: np.ndarray,
    groups: Sequence[object],
    penalties: Sequence[float] = PENALTIES,
    folds: int = FOLDS,
    seed: int = 0,
) -> CrossValidated:
    """Ridge with the penalty chosen by grouped K-fold CV (see the module docstring).

    Args:
        features: ``(n, d)`` one row per position.
        target: ``(n,)`` the exact values.
        groups: ``(n,)`` the trace of every row; needs at least two distinct groups.
        penalties: the grid, relative to the training rows (``alpha = p * n_train``).
        folds: K.
        seed: the fold assignment's seed.
    """
    x, y = _check(features, target)
    fold = grouped_folds(groups, folds, seed)
    if np.unique(fold).size < 2:
        raise ValueError("cross-validation needs at least two traces")
    errors = np.zeros(len(penalties))
    oof = np.zeros((len(penalties), y.size))
    for k in np.unique(fold):
        train, test = fold != k, fold == k
        alphas = [p * int(train.sum()) for p in penalties]
        mean, scale, w = _ridge_path(x[train], y[train], alphas)
        pred = np.maximum(0.0, ((x[test] - mean) / scale) @ w.T + y[train].mean())  # (n_test, n_alpha)
        oof[:, test] = pred.T
        errors += ((pred - y[test, None]) ** 2).sum(axis=0)
    best = int(np.argmin(errors))
    head = fit_ridge(x, y, penalties[best] * y.size)
    per_alpha = {float(p): float(e / y.size) for p, e in zip(penalties, errors, strict=True)}
    return CrossValidated(head, oof[best], per_alpha)


def _check(features: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64)
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ValueError(f"features (n, d) and target (n,) expected, got {x.shape} and {y.shape}")
    if x.shape[0] < 2:
        raise ValueError("a head needs at least two rows")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("features and target must be finite")
    return x, y
