"""The 4-D boolean attention masks of packed scoring (torch): prefill and probe staircase.

True = may attend. ``eas.backends.hf`` passes them to the model as ``attention_mask``.
"""

from __future__ import annotations

from typing import Any


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
