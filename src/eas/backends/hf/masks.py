"""The attention masks of packed scoring (torch): prefill and probe staircase, per layer type.

True = may attend. ``eas.backends.hf.backend`` passes them to the model as ``attention_mask``:
dense 4-D boolean (or additive) tensors for SDPA and eager attention, and, for flex
attention, block masks (``eas.backends.hf.flex``) built from ``Ranges``: the same masks
written as two intervals of key indices per query row, so no ``[Q, C]`` tensor exists.

Models with sliding-window layers (Gemma 2/3, Mistral-style, gpt-oss, Qwen2 with
``use_sliding_window``) enforce the window through the mask alone, so every mask here
can be restricted to a window: a query at position q (its position in its own record's
context, i.e. its position id) sees the keys at positions q - W + 1 .. q, as
transformers' ``sliding_window_overlay`` does (``kv_idx > q_idx - W``). ``LayerMasks``
gives each layer type its mask: one tensor when all layers are alike, else a dict keyed
by layer type, which the models with mixed layers accept (``config.layer_types``).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

FULL = "full_attention"
SLIDING = "sliding_attention"


def prefill_mask(doc_ids: Any, start: int, stop: int) -> Any:
    """Causal, block-diagonal mask for rows ``start..stop-1`` of a packed sequence.

    Args:
        doc_ids: long tensor ``(N,)``, which record each position of the packed sequence
            belongs to.

    Returns:
        bool tensor ``(1, 1, stop - start, stop)``; True = may attend.
    """
    import torch

    rows = torch.arange(start, stop, device=doc_ids.device)
    cols = torch.arange(stop, device=doc_ids.device)
    mask = (cols[None, :] <= rows[:, None]) & (doc_ids[None, :stop] == doc_ids[start:stop, None])
    return mask[None, None]


def staircase_mask(ctx_start: Any, ctx_stop: Any, probe_start: Any, cache_len: int) -> Any:
    """Mask for a chunk of probes appended after a cache of ``cache_len`` positions.

    Row q is one suffix token of some probe. It may attend to its own context in the
    cache, ``[ctx_start[q], ctx_stop[q])``, and to its probe's suffix tokens up to
    itself, ``[cache_len + probe_start[q], cache_len + q]``.

    Args:
        ctx_start, ctx_stop, probe_start: long tensors ``(Q,)``, one entry per row.

    Returns:
        bool tensor ``(1, 1, Q, cache_len + Q)``.
    """
    import torch

    q = ctx_start.shape[0]
    cols = torch.arange(cache_len + q, device=ctx_start.device)[None, :]  # (1, C)
    rows = torch.arange(q, device=ctx_start.device)[:, None] + cache_len  # (Q, 1)
    in_context = (cols >= ctx_start[:, None]) & (cols < ctx_stop[:, None])
    in_suffix = (cols >= probe_start[:, None] + cache_len) & (cols <= rows)
    return (in_context | in_suffix)[None, None]


def window_mask(query_pos: Any, key_pos: Any, window: int) -> Any:
    """Sliding window: query at position q sees keys at positions > q - window.

    Args:
        query_pos: long tensor ``(Q,)``, the position id of each query row.
        key_pos: long tensor ``(C,)``, the position id of each key column.

    Returns:
        bool tensor ``(1, 1, Q, C)``; combine with ``&`` with a staircase or prefill mask,
        which already keeps each query within its own record.
    """
    return (key_pos[None, :] > query_pos[:, None] - window)[None, None]


@dataclass(frozen=True)
class Ranges:
    """A mask as key intervals: row q may attend to keys ``[lo1[q], hi1[q])`` and ``[lo2[q], hi2[q])``.

    Every mask of packed scoring has this form (a row sees part of its own record's
    context and part of its own probe's suffix, windowed on sliding layers), so a block
    mask can be derived from four ``(Q,)`` long tensors instead of a ``(Q, C)`` one.
    ``kv_len`` is the number of key columns C.
    """

    lo1: Any
    hi1: Any
    lo2: Any
    hi2: Any
    kv_len: int

    def dense(self) -> Any:
        """The same mask as a bool tensor ``(1, 1, Q, C)`` (tests; the SDPA path builds its own)."""
        import torch

        cols = torch.arange(self.kv_len, device=self.lo1.device)[None, :]
        first = (cols >= self.lo1[:, None]) & (cols < self.hi1[:, None])
        second = (cols >= self.lo2[:, None]) & (cols < self.hi2[:, None])
        return (first | second)[None, None]


def prefill_ranges(doc_start: Any, start: int, stop: int, window: int | None = None) -> Ranges:
    """``prefill_mask`` (and, with ``window``, ``window_mask`` on top) as ``Ranges``.

    Args:
        doc_start: long tensor ``(N,)``, the index in the packed sequence where the
            record holding each position starts (positions restart at 0 there, so a
            key's position distance to a query of the same record is its index distance).
    """
    import torch

    rows = torch.arange(start, stop, device=doc_start.device)
    lo = doc_start[start:stop]
    if window is not None:
        lo = torch.maximum(lo, rows - window + 1)
    empty = torch.zeros_like(rows)
    return Ranges(lo, rows + 1, empty, empty, stop)


def staircase_ranges(
    ctx_start: Any, ctx_stop: Any, probe_start: Any, query_pos: Any, cache_len: int, window: int | None = None
) -> Ranges:
    """``staircase_mask`` (and, with ``window``, ``window_mask`` on top) as ``Ranges``.

    Row q's context ``[ctx_start, ctx_stop)`` holds positions 0 .. ctx_stop - ctx_start - 1
    of its record, and its probe's suffix rows ``probe_start .. q`` hold the positions
    right after; the window keeps the keys whose position is > ``query_pos[q] - window``.
    """
    import torch

    rows = torch.arange(ctx_start.shape[0], device=ctx_start.device)
    lo1, lo2 = ctx_start, probe_start
    if window is not None:
        lo1 = torch.maximum(lo1, ctx_start + query_pos - window + 1)
        lo2 = torch.maximum(lo2, rows - window + 1)
    return Ranges(lo1, ctx_stop, lo2 + cache_len, rows + cache_len + 1, cache_len + rows.shape[0])


@dataclass(frozen=True)
class LayerMasks:
    """Which attention masks a model's layers take, and in what form.

    Attributes:
        kinds: the layer types present (``full_attention``, ``sliding_attention``).
        window: the sliding window W, when some layer slides.
        additive: eager attention adds the mask to the scores: it needs 0 / finfo.min
            floats in the model dtype (a boolean mask there would be silently wrong);
            sdpa and flex take booleans.
        dtype: the model dtype (for additive masks).
    """

    kinds: frozenset[str]
    window: int | None
    additive: bool
    dtype: Any

    @property
    def sliding(self) -> bool:
        return SLIDING in self.kinds

    def build(self, causal: Any, query_pos: Any = None, key_pos: Any = None) -> Any:
        """The ``attention_mask`` argument from the causal (staircase/prefill) mask.

        ``query_pos`` and ``key_pos`` (position ids of rows and columns) are needed when
        some layer slides.
        """
        masks = {}
        if FULL in self.kinds:
            masks[FULL] = causal
        if self.sliding:
            masks[SLIDING] = causal & window_mask(query_pos, key_pos, int(self.window))
        masks = {k: self._form(m) for k, m in masks.items()}
        return next(iter(masks.values())) if len(masks) == 1 else masks

    def _form(self, mask: Any) -> Any:
        if not self.additive:
            return mask
        import torch

        return torch.zeros(mask.shape, dtype=self.dtype, device=mask.device).masked_fill(
            ~mask, torch.finfo(self.dtype).min
        )


def layer_kinds(config: Any) -> tuple[frozenset[str], int | None]:
    """The attention layer types of a model config and its sliding window (or None)."""
    window = getattr(config, "sliding_window", None)
    types = getattr(config, "layer_types", None)
    if types:
        kinds = frozenset(types)
    elif window and getattr(config, "use_sliding_window", True):
        kinds = frozenset({SLIDING})  # Mistral-style: every layer slides
    else:
        kinds = frozenset({FULL})
    return kinds, (int(window) if window and SLIDING in kinds else None)


def masks_unsupported_reason(model: Any) -> str | None:
    """Why per-layer-type masks cannot be given to this model, or None when they can."""
    from eas.backends.hf.composite import text_config

    config = text_config(model.config)
    kinds, window = layer_kinds(config)
    other = sorted(kinds - {FULL, SLIDING})
    if other:
        return f"layer types {other} (only full and sliding-window attention can be re-masked)"
    if SLIDING in kinds and not window:
        return "sliding-window layers without a window size"
    if not getattr(config, "layer_types", None) and window and "sliding_window" not in _decoder_source(model):
        # A window in the config that the model's own code does not read: which layers slide is unknown.
        return f"sliding-window attention (window {window}) that {type(model).__name__} does not declare per layer"
    impl = getattr(config, "_attn_implementation", None)
    if impl and impl.startswith("flash"):
        return f"attention implementation {impl!r} takes no 4-D mask (load with sdpa or eager)"
    if len(kinds) > 1 and not _takes_mask_per_layer_type(model):
        return f"mixed layer types {sorted(kinds)} but {type(model).__name__} takes a single mask"
    return None


def _takes_mask_per_layer_type(model: Any) -> bool:
    """Whether the decoder's forward accepts ``attention_mask`` as a dict keyed by layer type.

    transformers' models with mixed layers read ``attention_mask`` as that dict when it
    is one (``if not isinstance(causal_mask_mapping := attention_mask, dict)``).
    """
    return "attention_mask, dict)" in _decoder_source(model)


def _decoder_source(model: Any) -> str:
    """Source of the base model's forward (empty when it cannot be read)."""
    decoder = getattr(model, "base_model", model)
    try:
        return inspect.getsource(type(decoder).forward)
    except (OSError, TypeError):
        return ""
