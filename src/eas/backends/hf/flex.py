"""Flex attention for packed scoring: block masks built from ranges, never a tensor mask.

PyTorch's FlexAttention (``torch.nn.attention.flex_attention``) takes a ``BlockMask``:
for each tile of 128 query rows, the 128-key blocks it must visit, split into partial
blocks (where ``mask_mod`` decides per element) and full blocks (no mask work); every
other block is skipped. The staircase of a probe chunk and the block-diagonal prefill of
several records are mostly empty, so on a GPU this skips most of the attention work that
SDPA with a dense boolean mask pays for (and the mask itself).

``block_mask`` builds it from ``masks.Ranges`` (two key intervals per query row) in
``O(Q * C / 128)`` work: no ``(Q, C)`` tensor is made. ``mask_mod`` reads the same four
range tensors, so the partial blocks are exact.

How the model gets it: transformers' own ``flex_attention`` integration turns any
tensor mask into a ``score_mod`` that ADDS the mask to the scores (a boolean mask then
masks nothing), and compiles flex on every device. So the backend switches the model
to ``eas_flex``, registered here in transformers' ``AttentionInterface``: a ``BlockMask``
goes to flex attention (compiled on CUDA, eager on a CPU, where it is for tests: the
eager kernel is exact but materializes the scores); anything else (no mask, or the
model's own tensor masks in the naive method, sampling and the head check) goes to
SDPA, unchanged. Flex is never handed a tensor mask.

Deliberate limits: attention sinks (gpt-oss) are refused, and so are transformers
versions without ``set_attn_implementation`` and models whose attention does not
dispatch through ``AttentionInterface`` (``_supports_flex_attn`` false).
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

from eas.backends.hf.masks import FULL, SLIDING, Ranges, prefill_ranges, staircase_ranges

IMPLEMENTATION = "eas_flex"
BLOCK = 128  # flex attention's default tile


def block_mask(ranges: Ranges, block: int = BLOCK) -> Any:
    """The ``BlockMask`` of ``ranges`` (one batch row, all heads alike).

    A tile of ``block`` rows x ``block`` keys is full when every row's intervals cover
    all its keys, partial when some row's intervals touch it, absent otherwise. Tiles
    past the end of the rows or keys count as masked there (as ``create_block_mask``
    pads), so an edge tile is never full.
    """
    import torch
    from torch.nn.attention.flex_attention import BlockMask

    q_len, kv_len, dev = int(ranges.lo1.shape[0]), ranges.kv_len, ranges.lo1.device
    n_q, n_kv = -(-q_len // block), -(-kv_len // block)
    k0 = torch.arange(n_kv, device=dev) * block  # (n_kv,) first key of each block
    k1 = k0 + block
    touched = torch.zeros((n_q * block, n_kv), dtype=torch.bool, device=dev)  # padded rows touch nothing
    covered = torch.zeros((n_q * block, n_kv), dtype=torch.bool, device=dev)  # ... and cover nothing
    for lo, hi in ((ranges.lo1, ranges.hi1), (ranges.lo2, ranges.hi2)):
        lo, hi = lo[:, None], hi[:, None]  # (Q, 1)
        touched[:q_len] |= (lo < k1) & (hi > k0) & (hi > lo)
        covered[:q_len] |= (lo <= k0) & (hi >= k1)
    covered[:, k1 > kv_len] = False
    touched = touched.view(n_q, block, n_kv).any(dim=1)  # (n_q, n_kv)
    full = covered.view(n_q, block, n_kv).all(dim=1)
    partial = touched & ~full

    def ordered(blocks: Any) -> tuple[Any, Any]:
        as_int = blocks.to(torch.int32)[None, None]  # (1, 1, n_q, n_kv)
        order = torch.argsort(as_int, dim=-1, descending=True, stable=True)
        return as_int.sum(dim=-1).to(torch.int32), order.to(torch.int32)

    lo1, hi1, lo2, hi2 = ranges.lo1, ranges.hi1, ranges.lo2, ranges.hi2

    def mask_mod(b: Any, h: Any, q: Any, kv: Any) -> Any:
        return ((kv >= lo1[q]) & (kv < hi1[q])) | ((kv >= lo2[q]) & (kv < hi2[q]))

    return BlockMask.from_kv_blocks(
        *ordered(partial), *ordered(full), BLOCK_SIZE=block, mask_mod=mask_mod, seq_lengths=(q_len, kv_len)
    )


class FlexMasks:
    """The block masks of packed scoring for a model's layer types (flex's ``LayerMasks``)."""

    def __init__(self, kinds: frozenset[str], window: int | None, block: int = BLOCK):
        self.kinds, self.window, self.block = kinds, window, block

    def _per_kind(self, make: Any) -> Any:
        masks = {}
        if FULL in self.kinds:
            masks[FULL] = block_mask(make(None), self.block)
        if SLIDING in self.kinds:
            masks[SLIDING] = block_mask(make(int(self.window)), self.block)
        return next(iter(masks.values())) if len(masks) == 1 else masks

    def prefill(self, doc_start: Any, start: int, stop: int) -> Any:
        """Rows ``start .. stop-1`` of the packed sequence (``masks.prefill_ranges``)."""
        return self._per_kind(lambda w: prefill_ranges(doc_start, start, stop, w))

    def staircase(self, ctx_start: Any, ctx_stop: Any, probe_start: Any, query_pos: Any, cache_len: int) -> Any:
        """A probe chunk after ``cache_len`` cached positions (``masks.staircase_ranges``)."""
        return self._per_kind(lambda w: staircase_ranges(ctx_start, ctx_stop, probe_start, query_pos, cache_len, w))


# -- the attention function ----------------------------------------------------------------


def flex_unavailable_reason(model: Any) -> str | None:
    """Why flex attention cannot run this model here, or None when it can."""
    reason = _torch_flex_reason()
    if reason:
        return reason
    try:
        from transformers import AttentionInterface  # noqa: F401
        from transformers.masking_utils import AttentionMaskInterface  # noqa: F401
    except ImportError:
        return "this transformers has no AttentionInterface to register flex attention with"
    if not hasattr(model, "set_attn_implementation"):
        return "this transformers cannot switch a loaded model's attention (set_attn_implementation)"
    if getattr(model, "_supports_flex_attn", True) is False:
        return f"{type(model).__name__} does not support flex attention in transformers"
    if any(getattr(m, "sinks", None) is not None for m in model.modules()):
        return "attention sinks (flex here takes no sink term)"
    return None


def implementation_for(model: Any, attention: str) -> str:
    """The transformers attention implementation that runs ``attention`` on ``model``:
    ``eas_flex`` for flex; for sdpa the model's own SDPA or eager, never a flex one
    (transformers' ``flex_attention`` adds tensor masks to the scores), nor flash (refused
    earlier: it takes no 4-D mask)."""
    if attention == "flex":
        return IMPLEMENTATION
    current = model.config._attn_implementation
    return "sdpa" if current in (IMPLEMENTATION, "flex_attention") else current


def use_implementation(model: Any, implementation: str) -> None:
    """Switch ``model`` to ``implementation`` (registering ``eas_flex`` first) unless it is on it."""
    if model.config._attn_implementation != implementation:
        if implementation == IMPLEMENTATION:
            _register()
        model.set_attn_implementation(implementation)


@functools.cache
def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(IMPLEMENTATION, _attention)
    AttentionMaskInterface.register(IMPLEMENTATION, sdpa_mask)  # the model's own masks: for SDPA


@functools.cache
def _compiled_flex() -> Any:
    import torch
    from torch.nn.attention.flex_attention import flex_attention

    return torch.compile(flex_attention)


def _attention(
    module: Any,
    query: Any,
    key: Any,
    value: Any,
    attention_mask: Any,
    scaling: float | None = None,
    softcap: float | None = None,
    **kwargs: Any,
) -> tuple[Any, None]:
    """transformers' attention signature: a ``BlockMask`` -> flex attention, else SDPA."""
    import torch
    from torch.nn.attention.flex_attention import BlockMask, flex_attention

    if not isinstance(attention_mask, BlockMask):
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, **kwargs)
    if kwargs.get("s_aux") is not None:
        raise ValueError("flex attention here takes no attention sinks; use --attention sdpa")

    score_mod = None
    if softcap is not None:

        def score_mod(score: Any, b: Any, h: Any, q: Any, kv: Any) -> Any:
            return softcap * torch.tanh(score / softcap)

    gqa = query.shape[1] != key.shape[1]
    if query.device.type == "cuda":
        out = _compiled_flex()(
            query, key, value, score_mod=score_mod, block_mask=attention_mask, scale=scaling, enable_gqa=gqa
        )
    else:
        with warnings.catch_warnings():  # eager flex on a CPU is on purpose (exact, for tests)
            warnings.filterwarnings("ignore", message="flex_attention called without torch.compile")
            out = flex_attention(
                query, key, value, score_mod=score_mod, block_mask=attention_mask, scale=scaling, enable_gqa=gqa
            )
    return out.transpose(1, 2).contiguous(), None


