"""Entropy in bits from logits or log-probabilities: pure maths, no model, no tokenizer.

Two families:

* exact entropies over the whole vocabulary, from logits (torch tensors; only tensor
  methods are used, so this module does not import torch);
* entropies from a top-K slice of the distribution (what serving engines return), with
  the bound on what the missing tail can add (docs/method.md, "Top-K truncation").

All logarithms of the results are base 2 (bits); inputs are natural-log probabilities,
as every framework returns them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

LN2 = math.log(2.0)


def entropy_bits_from_logits(logits: Any) -> Any:
    """Exact Shannon entropy, in bits, of ``softmax(logits)`` along the last axis.

    The log-softmax is taken in float32 (or the input's wider dtype) whatever the model
    dtype, so bf16 logits do not lose the small probabilities that make up the tail.

    Args:
        logits: a torch tensor ``(..., V)``.

    Returns:
        A float tensor ``(...)`` of entropies in bits; NaN where the logits are not
        finite (a NaN or +inf logit, or no finite logit at all). A -inf logit is a
        token of probability 0 and contributes 0.

    Example:
        >>> import torch
        >>> round(float(entropy_bits_from_logits(torch.zeros(8))), 6)
        3.0
    """
    return _entropy_bits_from_logp(_log_softmax(logits))


def logprobs_and_entropy_from_logits(logits: Any, targets: Any) -> tuple[Any, Any]:
    """Log-probability (natural log) of ``targets`` and the entropy (bits) of each row.

    Args:
        logits: torch tensor ``(n, V)``.
        targets: long tensor ``(n,)`` of token ids.

    Returns:
        ``(logprobs (n,), entropies_bits (n,))``.
    """
    logp = _log_softmax(logits)  # (n, V)
    token_logp = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (n,)
    return token_logp, _entropy_bits_from_logp(logp)


def _log_softmax(logits: Any) -> Any:
    """``log_softmax`` along the last axis in float32 at least (bf16/fp16 logits are upcast)."""
    if logits.dtype.is_floating_point and logits.dtype.itemsize < 4:
        logits = logits.float()
    return logits.log_softmax(dim=-1)


def _entropy_bits_from_logp(logp: Any) -> Any:
    """``-sum p log2 p`` from natural-log probabilities, with 0 log 0 = 0 exactly.

    Only the terms of tokens with probability exactly 0 are set to 0 (their ``p * log p``
    is ``0 * -inf``); a NaN anywhere else stays NaN, so logits that are not finite (NaN,
    +inf, or a row with no finite logit) give a NaN entropy, never a plausible number.
    """
    p = logp.exp()
    zero = p == 0
    terms = p.mul_(logp).masked_fill_(zero, 0.0)
    return -terms.sum(dim=-1) / LN2


def entropy_bits(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy in bits of probability vectors along the last axis (numpy).

    Zero probabilities contribute 0. No renormalisation: pass a distribution.

    Example:
        >>> float(entropy_bits(np.array([0.5, 0.25, 0.25])))
        1.5
    """
    p = np.asarray(probs, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
    return -terms.sum(axis=-1)


def topk_entropy_bits(topk_logprobs: np.ndarray) -> np.ndarray:
    """Entropy contribution of the K returned tokens: ``-sum_{i<=K} p_i log2 p_i``.

    The probabilities are used as returned, not renormalised, so the exact entropy lies
    in ``[value, value + topk_truncation_bound(...)]``.

    Args:
        topk_logprobs: ``(..., K)`` natural-log probabilities of the top-K tokens.
    """
    lp = np.asarray(topk_logprobs, dtype=np.float64)
    p = np.exp(lp)
    terms = np.where(np.isfinite(lp), p * lp, 0.0)
    return -terms.sum(axis=-1) / LN2


def topk_mass(topk_logprobs: np.ndarray) -> np.ndarray:
    """Probability mass ``sum_{i<=K} p_i`` held by the returned tokens (clipped to 1)."""
    lp = np.asarray(topk_logprobs, dtype=np.float64)
    return np.minimum(np.exp(lp).sum(axis=-1), 1.0)


def topk_truncation_bound(topk_logprobs: np.ndarray, vocab_size: int) -> np.ndarray:
    """Largest entropy, in bits, that the missing tail mass can add.

    With missing mass ``eps = 1 - sum_{i<=K} p_i`` spread as evenly as possible over the
    other ``V - K`` tokens, the tail adds ``eps * log2((V - K) / eps)`` bits; no other
    spreading adds more. The bound is 0 when nothing is missing.

    Example:
        >>> lp = np.log(np.array([0.5, 0.25]))
        >>> float(topk_truncation_bound(lp, vocab_size=4))  # 0.25 spread over 2 tokens
        0.75
    """
    lp = np.asarray(topk_logprobs, dtype=np.float64)
    k = lp.shape[-1]
    if vocab_size <= k:
        return np.zeros(lp.shape[:-1])
    eps = 1.0 - topk_mass(lp)
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = np.where(eps > 0, eps * np.log2((vocab_size - k) / np.where(eps > 0, eps, 1.0)), 0.0)
    return bound
