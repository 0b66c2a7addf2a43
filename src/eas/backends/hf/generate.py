"""Batched sampling with a transformers causal LM: the decoding loop behind ``Backend.sample``.

Left-padded batches hold all n samples of a few questions, decoded with the model's KV
cache by a small loop of our own rather than ``generate``: each prompt is prefilled once
and its cache copied n times, and a sample leaves the batch as soon as it ends (on 2 CPU
cores ``generate`` spent most of its time on finished rows and on prefilling every
copy). Temperature and top-p (nucleus) sampling as in transformers. Every batch has its
own generator seeded from ``SamplingConfig.seed`` and the batch index, so the same inputs
and settings give the same samples on a rerun (on the same hardware and library versions).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eas.backends.prompts import left_padded_batch
from eas.config import SamplingConfig


def generate_samples(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    config: SamplingConfig,
    progress: bool = False,
    first_batch: int = 0,
) -> list[list[str]]:
    """``config.n`` sampled continuations of every prompt, batched.

    Args:
        model: a transformers causal LM.
        tokenizer: its tokenizer.
        prompts: prompt texts (from ``build_prompt``), tokenized as ``eas.backends.prompts.text_prompt_ids``.
        config: sampling settings.
        progress: show a progress bar (samples/s).
        first_batch: index of the first batch, which seeds it (a resumed run continues
            with the seeds of an uninterrupted one).

    Returns:
        ``samples[i][k]``: sample k of prompt i, decoded without special tokens.
    """

    per_batch = max(1, config.batch_size // config.n)  # questions per batch
    out: list[list[str]] = []
    bar = None
    if progress:
        from eas.progress import open_bar

        bar = open_bar(len(prompts) * config.n, unit="sample", desc="sampling")
    try:
        for b, start in enumerate(range(0, len(prompts), per_batch), start=first_batch):
            group = list(prompts[start : start + per_batch])
            new = _generate_group(model, tokenizer, group, config, seed=config.seed * 1_000_003 + b)
            texts = tokenizer.batch_decode(new, skip_special_tokens=True)
            out += [[t.strip() for t in texts[i * config.n : (i + 1) * config.n]] for i in range(len(group))]
            if bar is not None:
                bar.update(len(texts))
    finally:
        if bar is not None:
            bar.close()
    return out


def returned_cache(output: Any) -> Any:
    """The KV cache a forward pass returned (``cache`` in transformers 5.x, else ``past_key_values``)."""
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values


def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
    """Token ids that end a sample: the tokenizer's EOS and the model's generation EOS ids."""
    ids = {tokenizer.eos_token_id}
    gen = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids |= set(gen) if isinstance(gen, (list, tuple)) else {gen}
    return sorted(i for i in ids if i is not None)


def _next_tokens(logits: Any, config: SamplingConfig, generator: Any) -> Any:
    """One token per row: greedy at temperature 0, else temperature + top-p (nucleus) sampling."""
    import torch

    if config.temperature == 0:
        return logits.argmax(dim=-1)
    probs = (logits.float() / config.temperature).softmax(dim=-1)  # (b, V)
    if config.top_p < 1.0:
        sorted_p, order = probs.sort(dim=-1, descending=True)
        # drop a token when the tokens ranked above it already hold top_p (the first always stays)
        drop = (sorted_p.cumsum(dim=-1) - sorted_p) >= config.top_p
        sorted_p = sorted_p.masked_fill(drop, 0.0)
        probs = torch.zeros_like(probs).scatter_(-1, order, sorted_p)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def _generate_group(
    model: Any, tokenizer: Any, prompts: list[str], config: SamplingConfig, seed: int
) -> list[list[int]]:
    """New token ids of n samples per prompt (row i * n + k = sample k of prompt i).

    Each prompt is prefilled once and its KV cache copied n times. Decoding then drops a
    row from the batch (and its cache) as soon as it ends, so short answers do not pay
    for long ones; rows never interact, so this changes no sample.
    """
    import inspect

    import torch

    device = next(model.parameters()).device
    ids, mask = left_padded_batch(tokenizer, prompts)  # (q, L): the prompt ids every command uses
    ids, mask = ids.to(device), mask.to(device)
    pos = (mask.long().cumsum(-1) - 1).clamp(min=0)  # pads get position 0 and are masked out
    # transformers 5.x names the cache argument `cache`, 4.x `past_key_values`.
    cache_kw = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    eos = torch.tensor(_eos_ids(model, tokenizer), device=device)
    generator = torch.Generator(device=device).manual_seed(seed)
    n_rows = len(prompts) * config.n
    tokens: list[list[int]] = [[] for _ in range(n_rows)]
    with torch.inference_mode():
        out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, logits_to_keep=1)
        cache = returned_cache(out)
        cache.batch_repeat_interleave(config.n)  # (q * n, ...) in place
        logits = out.logits[:, -1].repeat_interleave(config.n, dim=0)  # (b, V)
        mask = mask.repeat_interleave(config.n, dim=0)
        next_pos = pos[:, -1:].repeat_interleave(config.n, dim=0) + 1  # (b, 1)
        rows = torch.arange(n_rows, device=device)  # which sample each batch row is
        for step in range(config.max_new_tokens):
            new = _next_tokens(logits, config, generator)  # (b,)
            for r, t in zip(rows.tolist(), new.tolist(), strict=True):
                tokens[r].append(t)
            if step == config.max_new_tokens - 1:
                break
            keep = ~torch.isin(new, eos)
            if not bool(keep.all()):
                if not bool(keep.any()):
                    break
                idx = keep.nonzero().squeeze(-1)
                cache.batch_select_indices(idx)
                rows, new, mask, next_pos = rows[idx], new[idx], mask[idx], next_pos[idx]
            mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=-1)
            out = model(
                input_ids=new[:, None], attention_mask=mask, position_ids=next_pos, use_cache=True, **{cache_kw: cache}
            )
            cache = returned_cache(out)
            logits = out.logits[:, -1]
            next_pos = next_pos + 1
    return tokens
