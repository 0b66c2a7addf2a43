"""Per-position features of a trace from one forward pass: what an amortised EAS head reads.

For each probe position t = 1 .. T-1 (the probe's context ends at x_t) the features are
the hidden states, at x_t, of the chosen layers (``hidden_states[k]``: the output of
block k, k = 1 .. n_layers; the last one after the final norm, as transformers returns
it), then the teacher-forced entropy of the next-token distribution at x_t (the one
that predicted x_{t+1}, in bits). The same pass gives every response token's log-prob and
entropy, so the baseline figures (PPL, HES, ...) stay exact.

The body runs in the model's dtype (``HFBackend.decoder``) and the LM head in float32 on
the response rows only, a block of rows at a time (``HFBackend.head``,
``eas.backends.hf.head``), exactly as the exact scorer measures them.

Deliberate simplifications: one record per forward pass (no packing of short records);
the pass keeps every layer's hidden states (``output_hidden_states``) and copies out the
chosen ones, which bounds the trace length by memory (about n_layers x length x width x
bytes per value).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from eas.backends.base import EncodedRecord, PositionFeatures
from eas.backends.hf.composite import text_config

__all__ = ["PositionFeatures", "check_layers", "default_layers", "model_fingerprint", "n_layers", "position_features"]

# Config keys that describe how a model was saved or run, not what it computes.
_RUNTIME_KEYS = {"_name_or_path", "_model_name_or_path", "dtype", "torch_dtype", "transformers_version"}
_RUNTIME_KEYS |= {"output_hidden_states", "output_attentions", "return_dict", "use_cache", "_attn_implementation"}


def n_layers(model: Any) -> int:
    """The number of transformer blocks of ``model``."""
    config = text_config(model.config)
    return int(config.num_hidden_layers)


def default_layers(model: Any) -> tuple[int, ...]:
    """The middle block and the last one (15 and 30 for the embedded 30-block SmolLM2)."""
    n = n_layers(model)
    return (max(1, n // 2), n)


def check_layers(model: Any, layers: Sequence[int]) -> tuple[int, ...]:
    """``layers`` as a sorted tuple, each in 1 .. n_layers (ValueError otherwise)."""
    n = n_layers(model)
    if not layers or any(not 1 <= k <= n for k in layers):
        raise ValueError(f"layers must be in 1..{n} for this model, got {list(layers)}")
    return tuple(sorted(set(int(k) for k in layers)))


def model_fingerprint(model: Any) -> str:
    """A short hash of what decides the model's outputs: its config and a sample of its weights.

    The config alone does not tell a fine-tuned model from its base, so the first 64
    values of every parameter tensor are hashed too (cheap, and any training moves them).
    """
    torch = _torch()
    config = {k: v for k, v in model.config.to_dict().items() if k not in _RUNTIME_KEYS}
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    with torch.no_grad():
        for name, param in sorted(model.named_parameters()):
            digest.update(name.encode())
            digest.update(param.detach().flatten()[:64].float().cpu().numpy().astype(np.float32).tobytes())
    return digest.hexdigest()[:16]


def position_features(backend: Any, encs: Sequence[EncodedRecord], layers: Sequence[int]) -> list[PositionFeatures]:
    """One forward pass of ``backend``'s body per record over prompt + response; features of every probe."""
    torch = _torch()
    layers = check_layers(backend.model, layers)
    out = []
    with torch.inference_mode():
        for enc in encs:
            p, r = len(enc.prompt_ids), len(enc.response_ids)
            ids = torch.tensor([enc.prompt_ids + enc.response_ids], device=backend.device)
            hidden = backend.decoder(input_ids=ids, output_hidden_states=True, use_cache=False).hidden_states
            # Rows p-1 .. p+R-2 predict the response tokens x_1 .. x_R (the float32 LM head, in row blocks).
            tokens = backend.head.stats(hidden[-1][0, p - 1 : p + r - 1], ids[0, p:])
            # Probe t = 1 .. T-1 ends at x_t, sequence index p+t-1; its next-token entropy is entropies[t].
            rows = slice(p, p + enc.n_probes)
            states = [hidden[k][0, rows].float().cpu().numpy().astype(np.float64) for k in layers]
            entropy = tokens.entropies[1 : enc.answer_end][:, None]  # (T-1, 1)
            out.append(PositionFeatures(np.concatenate([*states, entropy], axis=1), tokens.logprobs, tokens.entropies))
    return out


def _torch() -> Any:
    import torch  # present: a model was loaded with it

    return torch
