"""The forced-answer probe inside a decoding step: one staircase step per generated token.

A monitored step feeds each row's new token x_t followed by the trigger's s tokens
(``[x_t, trigger_1 .. trigger_s]``, position ids continuing from x_t). With one probe per
row, the model's own causal mask over these 1 + s tokens is exactly the staircase of
packed scoring (docs/architecture.md): x_t attends to the cache; trigger token j attends
to the cache, x_t and trigger tokens < j. So:

* x_t's row goes through the model's own head, as in an unmonitored step
  (``logits_to_keep`` picks it), and gives the next token;
* the last trigger token's final hidden state (taken from the base model's output by a
  forward hook) goes through the float32 head (``Float32Head``) on that row alone, which
  gives H_t over the whole vocabulary, the top probability and any tracked tokens. When
  the model's own head is float32 already (a float32 model), that row simply rides in the
  same head call as x_t's (``logits_to_keep`` = both rows): the same float32 logits, and
  the head's weights are read once per step instead of twice;
* the s trigger entries are cropped from the cache at once, so the next step sees the
  cache of an unmonitored run.

``catch_up`` probes positions of one row after the fact, on a copy of that row's cache
cut to the position (stratified probing draws the last block's position and T-1 only
once T is known).

Sliding-window layers (Gemma 2/3, ...): a sliding cache layer keeps only the last W-1
keys, and the trigger's keys would push real ones out before being cropped. A monitored
run therefore keeps every key on every layer (``full_cache``); the window is applied by
the model's own mask, as in an unmonitored step. Memory then grows with the length on
every layer.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from eas.backends.hf.head import Float32Head
from eas.backends.hf.masks import SLIDING, layer_kinds, masks_unsupported_reason
from eas.backends.watch import Probe
from eas.maths.entropy import entropy_bits_from_logits


def online_unsupported_reason(model: Any) -> str | None:
    """Why online probes cannot run in this model's decoding loop, or None when they can."""
    reason = masks_unsupported_reason(model)
    if reason:
        return reason
    if getattr(model, "base_model", None) is None or model.base_model is model:
        return f"{type(model).__name__} has no separate base model whose hidden states the probe can read"
    return None


def full_cache(model: Any) -> Any:
    """A cache that keeps every key on every layer, for a model with sliding-window layers; else None
    (the model's own cache is then the same as an unmonitored run's)."""
    kinds, _ = layer_kinds(model.config)
    if SLIDING not in kinds:
        return None
    from transformers import DynamicCache

    return DynamicCache()