def resolve_attention(choice: str, device_type: str, model: Any = None) -> str:
    """``"flex"`` or ``"sdpa"`` for ``--attention auto|flex|sdpa`` on a device type.

    ``auto``: flex on CUDA where it is available (torch's flex with Triton, and, when
    ``model`` is given, a model it can run), SDPA elsewhere. ``flex`` on a model or
    build that cannot take it raises ValueError with the reason.
    """
    if choice not in ("auto", "flex", "sdpa"):
        raise ValueError(f"attention must be 'auto', 'flex' or 'sdpa', not {choice!r}")
    if choice == "sdpa":
        return "sdpa"
    reason = flex_unavailable_reason(model) if model is not None else _torch_flex_reason()
    if choice == "flex":
        if reason:
            raise ValueError(f"--attention flex is not available: {reason}; use --attention sdpa")
        return "flex"
    if device_type != "cuda" or reason:
        return "sdpa"
    return "sdpa" if _torch_flex_reason(cuda=True) else "flex"


def _torch_flex_reason(cuda: bool = False) -> str | None:
    try:
        import torch.nn.attention.flex_attention  # noqa: F401
    except ImportError:
        return "this torch has no flex attention (torch>=2.5 has it)"
    if cuda:
        from torch.utils._triton import has_triton

        if not has_triton():
            return "flex attention on CUDA needs Triton"
    return None
