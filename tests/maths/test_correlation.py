"""Correlation, AUROC and PRR against scipy and hand-computed cases."""

import math

import numpy as np
import pytest
from scipy import stats

from eas.maths.correlation import auroc, correlate, finite_pairs, pearson, prr

RNG = np.random.default_rng(7)
X = RNG.normal(size=40)
Y = 0.6 * X + RNG.normal(scale=0.8, size=40)


def test_pearson_and_spearman_match_scipy():
    c = correlate(X, Y, n_resamples=500)
    assert c.n == 40
    assert c.pearson_r == pytest.approx(stats.pearsonr(X, Y).statistic, abs=1e-12)
    assert c.pearson_p == pytest.approx(stats.pearsonr(X, Y).pvalue, rel=1e-9)
    assert c.spearman_rho == pytest.approx(stats.spearmanr(X, Y).statistic, abs=1e-12)
    assert pearson(X, Y)[0] == pytest.approx(c.pearson_r)


def test_hand_computed_pearson():
    # x = 1..4, y = 1,2,3,5: Sxy = 6.5, Sxx = 5, Syy = 8.75, r = 6.5 / sqrt(43.75) = 0.98270763
    c = correlate([1, 2, 3, 4], [1, 2, 3, 5], n_resamples=200)
    assert c.pearson_r == pytest.approx(6.5 / math.sqrt(5 * 8.75))


def test_bootstrap_ci_is_seeded_and_brackets_r():
    a = correlate(X, Y, n_resamples=1000, seed=3)
    b = correlate(X, Y, n_resamples=1000, seed=3)
    assert (a.ci_low, a.ci_high) == (b.ci_low, b.ci_high)
    assert -1 <= a.ci_low < a.pearson_r < a.ci_high <= 1
    # roughly the Fisher-z interval for n = 40
    z = np.arctanh(a.pearson_r)
    half = 1.96 / math.sqrt(40 - 3)
    assert a.ci_low == pytest.approx(np.tanh(z - half), abs=0.1)
    assert a.ci_high == pytest.approx(np.tanh(z + half), abs=0.1)


def test_missing_values_are_dropped_pairwise():
    c = correlate([1, 2, None, 4, float("nan"), 6], [2, 4, 5, None, 1, 12], n_resamples=100)
    assert c.n == 3
    assert c.pearson_r == pytest.approx(stats.pearsonr([1, 2, 6], [2, 4, 12]).statistic)
    x, y = finite_pairs([1, None], [None, 2])
    assert x.size == y.size == 0


def test_constant_input_gives_nan_not_an_error():
    c = correlate([1, 1, 1, 1], [1, 2, 3, 4])
    assert math.isnan(c.pearson_r) and math.isnan(c.ci_low) and c.n == 4


def test_auroc_hand_case():
    # wrong answers score 0.9 and 0.4; right ones 0.1, 0.5, 0.4.
    # pairs: 0.9 beats all 3; 0.4 beats 0.1, loses to 0.5, ties 0.4 (1/2) => 4.5 / 6
    assert auroc([0.9, 0.1, 0.4, 0.5, 0.4], [1, 0, 1, 0, 0]) == pytest.approx(0.75)
    assert auroc([3, 2, 1], [1, 0, 0]) == 1.0
    assert auroc([1, 2, 3], [1, 0, 0]) == 0.0
    assert math.isnan(auroc([1, 2], [1, 1]))


def test_auroc_matches_the_pairwise_definition():
    s = RNG.integers(0, 5, size=30).astype(float)
    pos = RNG.integers(0, 2, size=30)
    both = list(zip(s, pos, strict=True))
    pairs = [(a > b) + 0.5 * (a == b) for a, pa in both for b, pb in both if pa == 1 and pb == 0]
    assert auroc(s, pos) == pytest.approx(np.mean(pairs))


