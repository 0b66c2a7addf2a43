import math

import numpy as np
import pytest

from eas.maths.metrics import (
    entropy_area,
    final_entropy,
    high_entropy_sum,
    mean_entropy_area,
    mean_token_entropy,
    perplexity,
    record_figures,
)


def test_area_and_mean():
    h = np.array([2.0, 1.0, 0.5, 0.5])
    assert entropy_area(h) == 4.0
    assert mean_entropy_area(h) == 1.0
    assert final_entropy(h) == 0.5
    assert entropy_area(np.zeros(0)) == 0.0
    assert mean_entropy_area(np.zeros(0)) is None
    assert final_entropy(np.zeros(0)) is None


def test_perplexity_of_uniform_choice_is_the_branching():
    assert perplexity(np.log(np.full(10, 1 / 7))) == pytest.approx(7.0)
    assert perplexity(np.zeros(0)) is None


def test_hes_takes_the_top_half_percent_at_least_one():
    h = np.arange(1000, dtype=float)  # top 0.5 % = the 5 largest
    assert high_entropy_sum(h) == sum(range(995, 1000))
    assert high_entropy_sum(np.array([3.0, 1.0])) == 3.0
    assert high_entropy_sum(np.arange(201, dtype=float)) == 200 + 199  # ceil(1.005) = 2


def test_record_figures_hand_worked():
    fig = record_figures(np.array([1.0, 3.0]), np.log(np.array([0.5, 0.25, 1.0])), np.array([1.0, 2.0, 0.0]))
    assert fig["eas"] == 4.0
    assert fig["mean_eas"] == 2.0
    assert fig["n_probes"] == 2
    assert fig["ppl"] == pytest.approx(math.exp(-(math.log(0.5) + math.log(0.25)) / 3))
    assert fig["max_seq_logprob"] == pytest.approx(math.log(0.125))
    assert fig["mean_token_entropy"] == 1.0
    assert fig["hes"] == 2.0
    assert fig["final_entropy"] == 3.0
    assert mean_token_entropy(np.zeros(0)) is None
