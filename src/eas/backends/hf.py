"""In-process transformers backend: exact full-vocabulary entropies, packed probes.

The packed method (docs/architecture.md, "The core algorithm"):

1. The records of a batch are laid end to end in one sequence (block-diagonal causal
   attention, positions restarting per record) and prefilled in segments; the prefill
   fills the KV cache and yields the response tokens' own log-probs and entropies.
2. Probes go in chunks: each probe is its suffix tokens, positioned right after x_t,
   attending to its record's cache up to x_t and to its own earlier suffix tokens (a
   staircase mask). Logits are computed only for each probe's last suffix token.
3. The probe entries are cropped from the cache after each chunk. Chunks run from the
   last probe back to the first, and before each chunk the cache is cut to the last
   position it can see, so attention work shrinks with t instead of spanning the
   whole sequence for every probe.

The naive method runs one forward pass per probe; it is the reference the tests use.

Deliberate limits: models with sliding-window or non-attention layers (the cache cannot
be cropped and re-masked freely) are scored with the naive method only.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from eas.backends.base import EncodedRecord, Measurement
from eas.backends.hf_generate import generate_samples, returned_cache
from eas.backends.hf_masks import prefill_mask, staircase_mask
from eas.config import EngineConfig, SamplingConfig
from eas.maths.entropy import entropy_bits_from_logits, logprobs_and_entropy_from_logits

log = logging.getLogger(__name__)

# Rows of full-vocabulary logits turned into entropies at once (bounds float32 copies).
_ENTROPY_ROWS = 512


def _require_torch() -> Any:
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the hf backend needs PyTorch: pip install 'torch>=2.4'") from exc
    return torch


def packed_unsupported_reason(config: Any) -> str | None:
    """Why the packed method cannot run this architecture, or None when it can."""
    layer_types = getattr(config, "layer_types", None) or []
    if any(t != "full_attention" for t in layer_types):
        return f"layer types {sorted(set(layer_types))} (only full attention can be re-masked)"
    if getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", True):
        return f"sliding-window attention (window {config.sliding_window})"
    impl = getattr(config, "_attn_implementation", None)
    if impl and impl.startswith("flash"):
        return f"attention implementation {impl!r} takes no 4-D mask (load with sdpa or eager)"
    return None


class HFBackend:
    """Measures records with a transformers causal LM held in this process."""

    def __init__(self, model: Any, tokenizer: Any, engine: EngineConfig | None = None, name: str | None = None):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.engine = engine or EngineConfig()
        self.name = name or getattr(model.config, "_name_or_path", "") or type(model).__name__
        self.device = next(model.parameters()).device
        self.max_context = getattr(model.config, "max_position_embeddings", None)
        # transformers 5.x renamed the forward's `past_key_values` to `cache`.
        params = inspect.signature(model.forward).parameters
        self._cache_kwarg = "cache" if "cache" in params else "past_key_values"
        reason = packed_unsupported_reason(model.config)
        if reason and self.engine.method == "packed":
            raise ValueError(f"the packed method does not support {reason}; use method='naive' (--method naive)")

    def describe(self) -> dict[str, Any]:
        return {
            "backend": "hf",
            "model": self.name,
            "device": str(self.device),
            "dtype": str(self.model.dtype).removeprefix("torch."),
            "method": self.engine.method,
            "vocab_size": int(self.model.config.vocab_size),
        }

    # -- public -------------------------------------------------------------------------

    def sample(
        self, prompts: Sequence[str], config: SamplingConfig, *, progress: bool = False, first_batch: int = 0
    ) -> list[list[str]]:
        return generate_samples(self.model, self.tokenizer, prompts, config, progress=progress, first_batch=first_batch)

    def measure(self, batch: Sequence[EncodedRecord]) -> list[Measurement]:
        torch = _require_torch()
        with torch.inference_mode():
            if self.engine.method == "naive":
                return [self._measure_naive(e) for e in batch]
            return self._measure_packed(list(batch))

    # -- helpers ------------------------------------------------------------------------

    def _attention_mask(self, mask: Any) -> Any:
        """Boolean mask (True = attend) in the form the attention implementation takes."""
        if self.model.config._attn_implementation in ("sdpa", "flex_attention"):
            return mask
        torch = _require_torch()
        dtype = self.model.dtype
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(~mask, torch.finfo(dtype).min)

    def _token_stats(self, logits: Any, targets: Any) -> tuple[np.ndarray, np.ndarray]:
        """Log-probs of ``targets`` and entropies, a slice of rows at a time."""
        lps, hs = [], []
        for a in range(0, logits.shape[0], _ENTROPY_ROWS):
            lp, h = logprobs_and_entropy_from_logits(logits[a : a + _ENTROPY_ROWS], targets[a : a + _ENTROPY_ROWS])
            lps.append(lp.double().cpu().numpy())
            hs.append(h.double().cpu().numpy())
        if not lps:
            return np.zeros(0), np.zeros(0)
        return np.concatenate(lps), np.concatenate(hs)

    def _probe_entropies(self, logits: Any) -> np.ndarray:
        out = [
            entropy_bits_from_logits(logits[a : a + _ENTROPY_ROWS]) for a in range(0, logits.shape[0], _ENTROPY_ROWS)
        ]
        return np.concatenate([h.double().cpu().numpy() for h in out]) if out else np.zeros(0)

    def _tracked_probs(self, logits: Any, track: Sequence[tuple[int, ...]]) -> list[np.ndarray]:
        """Probability of row i's tracked token ids ``track[i]`` under ``softmax(logits[i])``.

        Computed in float32 like the entropies: ``exp(logit - logsumexp(logits))``.
        """
        torch = _require_torch()
        width = max((len(t) for t in track), default=0)
        if width == 0:
            return [np.zeros(0) for _ in track]
        idx = torch.tensor([list(t) + [0] * (width - len(t)) for t in track], device=logits.device)  # (n, K)
        probs = []
        for a in range(0, logits.shape[0], _ENTROPY_ROWS):
            rows = logits[a : a + _ENTROPY_ROWS].float()  # (n', V)
            lse = rows.logsumexp(dim=-1, keepdim=True)
            probs.append((rows.gather(-1, idx[a : a + _ENTROPY_ROWS]) - lse).exp().double().cpu().numpy())
        p = np.concatenate(probs)  # (n, K)
        return [p[i, : len(t)] for i, t in enumerate(track)]

    # -- naive reference ----------------------------------------------------------------

    def _measure_naive(self, enc: EncodedRecord) -> Measurement:
        torch = _require_torch()
        full = torch.tensor([enc.prompt_ids + enc.response_ids], device=self.device)
        p = len(enc.prompt_ids)
        logits = self.model(input_ids=full).logits[0, p - 1 : -1]  # (R, V)
        token_lp, token_h = self._token_stats(logits, full[0, p:])
        probe_h, probe_p = [], []
        for t in range(1, enc.answer_end):
            ids = torch.tensor([enc.probe_context(t)], device=self.device)
            last = self.model(input_ids=ids, logits_to_keep=1).logits[0, -1:]  # (1, V)
            probe_h.append(self._probe_entropies(last))
            probe_p.append(self._tracked_probs(last, [enc.track_ids])[0])
        probes = np.concatenate(probe_h) if probe_h else np.zeros(0)
        return Measurement(probes, token_lp, token_h, _stack_probs(probe_p, enc))

    # -- packed -------------------------------------------------------------------------

    def _measure_packed(self, encs: list[EncodedRecord]) -> list[Measurement]:
        torch = _require_torch()
        dev = self.device
        starts = np.cumsum([0] + [e.context_length for e in encs])
        n_total = int(starts[-1])
        ids = torch.tensor([i for e in encs for i in e.prompt_ids + e.response_ids], device=dev)
        pos = torch.cat([torch.arange(e.context_length, device=dev) for e in encs])
        doc = torch.cat([torch.full((e.context_length,), k, device=dev) for k, e in enumerate(encs)])

        # Rows whose logits predict a response token: record k, positions P-1 .. P+R-2.
        predict = torch.cat(
            [
                torch.arange(len(e.prompt_ids) - 1, e.context_length - 1, device=dev) + int(starts[k])
                for k, e in enumerate(encs)
            ]
        )
        cache = None
        token_lp, token_h = [], []
        for a in range(0, n_total, self.engine.prefill_chunk):
            b = min(n_total, a + self.engine.prefill_chunk)
            keep = predict[(predict >= a) & (predict < b)]
            mask = None if len(encs) == 1 else self._attention_mask(prefill_mask(doc, a, b))
            out = self.model(
                input_ids=ids[None, a:b],
                position_ids=pos[None, a:b],
                attention_mask=mask,
                use_cache=True,
                logits_to_keep=keep - a,
                **({self._cache_kwarg: cache} if cache is not None else {}),
            )
            cache = returned_cache(out)
            lp, h = self._token_stats(out.logits[0], ids[keep + 1])
            token_lp.append(lp)
            token_h.append(h)
        all_lp, all_h = np.concatenate(token_lp), np.concatenate(token_h)

        probe_h, probe_p = self._run_probes(encs, starts, cache, n_total)

        results, r0 = [], 0
        for k, e in enumerate(encs):
            r = len(e.response_ids)
            results.append(Measurement(probe_h[k], all_lp[r0 : r0 + r], all_h[r0 : r0 + r], probe_p[k]))
            r0 += r
        return results

    def _run_probes(
        self, encs: list[EncodedRecord], starts: np.ndarray, cache: Any, cache_len: int
    ) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
        """Probe entropies ``(T-1,)`` and tracked-token probabilities ``(T-1, K)`` per record.

        Chunks go from the last probe to the first: before each chunk the cache is cut
        to the last position that chunk can see, which no earlier chunk needs either,
        so each chunk attends over a cache that shrinks as t falls (half the work of
        always attending over the whole sequence).
        """
        torch = _require_torch()
        dev = self.device
        probes = [(k, t) for k, e in enumerate(encs) for t in range(1, e.answer_end)]
        entropies = [np.zeros(e.n_probes) for e in encs]
        tracked: list[list[np.ndarray | None]] = [[None] * e.n_probes for e in encs]
        for c in range(len(probes), 0, -self.engine.chunk_size):
            chunk = probes[max(0, c - self.engine.chunk_size) : c]
            ids, pos, ctx_start, ctx_stop, probe_start, last = [], [], [], [], [], []
            for k, t in chunk:
                e = encs[k]
                s, p = len(e.suffix_ids), len(e.prompt_ids)
                q0 = len(ids)
                ids += e.suffix_ids
                pos += range(p + t, p + t + s)
                ctx_start += [int(starts[k])] * s
                ctx_stop += [int(starts[k]) + p + t] * s
                probe_start += [q0] * s
                last.append(q0 + s - 1)
            visible = max(ctx_stop)
            if cache_len > visible:
                cache.crop(visible - cache_len)  # negative: drop entries (transformers 4.x and 5.x)
                cache_len = visible
            as_long = lambda xs: torch.tensor(xs, dtype=torch.long, device=dev)  # noqa: E731
            mask = staircase_mask(as_long(ctx_start), as_long(ctx_stop), as_long(probe_start), cache_len)
            out = self.model(
                input_ids=as_long(ids)[None],
                position_ids=as_long(pos)[None],
                attention_mask=self._attention_mask(mask),
                use_cache=True,
                **{self._cache_kwarg: cache},
                logits_to_keep=as_long(last),
            )
            h = self._probe_entropies(out.logits[0])  # (n_chunk,)
            p = self._tracked_probs(out.logits[0], [encs[k].track_ids for k, _ in chunk])  # n_chunk x (K,)
            cache.crop(-len(ids))
            for (k, t), value, probs in zip(chunk, h, p, strict=True):
                entropies[k][t - 1] = value
                tracked[k][t - 1] = probs
        return entropies, [_stack_probs(tracked[k], e) for k, e in enumerate(encs)]


def _stack_probs(rows: list[np.ndarray], enc: EncodedRecord) -> np.ndarray | None:
    """Per-probe tracked probabilities as ``(T-1, K)``, or None when nothing is tracked."""
    if not enc.track_ids:
        return None
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(enc.track_ids))
