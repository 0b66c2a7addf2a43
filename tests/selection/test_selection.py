import pytest

from eas.selection.strategies import quantiles, select, top_k

EAS = [5.0, 9.0, 1.0, 9.0, 3.0, None, 7.0]


def test_eas_keeps_the_highest_ties_in_input_order():
    sel = select("eas", EAS, n=7, budget=3)
    assert sel.indices == [1, 3, 6]
    assert sel.scores == [9.0, 9.0, 7.0]
    assert (sel.eligible, sel.shortfall) == (6, 0)


def test_length_and_hes_rank_descending():
    assert select("length", [10, 300, 300, 40], n=4, budget=2).indices == [1, 2]
    assert select("hes", [0.1, 0.2, 0.3], n=3, budget=1).indices == [2]
    assert select("mean-entropy", [0.5, 0.5, 0.1], n=3, budget=2).indices == [0, 1]


def test_pass_rate_drops_0_and_1_and_keeps_the_lowest():
    rates = [0.0, 0.25, 1.0, 0.75, 0.25, 0.5, None]
    sel = select("pass-rate", rates, n=7, budget=3)
    assert sel.indices == [1, 4, 5]
    short = select("pass-rate", rates, n=7, budget=10)
    assert short.indices == [1, 4, 5, 3]
    assert (short.eligible, short.shortfall) == (4, 6)


def test_random_is_deterministic_for_a_seed_and_uniform():
    a = select("random", None, n=100, budget=10, seed=1)
    assert a.indices == select("random", None, n=100, budget=10, seed=1).indices
    assert a.indices != select("random", None, n=100, budget=10, seed=2).indices
    assert len(set(a.indices)) == 10
    counts = [0] * 10
    for seed in range(400):
        for i in select("random", None, n=10, budget=3, seed=seed).indices:
            counts[i] += 1
    assert min(counts) > 80 and max(counts) < 160  # 120 expected each


def test_budget_larger_than_the_pool():
    sel = select("eas", [1.0, 2.0], n=2, budget=5)
    assert sel.indices == [1, 0] and sel.shortfall == 3
    assert select("random", None, n=2, budget=5).shortfall == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("eas", [], 0, 3), "pool is empty"),
        (("eas", [1.0], 1, 0), "budget"),
        (("magic", [1.0], 1, 1), "unknown strategy"),
        (("eas", [1.0], 2, 1), "one score per record"),
    ],
)
def test_errors(args, message):
    with pytest.raises(ValueError, match=message):
        select(*args)


def test_top_k_and_quantiles():
    assert top_k([float("nan"), 2.0, 1.0], 5) == [1, 2]
    assert quantiles([1.0, 2.0, 3.0, None]) == {"q0": 1.0, "q25": 1.5, "q50": 2.0, "q75": 2.5, "q100": 3.0}
