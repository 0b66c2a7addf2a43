"""The paired cluster bootstrap of a difference of means, against a loop over the same draws."""

import numpy as np
import pytest

from eas.maths.bootstrap import cluster_sums, paired_bootstrap


def _loop_interval(a, b, clusters, resamples, confidence, seed):
    """The same bootstrap written out: draw clusters, gather their samples, difference of means."""
    ids = list(dict.fromkeys(clusters))
    members = {c: [i for i, x in enumerate(clusters) if x == c] for c in ids}
    picks = np.random.default_rng(seed).integers(0, len(ids), size=(resamples, len(ids)))
    draws = []
    for row in picks:
        chosen = [i for g in row for i in members[ids[g]]]
        draws.append(np.mean([a[i] for i in chosen]) - np.mean([b[i] for i in chosen]))
    tail = (1 - confidence) / 2
    return np.quantile(draws, [tail, 1 - tail])


def test_interval_equals_the_loop_over_the_same_draws():
    rng = np.random.default_rng(5)
    clusters = [f"q{i // 3}" for i in range(30)] + ["q99"]  # 11 questions, one with a single sample
    a = rng.integers(0, 2, len(clusters)).tolist()
    b = rng.integers(0, 2, len(clusters)).tolist()
    got = paired_bootstrap(a, b, clusters, resamples=300, confidence=0.9, seed=7)
    assert got.difference == pytest.approx(np.mean(a) - np.mean(b))
    assert (got.low, got.high) == pytest.approx(tuple(_loop_interval(a, b, clusters, 300, 0.9, 7)), abs=1e-12)
    assert (got.clusters, got.samples) == (11, 31)


def test_equal_differences_give_a_point_interval_and_one_cluster_none():
    same = paired_bootstrap([1, 1, 0, 1], [0, 0, -1, 0], ["a", "a", "b", "c"])
    assert (same.difference, same.low, same.high) == pytest.approx((1.0, 1.0, 1.0))
    one = paired_bootstrap([1, 0], [0, 0], ["a", "a"])
    assert one.difference == 0.5 and np.isnan(one.low) and np.isnan(one.high)


def test_cluster_sums_in_order_of_first_appearance():
    sums, counts = cluster_sums([1.0, 2.0, 3.0, 4.0], ["b", "a", "b", "c"])
    assert sums.tolist() == [4.0, 2.0, 4.0] and counts.tolist() == [2.0, 1.0, 1.0]


def test_interval_covers_the_true_difference_about_as_often_as_it_says():
    """Simulated: 40 questions x 4 samples, correlated within a question; the true difference is 0.1."""
    rng = np.random.default_rng(0)
    covered, trials = 0, 200
    for trial in range(trials):
        p = rng.uniform(0.2, 0.8, 40).repeat(4)  # each question's own accuracy
        full = rng.random(160) < p
        early = rng.random(160) < np.clip(p + 0.1, 0, 1)
        ci = paired_bootstrap(early, full, np.arange(160) // 4, resamples=400, seed=trial)
        covered += ci.low <= 0.1 <= ci.high
    assert 0.88 <= covered / trials <= 0.99


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (([1], [1, 2], ["a"]), "one entry per sample"),
        (([], [], []), "no samples"),
        (([1], [1], ["a"], 10, 1.5), "confidence"),
    ],
)
def test_bad_input_is_refused(args, message):
    with pytest.raises(ValueError, match=message):
        paired_bootstrap(*args)
