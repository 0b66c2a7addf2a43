"""In-process transformers backend: exact full-vocabulary entropies, packed probes.

The model's body (embeddings, decoder layers, final norm) runs in the loaded dtype up to the final hidden states;
the LM head is applied in float32 by ``hf_head.Float32Head`` to the rows whose distributions are needed only (one
row per probe, the response rows of the prefill), a block of rows at a time, so full-vocabulary logits never exist
for a whole segment and the entropies do not depend on the rounding of logits.

The packed method (docs/architecture.md, "The core algorithm"):

1. The records of a batch are laid end to end in one sequence (block-diagonal causal
   attention, positions restarting per record) and prefilled in segments of
   ``EngineConfig.prefill_chunk`` tokens; the prefill fills the KV cache and yields the
   response tokens' own log-probs and entropies.
2. Probes go in chunks (``EngineConfig.chunk_size``: small on a CPU, large on a GPU,
   where each forward pass costs a fixed launch time): each probe is its suffix tokens,
   positioned right after x_t, attending to its record's cache up to x_t and to its own
   earlier suffix tokens (a staircase mask). Only each probe's last suffix token goes
   through the head.
3. The probe entries are cropped from the cache after each chunk. Chunks run from the
   last probe back to the first, and before each chunk the cache is cut to the last
   position it can see, so attention work shrinks with t instead of spanning the
   whole sequence for every probe.

Sliding-window layers (Gemma 2/3, Mistral-style, gpt-oss) are packed too: their window is enforced by the mask
alone, so they get the staircase AND the window (counted in positions of the probe's own context), per layer type
(``hf_masks.LayerMasks``); the cache keeps every key on every layer (a sliding cache keeps only W-1, which a
staircase over the whole context cannot use), in buffers allocated once for the packed sequence plus one probe chunk
(``hf_cache.buffered_cache``: no ``torch.cat`` growth).

Attention kernels (``EngineConfig.attention``, recorded by ``describe``): with ``sdpa`` the masks are dense 4-D
booleans (additive floats for eager attention); with ``flex`` they are FlexAttention block masks built from the same
ranges (``hf_flex``), so the empty blocks of the staircase and of packed records are skipped. ``auto`` takes flex on
CUDA. A model loaded with transformers' own ``flex_attention`` is switched to one of these (that integration adds a
tensor mask to the scores). On a GPU the probe chunks are sized from the free memory (``hf_chunks``) and a bfloat16
model's head takes its products on the tensor cores (``hf_head``, ``EngineConfig.head``).

The naive method runs one forward pass per probe with the model's own masks (on SDPA
or eager attention); it is the reference the tests use.

Logits that are not finite (an fp16 overflow, a broken checkpoint) raise ``NonFiniteLogitsError`` with the probe or
response position: the record goes to the errors file instead of being scored with a made-up number.

Deliberate limits: non-attention layers (state-space, linear attention, chunked attention) and flash attention (no
4-D mask) are scored with the naive method only.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from eas.backends.base import EncodedRecord, Measurement, NonFiniteLogitsError, PositionFeatures
from eas.backends.hf.cache import buffered_cache
from eas.backends.hf.chunks import ModelShape, probe_tokens_for_memory, probes_per_chunk
from eas.backends.hf.composite import text_config
from eas.backends.hf.flex import IMPLEMENTATION, FlexMasks, implementation_for, resolve_attention, use_implementation
from eas.backends.hf.generate import DecodeLoop, batch_seed, generate_samples
from eas.backends.hf.head import Float32Head, check_against_model, resolve_products
from eas.backends.hf.heap import fix_for_scoring
from eas.backends.hf.masks import LayerMasks, layer_kinds, masks_unsupported_reason, prefill_mask, staircase_mask
from eas.backends.hf.online import online_unsupported_reason
from eas.config import GPU_MAX_PROBE_TOKENS, GPU_MEMORY_FRACTION, EngineConfig, SamplingConfig

log = logging.getLogger(__name__)


def _require_torch() -> Any:
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the hf backend needs PyTorch: pip install 'torch>=2.4'") from exc
    return torch


def packed_unsupported_reason(model: Any) -> str | None:
    """Why the packed method cannot run this model, or None when it can."""
    return masks_unsupported_reason(model)


class HFBackend:
    """Measures records with a transformers causal LM held in this process."""

    def __init__(self, model: Any, tokenizer: Any, engine: EngineConfig | None = None, name: str | None = None):
        torch = _require_torch()
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.engine = engine or EngineConfig()
        self.name = name or getattr(model.config, "_name_or_path", "") or type(model).__name__
        self.device = next(model.parameters()).device
        if self.device.type == "cpu":
            fix_for_scoring()  # else the heap keeps hundreds of MiB of freed tensors (hf/heap.py)
        self.config = text_config(model.config)  # the language model's, also in a multimodal checkpoint
        self.max_context = getattr(self.config, "max_position_embeddings", None)
        reason = packed_unsupported_reason(model)
        if reason and self.engine.method == "packed":
            raise ValueError(f"the packed method does not support {reason}; use method='naive' (--method naive)")
        self.decoder = getattr(model, "base_model", None)
        if self.decoder is None or self.decoder is model:
            raise ValueError(f"{type(model).__name__} has no separate base model to run up to the hidden states")
        if self.engine.method == "naive" and self.engine.attention == "flex":
            raise ValueError("flex attention serves the packed method; the naive one runs the model's own masks")
        self.attention = resolve_attention(
            self.engine.attention if self.engine.method == "packed" else "sdpa", self.device.type, model
        )
        self.implementation = implementation_for(model, self.attention)  # never transformers' flex_attention
        use_implementation(model, self.implementation)
        self.head = Float32Head(model, products=resolve_products(self.engine.head, model))
        with torch.inference_mode():
            check_against_model(model, self.decoder, self.head)
        kinds, window = layer_kinds(self.config)
        additive = self.config._attn_implementation not in ("sdpa", IMPLEMENTATION)
        self.masks = LayerMasks(kinds, window, additive, model.dtype)
        self.flex = FlexMasks(kinds, window) if self.attention == "flex" else None
        self.shape = ModelShape.of(self.config, model.dtype.itemsize, len(kinds))
        # transformers 5.x renamed the forward's `past_key_values` to `cache`.
        params = inspect.signature(self.decoder.forward).parameters
        self._cache_kwarg = "cache" if "cache" in params else "past_key_values"

    @property
    def batch_tokens(self) -> int:
        """Tokens of work per batch of records (``EngineConfig.batch_tokens`` for this device)."""
        return self.engine.batch_tokens_for(self.device.type == "cuda")

    def describe(self) -> dict[str, Any]:
        return {
            "backend": "hf",
            "model": self.name,
            "device": str(self.device),
            "dtype": str(self.model.dtype).removeprefix("torch."),
            "method": self.engine.method,
            "attention": "flex" if self.attention == "flex" else self.implementation,  # flex, sdpa or eager
            "head": self.head.products,
            "vocab_size": int(self.config.vocab_size),
        }

    def close(self) -> None:
        """Nothing to release: the model goes with the last reference to this backend."""

    def __enter__(self) -> HFBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- features (amortised EAS) -------------------------------------------------------

    def features(self, batch: Sequence[EncodedRecord], layers: Sequence[int]) -> list[PositionFeatures]:
        from eas.backends.hf.features import position_features

        return position_features(self, batch, layers)

    def feature_layers(self) -> tuple[int, ...]:
        from eas.backends.hf.features import default_layers

        return default_layers(self.model)

    def model_fingerprint(self) -> str:
        from eas.backends.hf.features import model_fingerprint

        return model_fingerprint(self.model)

    # -- public -------------------------------------------------------------------------

    def sample(
        self, prompts: Sequence[str], config: SamplingConfig, *, progress: bool = False, first_batch: int = 0
    ) -> list[list[str]]:
        return generate_samples(self.model, self.tokenizer, prompts, config, progress=progress, first_batch=first_batch)

    def watch_unsupported_reason(self) -> str | None:
        """Why online probes cannot run in this model's decoding loop, or None (``eas.backends.watch.WatchRefusals``)."""
        return online_unsupported_reason(self.model)

    def decode_watched(
        self, prompts: Sequence[str | Sequence[int]], config: SamplingConfig, watch: Any, batch_index: int = 0
    ) -> Iterator[int]:
        """Monitored sampling of one batch (``eas.backends.watch.WatchedBackend``); yields after every step."""
        return DecodeLoop(self.model, self.tokenizer, prompts, config, batch_seed(config, batch_index), watch).steps()

    def measure(self, batch: Sequence[EncodedRecord]) -> list[Measurement]:
        torch = _require_torch()
        use_implementation(self.model, self.implementation)  # another backend on this model may have switched it
        with torch.inference_mode():
            if self.engine.method == "naive":
                return [self._measure_naive(e) for e in batch]
            return self._measure_packed(list(batch))

    # -- helpers ------------------------------------------------------------------------

    def _hidden(self, ids: Any, pos: Any = None, mask: Any = None, cache: Any = None) -> Any:
        """Final hidden states ``(n, d)`` of one sequence, in the model dtype (the body only)."""
        kwargs: dict[str, Any] = {"use_cache": cache is not None}
        if cache is not None:
            kwargs[self._cache_kwarg] = cache
        out = self.decoder(
            input_ids=ids[None], position_ids=None if pos is None else pos[None], attention_mask=mask, **kwargs
        )
        return out.last_hidden_state[0]

    # -- naive reference ----------------------------------------------------------------

    def _measure_naive(self, enc: EncodedRecord) -> Measurement:
        torch = _require_torch()
        full = torch.tensor(enc.prompt_ids + enc.response_ids, device=self.device)
        p = len(enc.prompt_ids)
        hidden = self._hidden(full)[p - 1 : -1]  # (R, d): row i predicts x_{i+1}
        tokens = self.head.stats(hidden, full[p:])
        _check_response_rows(tokens.entropies)
        positions = enc.probe_positions
        probe_h, probe_p = np.zeros(len(positions)), np.zeros((len(positions), len(enc.track_ids)))
        for i, t in enumerate(positions):
            ids = torch.tensor(enc.probe_context(t), device=self.device)
            st = self.head.stats(self._hidden(ids)[-1:], track=enc.track_ids)
            if not np.isfinite(st.entropies[0]):
                raise NonFiniteLogitsError(f"non-finite logits at probe t={t}")
            probe_h[i], probe_p[i] = st.entropies[0], st.tracked[0]
        return Measurement(probe_h, tokens.logprobs, tokens.entropies, probe_p if enc.track_ids else None)

    # -- packed -------------------------------------------------------------------------

    def _measure_packed(self, encs: list[EncodedRecord]) -> list[Measurement]:
        torch = _require_torch()
        dev = self.device
        starts = np.cumsum([0] + [e.context_length for e in encs])
        n_total = int(starts[-1])
        ids = torch.tensor([i for e in encs for i in e.prompt_ids + e.response_ids], device=dev)
        pos = torch.cat([torch.arange(e.context_length, device=dev) for e in encs])
        doc = torch.cat([torch.full((e.context_length,), k, device=dev) for k, e in enumerate(encs)])
        doc_start = torch.as_tensor(starts[:-1], device=dev)[doc]  # (N,) where each position's record starts

        # Rows whose hidden states predict a response token: record k, positions P-1 .. P+R-2.
        predict = torch.cat(
            [
                torch.arange(len(e.prompt_ids) - 1, e.context_length - 1, device=dev) + int(starts[k])
                for k, e in enumerate(encs)
            ]
        )
        on_gpu = self.device.type == "cuda"
        longest_suffix = max(len(e.suffix_ids) for e in encs)
        n_probes = sum(len(e.probe_positions) for e in encs)
        chunk = self._probes_per_chunk(n_total, longest_suffix)
        # Every layer keeps all its keys (a config-aware cache would keep only W-1 on sliding layers),
        # in buffers allocated once: the packed sequence plus one probe chunk.
        cache = buffered_cache(n_total + min(chunk, n_probes) * longest_suffix)
        # One record on full-attention layers only: the model's own causal mask (sdpa's fast path).
        own_mask = len(encs) == 1 and not self.masks.sliding
        token_lp, token_h = [], []
        segment = self.engine.prefill_tokens(on_gpu)
        for a in range(0, n_total, segment):
            b = min(n_total, a + segment)
            keep = predict[(predict >= a) & (predict < b)]
            if own_mask and (a == 0 or self.flex is None):
                mask = None  # the model's own causal mask, on SDPA (flex is never handed a tensor)
            elif self.flex is not None:
                mask = self.flex.prefill(doc_start, a, b)
            else:
                mask = self.masks.build(prefill_mask(doc, a, b), pos[a:b], pos[:b])
            hidden = self._hidden(ids[a:b], pos[a:b], mask, cache)  # (b - a, d)
            st = self.head.stats(hidden[keep - a], ids[keep + 1])
            token_lp.append(st.logprobs)
            token_h.append(st.entropies)
            del hidden, mask
        all_lp, all_h = np.concatenate(token_lp), np.concatenate(token_h)
        bounds = np.cumsum([0] + [len(e.response_ids) for e in encs])
        for k in range(len(encs)):
            _check_response_rows(all_h[bounds[k] : bounds[k + 1]])

        probe_h, probe_p = self._run_probes(encs, starts, pos, cache, n_total, chunk)
        return [
            Measurement(probe_h[k], all_lp[bounds[k] : bounds[k + 1]], all_h[bounds[k] : bounds[k + 1]], probe_p[k])
            for k in range(len(encs))
        ]

    def _probes_per_chunk(self, cache_tokens: int, suffix_tokens: int) -> int:
        """``EngineConfig.chunk_size``; else on a GPU what its free memory holds now, else the CPU default."""
        if self.engine.chunk_size is not None or self.device.type != "cuda":
            return self.engine.probes_per_chunk(self.device.type == "cuda", suffix_tokens)
        torch = _require_torch()
        free, _ = torch.cuda.mem_get_info(self.device)
        tokens = probe_tokens_for_memory(
            free,
            self.shape,
            cache_tokens,
            flex=self.flex is not None,
            head_bytes=self.head.workspace_bytes,
            fraction=GPU_MEMORY_FRACTION,
            max_tokens=GPU_MAX_PROBE_TOKENS,
        )
        return probes_per_chunk(tokens, suffix_tokens)

    def _run_probes(
        self, encs: list[EncodedRecord], starts: np.ndarray, pos: Any, cache: Any, cache_len: int, size: int
    ) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
        """Probe entropies ``(n_probes,)`` and tracked-token probabilities ``(n_probes, K)`` per record.

        Chunks go from the last probe to the first: before each chunk the cache is cut
        to the last position that chunk can see, which no earlier chunk needs either,
        so each chunk attends over a cache that shrinks as t falls (half the work of
        always attending over the whole sequence).
        """
        torch = _require_torch()
        dev = self.device
        probes = [(k, i, t) for k, e in enumerate(encs) for i, t in enumerate(e.probe_positions)]
        entropies = [np.zeros(len(e.probe_positions)) for e in encs]
        tracked = [np.zeros((len(e.probe_positions), len(e.track_ids))) for e in encs]
        for c in range(len(probes), 0, -size):
            chunk = probes[max(0, c - size) : c]
            ids, q_pos, ctx_start, ctx_stop, probe_start, last = [], [], [], [], [], []
            for k, _, t in chunk:
                e = encs[k]
                s, p = len(e.suffix_ids), len(e.prompt_ids)
                q0 = len(ids)
                ids += e.suffix_ids
                q_pos += range(p + t, p + t + s)
                ctx_start += [int(starts[k])] * s
                ctx_stop += [int(starts[k]) + p + t] * s
                probe_start += [q0] * s
                last.append(q0 + s - 1)
            visible = max(ctx_stop)
            if cache_len > visible:
                cache.crop(visible - cache_len)  # negative: drop entries (transformers 4.x and 5.x)
                cache_len = visible
            as_long = lambda xs: torch.tensor(xs, dtype=torch.long, device=dev)  # noqa: E731
            queries = as_long(q_pos)
            lo, hi, first = as_long(ctx_start), as_long(ctx_stop), as_long(probe_start)
            if self.flex is not None:
                mask = self.flex.staircase(lo, hi, first, queries, cache_len)
            else:
                causal = staircase_mask(lo, hi, first, cache_len)
                mask = self.masks.build(causal, queries, torch.cat([pos[:cache_len], queries]))
            hidden = self._hidden(as_long(ids), queries, mask, cache)[as_long(last)]  # (n_chunk, d)
            st = self.head.stats(hidden, track=[encs[k].track_ids for k, _, _ in chunk])
            cache.crop(-len(ids))
            for (k, i, t), value, probs in zip(chunk, st.entropies, st.tracked, strict=True):
                if not np.isfinite(value):
                    raise NonFiniteLogitsError(f"non-finite logits at probe t={t}")
                entropies[k][i] = value
                tracked[k][i] = probs[: len(encs[k].track_ids)]
        return entropies, [tracked[k] if e.track_ids else None for k, e in enumerate(encs)]


def _check_response_rows(entropies: np.ndarray) -> None:
    """Raise on the first response token whose predicting logits are not finite."""
    bad = np.flatnonzero(~np.isfinite(entropies))
    if bad.size:
        i = int(bad[0]) + 1
        raise NonFiniteLogitsError(f"non-finite logits at response token {i} of {entropies.size} (x_{i})")