class TriggerProbe:
    """Runs monitored steps and catch-up probes for one decoding loop.

    ``share_head`` (class attribute): let a float32 head give the probe's logits in x_t's
    head call; off, the probe always goes through ``Float32Head`` (what a bf16 model does).

    Args:
        model: the causal LM.
        cache_kw: the name of the forward's cache argument (``cache`` or ``past_key_values``).
        suffix_ids: the trigger's token ids (s >= 1).
        track_ids: token ids whose probability each probe also returns.
    """

    share_head = True

    def __init__(self, model: Any, cache_kw: str, suffix_ids: Sequence[int], track_ids: Sequence[int] = ()):
        import torch

        reason = online_unsupported_reason(model)
        if reason:
            raise ValueError(f"online probes do not support {reason}")
        if not suffix_ids:
            raise ValueError("the trigger has no tokens")
        self.model = model
        self.decoder = model.base_model
        self.head = Float32Head(model)
        self.cache_kw = cache_kw
        params = inspect.signature(self.decoder.forward).parameters
        self.decoder_cache_kw = "cache" if "cache" in params else "past_key_values"
        device = next(model.parameters()).device
        self.suffix = torch.tensor(list(suffix_ids), dtype=torch.long, device=device)  # (s,)
        self.track = torch.tensor(list(track_ids), dtype=torch.long, device=device)  # (K,)
        self.s = len(suffix_ids)
        self.keep_first = torch.tensor([0], device=device)
        self.keep_both = torch.tensor([0, self.s], device=device)
        # A float32 head gives the probe's float32 logits itself (one head call for both rows).
        self.own_head = self.share_head and self.head.weight.dtype == torch.float32

    def step(self, new: Any, mask: Any, next_pos: Any, cache: Any) -> tuple[Any, Any, list[Probe]]:
        """One monitored step: ``(next-token logits (b, V), cache, probes)``.

        Args:
            new: ``(b,)`` the tokens x_t to feed.
            mask: ``(b, C + 1)`` the 2-D attention mask with x_t's column already appended.
            next_pos: ``(b, 1)`` x_t's position ids.
            cache: the KV cache of C columns; it holds C + 1 after the step.
        """
        import torch

        b, s = new.shape[0], self.s
        ids = torch.cat([new[:, None], self.suffix.expand(b, s)], dim=1)  # (b, 1 + s)
        wide = torch.cat([mask, mask.new_ones(b, s)], dim=1)
        pos = next_pos + torch.arange(s + 1, device=new.device)  # (b, 1 + s)
        kwargs = {
            "input_ids": ids,
            "attention_mask": wide,
            "position_ids": pos,
            "use_cache": True,
            self.cache_kw: cache,
        }
        if self.own_head:
            out = self.model(**kwargs, logits_to_keep=self.keep_both)  # (b, 2, V): x_t's row, the last trigger row
            probes = self.probes(out.logits[:, 1].float())
        else:
            captured: list[Any] = []
            hook = self.decoder.register_forward_hook(lambda _m, _a, o: captured.append(o.last_hidden_state))
            try:
                out = self.model(**kwargs, logits_to_keep=self.keep_first)  # x_t's row only, the model's own head
            finally:
                hook.remove()
            probes = self.measure(captured[-1][:, -1])
        cache = returned_cache(out)
        cache.crop(-s)  # the trigger's entries: the next step sees an unmonitored cache
        return out.logits[:, 0], cache, probes

    def measure(self, hidden: Any) -> list[Probe]:
        """Probes of final hidden states ``(n, d)`` (last trigger tokens), through the float32 head."""
        return self.probes(self.head.logits(hidden))

    def probes(self, logits: Any) -> list[Probe]:
        """Probes of float32 logits ``(n, V)``: entropy (bits), top probability, tracked probabilities."""
        entropy = entropy_bits_from_logits(logits).double().cpu().tolist()
        logp = logits.log_softmax(dim=-1)
        top = logp.max(dim=-1).values.exp().double().cpu().tolist()
        tracked = logp[:, self.track].exp().double().cpu().tolist() if self.track.numel() else [[]] * len(top)
        return [Probe(h, p, tuple(k)) for h, p, k in zip(entropy, top, tracked, strict=True)]

    def catch_up(self, cache: Any, index: int, mask: Any, prompt_width: int, prompt_len: int, positions: Sequence[int]):
        """Probes at ``positions`` of the row at batch index ``index``, on a copy of its cache.

        Args:
            cache: the batch's cache (left untouched).
            mask: ``(C,)`` the row's 2-D attention mask over the cache's C columns.
            prompt_width: the padded prompt width (x_j sits at column ``prompt_width + j - 1``).
            prompt_len: the row's own prompt length (x_j has position id ``prompt_len + j - 1``).
            positions: the t to probe (each needs x_1 .. x_t in the cache).

        Returns:
            ``{t: Probe}``.
        """
        import torch
        from transformers import DynamicCache

        if not positions:
            return {}
        sub = DynamicCache([(layer.keys[index : index + 1], layer.values[index : index + 1]) for layer in cache.layers])
        length = sub.get_seq_length()
        out: dict[int, Probe] = {}
        for t in sorted(set(positions), reverse=True):
            keep = prompt_width + t
            if keep > length:
                raise ValueError(f"catch-up probe at t={t} needs {keep} cached columns, the cache has {length}")
            if keep < length:
                sub.crop(keep - length)  # negative: drop the columns after x_t
            length = keep
            wide = torch.cat([mask[:keep], mask.new_ones(self.s)])[None]
            pos = (prompt_len + t + torch.arange(self.s, device=mask.device))[None]
            hidden = self.decoder(
                input_ids=self.suffix[None],
                attention_mask=wide,
                position_ids=pos,
                use_cache=True,
                **{self.decoder_cache_kw: sub},
            ).last_hidden_state[0, -1:]
            sub.crop(-self.s)
            out[t] = self.measure(hidden)[0]
        return out


def returned_cache(output: Any) -> Any:
    """The KV cache a forward pass returned (``cache`` in transformers 5.x, else ``past_key_values``)."""
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values
