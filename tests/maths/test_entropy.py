import math

import numpy as np
import pytest
import torch

from eas.maths.entropy import (
    entropy_bits,
    entropy_bits_from_logits,
    logprobs_and_entropy_from_logits,
    topk_entropy_bits,
    topk_mass,
    topk_truncation_bound,
)


@pytest.mark.parametrize("v", [2, 7, 49152])
def test_uniform_is_log2_v(v):
    assert float(entropy_bits_from_logits(torch.zeros(v))) == pytest.approx(math.log2(v), abs=1e-4)


def test_one_hot_is_zero():
    logits = torch.full((10,), -float("inf"))
    logits[3] = 0.0
    assert float(entropy_bits_from_logits(logits)) == 0.0
    assert float(entropy_bits_from_logits(torch.tensor([0.0, -1e4, -1e4]))) == pytest.approx(0.0, abs=1e-6)


def test_hand_worked_three_tokens():
    # p = (1/2, 1/4, 1/4): H = 1/2*1 + 2 * 1/4*2 = 1.5 bits
    logits = torch.log(torch.tensor([0.5, 0.25, 0.25])) + 3.0  # shift does not matter
    assert float(entropy_bits_from_logits(logits)) == pytest.approx(1.5, abs=1e-6)
    assert float(entropy_bits(np.array([0.5, 0.25, 0.25]))) == pytest.approx(1.5)


def test_bf16_logits_are_upcast():
    logits = torch.randn(4, 1000, generator=torch.Generator().manual_seed(0)) * 3
    exact = entropy_bits_from_logits(logits.double())
    from_bf16 = entropy_bits_from_logits(logits.bfloat16())
    assert from_bf16.dtype == torch.float32
    assert torch.allclose(from_bf16.double(), entropy_bits_from_logits(logits.bfloat16().double()), atol=1e-5)
    assert torch.allclose(exact, entropy_bits_from_logits(logits).double(), atol=1e-4)


def test_logprobs_and_entropy_rows():
    logits = torch.log(torch.tensor([[0.5, 0.25, 0.25], [0.1, 0.1, 0.8]]))
    lp, h = logprobs_and_entropy_from_logits(logits, torch.tensor([1, 2]))
    assert lp.tolist() == pytest.approx([math.log(0.25), math.log(0.8)], abs=1e-6)
    h2 = -(0.1 * math.log2(0.1) * 2 + 0.8 * math.log2(0.8))
    assert h.tolist() == pytest.approx([1.5, h2], abs=1e-6)


def test_topk_entropy_and_bound_bracket_the_exact_entropy():
    rng = np.random.default_rng(0)
    for _ in range(20):
        p = rng.dirichlet(np.full(50, 0.3))
        top = np.sort(p)[::-1][:5]
        lower = float(topk_entropy_bits(np.log(top)))
        bound = float(topk_truncation_bound(np.log(top), vocab_size=50))
        exact = float(entropy_bits(p))
        assert lower - 1e-9 <= exact <= lower + bound + 1e-9


def test_topk_values():
    lp = np.log(np.array([0.5, 0.25]))
    assert float(topk_entropy_bits(lp)) == pytest.approx(1.0)  # 0.5*1 + 0.25*2
    assert float(topk_mass(lp)) == pytest.approx(0.75)
    assert float(topk_truncation_bound(lp, vocab_size=4)) == pytest.approx(0.25 * math.log2(2 / 0.25))
    assert float(topk_truncation_bound(np.log(np.array([1.0, 1e-300])), vocab_size=10)) == pytest.approx(0.0, abs=1e-12)


def test_non_finite_logits_give_nan_never_a_number():
    """NaN, +inf, or no finite logit: the entropy is NaN (the scorer turns it into an error)."""
    rows = torch.zeros(4, 5)
    rows[0, 2] = float("nan")
    rows[1, 1] = float("inf")
    rows[2] = -float("inf")
    h = entropy_bits_from_logits(rows)
    assert torch.isnan(h[:3]).all()
    assert float(h[3]) == pytest.approx(math.log2(5), abs=1e-6)
    lp, h2 = logprobs_and_entropy_from_logits(rows, torch.tensor([0, 0, 0, 0]))
    assert torch.isnan(h2[:3]).all() and torch.isnan(lp[0])


def test_zero_probabilities_contribute_exactly_zero():
    """-inf logits are tokens of probability 0: 0 log 0 = 0, the rest is exact."""
    logits = torch.log(torch.tensor([0.5, 0.25, 0.25, 0.0, 0.0]))  # two -inf
    assert float(entropy_bits_from_logits(logits)) == pytest.approx(1.5, abs=1e-6)
    tiny = torch.tensor([0.0, -200.0])  # exp(-200) underflows to 0 in float32: its term is 0, not NaN
    assert float(entropy_bits_from_logits(tiny)) == pytest.approx(0.0, abs=1e-6)
