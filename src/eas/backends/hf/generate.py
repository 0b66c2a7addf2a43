"""Batched sampling with a transformers causal LM: the decoding loop behind ``Backend.sample``.

Left-padded batches hold all n samples of a few questions, decoded with the model's KV
cache by a small loop of our own rather than ``generate``: each prompt is prefilled once
and its cache copied n times, and a sample leaves the batch as soon as it ends (on 2 CPU
cores ``generate`` spent most of its time on finished rows and on prefilling every
copy). Temperature and top-p (nucleus) sampling as in transformers. Every batch has its
own generator seeded from ``SamplingConfig.seed`` and the batch index, so the same inputs
and settings give the same samples on a rerun (on the same hardware and library versions).

The same loop runs monitored sampling (``DecodeLoop`` with a ``Watch``,
``eas.backends.watch``): a step may carry the trigger after the new token
(``eas.backends.hf.online``), a row may stop reasoning and be forced to answer, and a
row that ends may need a few catch-up probes. Without a watch, or on a step that carries
no probe, the loop runs exactly the calls of an unmonitored run, so the samples are the same.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from typing import Any

from eas.backends.hf.online import TriggerProbe, full_cache, returned_cache
from eas.backends.prompts import left_padded_batch
from eas.backends.watch import Emitted, Watch
from eas.config import SamplingConfig
from eas.maths.entropy import logprobs_and_entropy_from_logits

__all__ = ["DecodeLoop", "batch_seed", "generate_samples", "returned_cache"]


def batch_seed(config: SamplingConfig, batch_index: int) -> int:
    """The generator seed of sampler batch ``batch_index`` (monitored or not)."""
    return config.seed * 1_000_003 + batch_index


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
            new = DecodeLoop(model, tokenizer, group, config, batch_seed(config, b)).run()
            texts = tokenizer.batch_decode(new, skip_special_tokens=True)
            out += [[t.strip() for t in texts[i * config.n : (i + 1) * config.n]] for i in range(len(group))]
            if bar is not None:
                bar.update(len(texts))
    finally:
        if bar is not None:
            bar.close()
    return out


def eos_ids(model: Any, tokenizer: Any) -> list[int]:
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


class DecodeLoop:
    """n samples of each prompt, decoded as one batch (row ``i * n + k`` = sample k of prompt i).

    Each prompt is prefilled once and its KV cache copied n times. Decoding then drops a
    row from the batch (and its cache) as soon as it ends, so short answers do not pay
    for long ones; rows never interact, so this changes no sample.

    With a ``watch``: each step reports the emitted tokens, may carry a probe, and may
    switch rows to the answer phase (forced tokens, then greedy decoding until the watch
    ends the row); a reasoning row still ends at EOS or after ``max_new_tokens`` tokens.

    Attributes:
        tokens: ``tokens[r]``: the ids row r emitted (EOS included when it ended on one).
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        prompts: Sequence[str | Sequence[int]],
        config: SamplingConfig,
        seed: int,
        watch: Watch | None = None,
    ):
        self.model, self.tokenizer, self.prompts, self.config, self.seed = model, tokenizer, list(prompts), config, seed
        self.watch = watch
        # transformers 5.x names the cache argument `cache`, 4.x `past_key_values`.
        self.cache_kw = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
        self.probe = None if watch is None else TriggerProbe(model, self.cache_kw, watch.suffix_ids, watch.track_ids)
        self.tokens: list[list[int]] = [[] for _ in range(len(self.prompts) * config.n)]

    def run(self) -> list[list[int]]:
        """Decode to the end; the token ids of every row."""
        for _ in self.steps():
            pass
        return self.tokens

    def steps(self) -> Iterator[int]:
        """Decode step by step, yielding the step number after each (the loop can be streamed).

        Inference mode is entered for each step and left before the yield, so the caller's
        own code between steps runs in its usual autograd mode.
        """
        import torch

        with torch.inference_mode():
            self._prefill()
        step = 0
        while self.active:
            with torch.inference_mode():
                self._step()
            yield step
            step += 1

    # -- internals ------------------------------------------------------------------

    def _prefill(self) -> None:
        import torch

        model, n = self.model, self.config.n
        device = next(model.parameters()).device
        ids, mask = left_padded_batch(self.tokenizer, self.prompts)  # (q, L): the prompt ids every command uses
        ids, mask = ids.to(device), mask.to(device)
        pos = (mask.long().cumsum(-1) - 1).clamp(min=0)  # pads get position 0 and are masked out
        start = full_cache(model) if self.watch is not None else None
        kwargs = {} if start is None else {self.cache_kw: start}
        out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, logits_to_keep=1, **kwargs)
        self.cache = returned_cache(out)
        self.cache.batch_repeat_interleave(n)  # (q * n, ...) in place
        self.logits = out.logits[:, -1].repeat_interleave(n, dim=0)  # (b, V)
        self.mask = mask.repeat_interleave(n, dim=0)
        self.next_pos = pos[:, -1:].repeat_interleave(n, dim=0) + 1  # (b, 1)
        self.prompt_width = int(ids.shape[1])
        self.prompt_len = mask.sum(-1).repeat_interleave(n).tolist()  # each row's own prompt length
        self.rows = torch.arange(len(self.tokens), device=device)  # which sample each batch row is
        self.eos = torch.tensor(eos_ids(model, self.tokenizer), device=device)
        self.generator = torch.Generator(device=device).manual_seed(self.seed)
        self.forced: dict[int, list[int]] = {}  # answer-phase rows -> token ids still to force
        self.active = True

    def _step(self) -> None:
        import torch

        new = _next_tokens(self.logits, self.config, self.generator)  # (b,)
        rows = self.rows.tolist()
        if self.watch is not None:
            new = self._answer_tokens(rows, new)
        for r, t in zip(rows, new.tolist(), strict=True):
            self.tokens[r].append(t)
        answering = [r in self.forced for r in rows]
        budget = torch.tensor(
            [not a and len(self.tokens[r]) >= self.config.max_new_tokens for r, a in zip(rows, answering, strict=True)],
            device=new.device,
        )
        is_eos = torch.isin(new, self.eos)
        ending = is_eos | budget
        if self.watch is not None:
            lp, h = logprobs_and_entropy_from_logits(self.logits, new)
            stats = zip(rows, new.tolist(), lp.tolist(), h.tolist(), answering, is_eos.tolist(), strict=True)
            report = [Emitted(r, tok, logp, ent, forced, eos) for r, tok, logp, ent, forced, eos in stats]
            done = self.watch.emitted(report)
            if done:
                ending |= torch.tensor([r in done for r in rows], device=new.device)
        if bool(ending.any()):
            if self.watch is not None:
                for i in ending.nonzero().squeeze(-1).tolist():
                    self._end_row(i, rows[i])
            if bool(ending.all()):
                self.active = False
                return
            idx = (~ending).nonzero().squeeze(-1)
            self.cache.batch_select_indices(idx)
            self.rows, new, self.mask, self.next_pos = self.rows[idx], new[idx], self.mask[idx], self.next_pos[idx]
            rows = self.rows.tolist()
        self.mask = torch.cat([self.mask, self.mask.new_ones(self.mask.shape[0], 1)], dim=-1)
        if self.probe is not None and self.watch.probe_now(rows):
            self.logits, self.cache, probes = self.probe.step(new, self.mask, self.next_pos, self.cache)
        else:
            out = self.model(
                input_ids=new[:, None],
                attention_mask=self.mask,
                position_ids=self.next_pos,
                use_cache=True,
                **{self.cache_kw: self.cache},
            )
            self.cache, self.logits, probes = returned_cache(out), out.logits[:, -1], None
        self.next_pos = self.next_pos + 1
        if self.watch is not None:
            for r, ids in self.watch.measured(rows, probes).items():
                if ids:
                    self.forced[r] = list(ids)
                else:
                    self.forced.setdefault(r, [])

    def _answer_tokens(self, rows: list[int], new: Any) -> Any:
        """Answer-phase rows take their next forced token, else the greedy one."""
        if not self.forced:
            return new
        new = new.clone()
        for i, r in enumerate(rows):
            queue = self.forced.get(r)
            if queue is None:
                continue
            new[i] = queue.pop(0) if queue else int(self.logits[i].argmax())
        return new

    def _end_row(self, index: int, row: int) -> None:
        """Catch-up probes for a row about to leave the batch, then tell the watch."""
        positions = self.watch.catch_up(row)
        probes = {}
        if positions:
            probes = self.probe.catch_up(
                self.cache, index, self.mask[index], self.prompt_width, int(self.prompt_len[row]), positions
            )
        self.watch.ended(row, probes)
