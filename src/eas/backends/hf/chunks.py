"""How many probes a chunk takes on a GPU: from the free device memory, not a constant.

Pure arithmetic on a model's shape (``ModelShape``) and a byte count, so it is tested
with made-up numbers; the backend passes ``torch.cuda.mem_get_info``'s free bytes before
each batch. A probe chunk of Q query tokens (Q = probes x suffix tokens) over a cache of
C positions needs, besides what is already allocated:

* the batch's KV cache, allocated once for the packed records plus one chunk:
  ``(C + Q) x kv_bytes`` (every layer's keys and values);
* one layer's activations at a time (inference keeps no others): ``Q x act_bytes``;
* the attention mask: SDPA takes a dense ``(Q, C + Q)`` boolean per layer type and
  widens it to the model dtype inside the kernel; flex takes a block mask, whose
  construction holds two booleans per query row and key block (``(Q, C / 128)``);
* the float32 LM head's workspace (``head_bytes``, its block of logits and temporaries).

Q is the largest that fits in ``fraction`` of the free memory (a quadratic in Q for
SDPA's mask), at most ``max_tokens`` (beyond that a forward pass is long enough that
its launch overhead no longer matters) and at least one probe (a batch that does not
fit fails and is retried record by record by the scorer).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ModelShape:
    """What sets a transformer's memory per token (bytes: of the model dtype)."""

    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    layer_kinds: int = 1
    bytes: int = 2

    @classmethod
    def of(cls, config: Any, dtype_bytes: int, layer_kinds: int = 1) -> ModelShape:
        """The shape of a transformers config (its text config for composite models)."""
        config = getattr(config, "text_config", None) or config
        heads = int(config.num_attention_heads)
        hidden = int(config.hidden_size)
        return cls(
            layers=int(config.num_hidden_layers),
            hidden=hidden,
            intermediate=int(getattr(config, "intermediate_size", None) or 4 * hidden),
            heads=heads,
            kv_heads=int(getattr(config, "num_key_value_heads", None) or heads),
            head_dim=int(getattr(config, "head_dim", None) or hidden // heads),
            layer_kinds=layer_kinds,
            bytes=dtype_bytes,
        )

    @property
    def kv_bytes(self) -> int:
        """KV cache bytes per position, all layers."""
        return self.layers * 2 * self.kv_heads * self.head_dim * self.bytes

    @property
    def act_bytes(self) -> int:
        """Peak activation bytes per query token within one layer (residual, norms, q/k/v/o, MLP)."""
        return self.bytes * (
            3 * self.hidden + (2 * self.heads + 2 * self.kv_heads) * self.head_dim + 3 * self.intermediate
        )

    def mask_bytes(self, flex: bool) -> float:
        """Mask bytes per (query, key) pair: block-mask temporaries for flex, dense for SDPA."""
        return self.layer_kinds * (2 / 128 if flex else 1 + self.bytes)


def probe_tokens_for_memory(
    free_bytes: int,
    shape: ModelShape,
    cache_tokens: int,
    *,
    flex: bool,
    head_bytes: int = 0,
    fraction: float = 0.8,
    max_tokens: int = 32768,
) -> int:
    """Query tokens per probe chunk that fit in ``fraction`` of ``free_bytes``.

    Args:
        free_bytes: free device memory now (before the batch's cache exists).
        shape: the model's shape.
        cache_tokens: positions of the packed records (the cache before the probes).
        flex: block masks (flex attention) rather than dense ones (SDPA).
        head_bytes: the LM head's workspace.
        fraction: share of the free memory to plan for (the rest absorbs the
            allocator's fragmentation and what the estimate leaves out).
        max_tokens: the cap.

    Returns:
        Q >= 0 (0: even the cache does not fit; the caller still runs one probe).

    Example:
        >>> shape = ModelShape(layers=2, hidden=8, intermediate=16, heads=2, kv_heads=1, head_dim=4, bytes=2)
        >>> probe_tokens_for_memory(10**6, shape, 100, flex=False, max_tokens=10**6)
        435
    """
    budget = free_bytes * fraction - head_bytes - cache_tokens * shape.kv_bytes
    if budget <= 0:
        return 0
    m = shape.mask_bytes(flex)
    linear = shape.kv_bytes + shape.act_bytes + m * cache_tokens
    # m Q^2 + linear Q <= budget  (the mask spans the cache and the chunk itself)
    q = (-linear + math.sqrt(linear * linear + 4 * m * budget)) / (2 * m)
    return max(0, min(max_tokens, int(q)))


def probes_per_chunk(probe_tokens: int, suffix_tokens: int) -> int:
    """Probes of ``suffix_tokens`` tokens each in ``probe_tokens`` query tokens (at least one)."""
    return max(1, probe_tokens // max(1, suffix_tokens))
