"""Correlation, AUROC and PRR against scipy and hand-computed cases."""

import math

import numpy as np
import pytest
from scipy import stats

from eas.maths.correlation import auroc, correlate, finite_pairs, fisher_interval, pearson, prr

RNG = np.random.default_rng(7)
X = RNG.normal(size=40)
Y = 0.6 * X + RNG.normal(scale=0.8, size=40)


def test_pearson_and_spearman_match_scipy():
    c = correlate(X, Y)
    assert c.n == 40
    assert c.pearson_r == pytest.approx(stats.pearsonr(X, Y).statistic, abs=1e-12)
    assert c.pearson_p == pytest.approx(stats.pearsonr(X, Y).pvalue, rel=1e-9)
    assert c.spearman_rho == pytest.approx(stats.spearmanr(X, Y).statistic, abs=1e-12)
    assert pearson(X, Y)[0] == pytest.approx(c.pearson_r)


def test_hand_computed_pearson():
    # x = 1..4, y = 1,2,3,5: Sxy = 6.5, Sxx = 5, Syy = 8.75, r = 6.5 / sqrt(43.75) = 0.98270763
    c = correlate([1, 2, 3, 4], [1, 2, 3, 5])
    assert c.pearson_r == pytest.approx(6.5 / math.sqrt(5 * 8.75))


def test_the_interval_is_fisher_z_as_scipy_computes_it():
    c = correlate(X, Y)
    ci = stats.pearsonr(X, Y).confidence_interval(0.95)  # scipy's Fisher-z interval
    assert (c.ci_low, c.ci_high) == (pytest.approx(ci.low, abs=1e-12), pytest.approx(ci.high, abs=1e-12))
    assert -1 < c.ci_low < c.pearson_r < c.ci_high < 1
    # by hand: tanh(atanh(r) -+ 1.96 / sqrt(n - 3))
    half = stats.norm.ppf(0.975) / math.sqrt(40 - 3)
    assert c.ci_low == pytest.approx(math.tanh(math.atanh(c.pearson_r) - half), abs=1e-12)


# Seeded bivariate normal samples: 20,000 data sets per (n, rho); the standard error of a
# coverage estimate is then 0.15 points, so the 2-point tolerance is 13 of them.
SIMULATIONS = 20_000


def _simulated_r(n: int, rho: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((2, SIMULATIONS, n))
    x, y = a, rho * a + math.sqrt(1 - rho**2) * b
    xm, ym = x - x.mean(1, keepdims=True), y - y.mean(1, keepdims=True)
    return (xm * ym).sum(1) / np.sqrt((xm**2).sum(1) * (ym**2).sum(1))


@pytest.mark.parametrize("n", [5, 8, 20])
@pytest.mark.parametrize("rho", [0.0, 0.5, 0.9])
def test_the_95_percent_interval_covers_95_percent_at_small_n(n, rho):
    r = _simulated_r(n, rho, seed=n * 10 + int(rho * 10))
    low, high = fisher_interval(r, n)
    coverage = 100 * np.mean((low <= rho) & (rho <= high))
    assert abs(coverage - 95) <= 2, coverage
    # correlate() reports exactly this interval for one of the data sets
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((2, n))
    c = correlate(a, rho * a + math.sqrt(1 - rho**2) * b)
    lo, hi = fisher_interval(c.pearson_r, n)
    assert (c.ci_low, c.ci_high) == (float(lo), float(hi))


def test_a_nominal_interval_that_is_too_narrow_fails_the_coverage_check():
    """The check above can fail: the same interval at 80 % covers about 80 %."""
    r = _simulated_r(5, 0.5, seed=0)
    low, high = fisher_interval(r, 5, confidence=0.80)
    assert abs(100 * np.mean((low <= 0.5) & (high >= 0.5)) - 95) > 10


def test_missing_values_are_dropped_pairwise():
    c = correlate([1, 2, None, 4, float("nan"), 6], [2, 4, 5, None, 1, 12])
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


def test_the_interval_is_na_with_its_reason_below_four_questions():
    c = correlate([1, 2, 3], [1, 3, 2])
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