def test_prr_hand_case():
    # uncertainty 0.1, 0.5, 0.3 with quality 1, 1, 0.
    # kept means as the most uncertain are rejected: all 3 -> 2/3; drop 0.5 -> 1/2; drop 0.3 -> 1
    # area = (2/3 + 1/2 + 1) / 3 = 0.7222; oracle (1, 1, 0 order) = (2/3 + 1 + 1) / 3 = 0.8889
    # random = mean quality = 2/3  =>  PRR = (0.7222 - 0.6667) / (0.8889 - 0.6667) = 0.25
    assert prr([0.1, 0.5, 0.3], [1, 1, 0]) == pytest.approx(0.25)


def test_prr_oracle_is_one_and_reverse_is_negative():
    q = np.array([1, 0, 1, 1, 0, 0, 1], dtype=float)
    assert prr(1 - q, q) == pytest.approx(1.0)
    assert prr(q, q) < 0
    assert math.isnan(prr([1, 2, 3], [1, 1, 1]))


def _degenerate_resamples(x, y, n_resamples, seed):
    """How many paired resamples (drawn as percentile_ci draws them) have a constant side."""
    idx = np.random.default_rng(seed).integers(0, len(x), size=(n_resamples, len(x)))
    xs, ys = np.asarray(x, float)[idx], np.asarray(y, float)[idx]
    return int((np.ptp(xs, axis=1) == 0).__or__(np.ptp(ys, axis=1) == 0).sum())


def test_degenerate_resamples_are_dropped_and_counted_not_voiding_the_interval():
    # n = 8 with one outlying metric value: a resample without it has a constant metric
    # (r undefined), about (7/8)^8 = 34 % of them; the interval used to be [n/a, n/a].
    x = [0, 0, 0, 0, 0, 0, 0, 1]
    y = [0.1, 0.5, 0.2, 0.9, 0.4, 0.3, 0.6, 1.4]
    c = correlate(x, y, n_resamples=2000, seed=0)
    assert math.isfinite(c.ci_low) and math.isfinite(c.ci_high) and c.ci_low <= c.ci_high
    assert c.ci_dropped == _degenerate_resamples(x, y, 2000, 0) > 400
    assert c.ci_note == ""


def test_the_interval_is_na_with_its_reason_below_four_questions():
    c = correlate([1, 2, 3], [1, 3, 2], n_resamples=100)
    assert math.isfinite(c.pearson_r) and math.isnan(c.ci_low) and math.isnan(c.ci_high)
    assert c.ci_note == "n = 3 < 4"
    assert correlate([1, 1, 1, 1], [1, 2, 3, 4]).ci_note == "constant values"


def _stable_prr(u, q):
    """LM-Polygraph's PRR: a stable sort, so tied rows are rejected in input order."""
    u, q = np.asarray(u, float), np.asarray(q, float)

    def area(score):
        kept = q[np.argsort(score, kind="stable")]
        return np.mean(np.cumsum(kept) / np.arange(1, q.size + 1))

    return (area(u) - q.mean()) / (area(-q) - q.mean())


def _prr_over_tie_orders(u, q):
    """The stable-sort PRR averaged over every order of the rows (brute force: the definition)."""
    from itertools import permutations

    values = [_stable_prr([u[i] for i in p], [q[i] for i in p]) for p in permutations(range(len(u)))]
    return float(np.mean(values))


def test_prr_does_not_depend_on_the_order_of_tied_rows():
    u = [0.2, 0.2, 0.2, 0.7, 0.7, 0.1, 0.9]
    q = [1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0]
    expected = _prr_over_tie_orders(u, q)
    rng = np.random.default_rng(0)
    assert _stable_prr(u, q) != pytest.approx(expected)  # the input order alone decided it
    seen = set()
    for _ in range(20):
        order = rng.permutation(len(u))
        value = prr([u[i] for i in order], [q[i] for i in order])
        assert value == pytest.approx(expected, abs=1e-12)
        seen.add(round(value, 12))
    assert len(seen) == 1
