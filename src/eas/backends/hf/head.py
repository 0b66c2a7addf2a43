"""The LM head in float32, applied a block of rows at a time to the rows that are needed.

The hf backend runs the body of the model (embeddings, decoder layers, final norm) in
the model's own dtype and stops at the final hidden states; this module turns the few
rows whose distributions are needed (one per probe, and the response rows of the
prefill) into float32 logits and reduces them at once to entropies (bits), the
log-probabilities of given targets and the probabilities of tracked tokens. So:

* entropies never depend on the rounding of logits to bf16/fp16: the hidden state and
  the head's weights are upcast exactly to float32 and multiplied in float32;
* full-vocabulary logits exist for one block of rows at a time (about
  ``block_bytes``), never for a whole prefill segment or probe chunk.

For a head whose weights are not float32, the weights are upcast one slice of the
vocabulary at a time (``block_bytes`` again), so no float32 copy of the whole head is
kept (on a GPU, whose blocks are 1 GiB, a slice can be the whole head of a small model,
e.g. 0.9 GB for Qwen2-1.5B's, for the time of one block). The transformations some models apply after the head are reproduced
(``final_logit_softcapping``: Gemma 2/3; ``logits_scaling``: Granite; ``logit_scale``:
Cohere); ``check_against_model`` compares the result with the model's own logits once,
so an architecture with some other head fails loudly instead of scoring wrongly.

``products="bf16"`` (a bfloat16 model on CUDA, ``EngineConfig.head``): the products are
taken on the tensor cores from the bfloat16 hidden states and weights and summed in
float32 (``torch.mm(..., out_dtype=torch.float32)``), with no float32 copy of the
weights. A product of two bfloat16 numbers is exact in float32, so only the order of
the float32 sums differs from the float32 head; elsewhere that arithmetic is emulated
(``_bf16_products``), which is how the tests check it (within 0.005 bits a probe of
the float32 head). Rounding the logits themselves to bfloat16 (a plain bf16 matmul)
would not do: that moves entropies by up to 0.1 bits on the embedded model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from eas.maths.entropy import entropy_bits_from_logits, logprobs_and_entropy_from_logits

# Float32 logits of one block of rows (the entropy holds about three more of these). On a
# GPU, small blocks would cost one kernel launch (and a host sync) each: at T = 16k with
# Qwen2's 152k vocabulary, 16 MiB blocks made the head dominate a packed run, so a GPU
# takes larger ones (memory there is plentiful next to a 1-2 GiB block).
BLOCK_BYTES = 16 * 2**20
GPU_BLOCK_BYTES = 1024 * 2**20
MMA_K = 16  # the depth of one bfloat16 tensor-core product (m16n8k16)


@dataclass(frozen=True)
class RowStats:
    """What the head measured on n rows (numpy, float64).

    Attributes:
        entropies: ``(n,)`` bits; NaN where the row's logits are not finite.
        logprobs: ``(n,)`` natural-log probability of each row's target, or None
            when no targets were given.
        tracked: ``(n, K)`` probabilities of the tracked token ids (K may be 0).
    """

    entropies: np.ndarray
    logprobs: np.ndarray | None
    tracked: np.ndarray


class Float32Head:
    """A causal LM's output head, applied in float32 to blocks of hidden-state rows."""

    def __init__(self, model: Any, block_bytes: int | None = None, products: str = "float32"):
        import torch

        head = model.get_output_embeddings()
        if head is None or getattr(head, "weight", None) is None or head.weight.dim() != 2:
            raise ValueError(f"{type(model).__name__} has no linear output head to apply in float32")
        self.weight = head.weight  # (V, d), in the model's dtype
        self.bias = getattr(head, "bias", None)
        config = model.config
        self.softcap = getattr(config, "final_logit_softcapping", None)
        self.divide = getattr(config, "logits_scaling", None)
        scale = getattr(model, "logit_scale", None)
        self.multiply = scale if isinstance(scale, (int, float)) else None
        vocab, dim = self.weight.shape
        if products not in ("float32", "bf16"):
            raise ValueError(f"products must be 'float32' or 'bf16', not {products!r}")
        if products == "bf16" and self.weight.dtype != torch.bfloat16:
            raise ValueError(f"bf16 head products need a bfloat16 model, not {self.weight.dtype}")
        self.products = products
        if block_bytes is None:
            block_bytes = GPU_BLOCK_BYTES if self.weight.device.type == "cuda" else BLOCK_BYTES
        self.rows = max(1, block_bytes // (4 * vocab))
        self.vocab_block = vocab if self.weight.dtype.itemsize >= 4 else max(1, block_bytes // (4 * dim))

    @property
    def workspace_bytes(self) -> int:
        """Peak bytes of one block: its float32 logits and the entropy's temporaries (about
        four of them), and the float32 slice of the weights when they are upcast."""
        vocab, dim = self.weight.shape
        upcast = 0 if self.products == "bf16" or self.weight.dtype.itemsize >= 4 else self.vocab_block * dim * 4
        return 4 * self.rows * vocab * 4 + upcast

    def logits(self, hidden: Any) -> Any:
        """Float32 logits ``(n, V)`` of hidden-state rows ``(n, d)``."""
        import torch

        vocab = self.weight.shape[0]
        if self.products == "bf16":
            out = _bf16_products(hidden.to(self.weight.dtype), self.weight)
        elif self.vocab_block >= vocab:
            h = hidden.float()
            out = h @ self.weight.float().T
        else:
            h = hidden.float()
            out = torch.empty((h.shape[0], vocab), dtype=torch.float32, device=h.device)
            for v in range(0, vocab, self.vocab_block):
                out[:, v : v + self.vocab_block] = h @ self.weight[v : v + self.vocab_block].float().T
        if self.bias is not None:
            out += self.bias.float()
        if self.multiply is not None:
            out *= float(self.multiply)
        if self.divide is not None:
            out /= float(self.divide)
        if self.softcap is not None:
            out = torch.tanh(out / float(self.softcap)) * float(self.softcap)
        return out

    def stats(self, hidden: Any, targets: Any = None, track: tuple[int, ...] | list[tuple[int, ...]] = ()) -> RowStats:
        """Entropies, target log-probs and tracked-token probabilities of rows ``(n, d)``.

        Args:
            hidden: final hidden states ``(n, d)``.
            targets: long tensor ``(n,)`` of the token each row predicts, or None.
            track: token ids whose probability to return: one tuple for every row, or
                a list of n tuples (one per row; shorter ones are padded with id 0 and
                their extra columns are meaningless).
        """
        import torch

        n = hidden.shape[0]
        per_row = isinstance(track, list)
        width = max((len(t) for t in track), default=0) if per_row else len(track)
        idx = None
        if width:
            rows = track if per_row else [track] * n
            idx = torch.tensor([list(t) + [0] * (width - len(t)) for t in rows], device=hidden.device)  # (n, K)
        with torch.no_grad():
            return self._stats(hidden, targets, idx)

    def _stats(self, hidden: Any, targets: Any, idx: Any) -> RowStats:
        n = hidden.shape[0]
        hs, lps, probs = [], [], []
        for a in range(0, n, self.rows):
            logits = self.logits(hidden[a : a + self.rows])  # (n', V) float32
            if targets is None:
                h = entropy_bits_from_logits(logits)
            else:
                lp, h = logprobs_and_entropy_from_logits(logits, targets[a : a + self.rows])
                lps.append(lp.double().cpu().numpy())
            hs.append(h.double().cpu().numpy())
            if idx is not None:
                lse = logits.logsumexp(dim=-1, keepdim=True)
                probs.append((logits.gather(-1, idx[a : a + self.rows]) - lse).exp().double().cpu().numpy())
            del logits
        entropies = np.concatenate(hs) if hs else np.zeros(0)
        logprobs = (np.concatenate(lps) if lps else np.zeros(0)) if targets is not None else None
        tracked = np.concatenate(probs) if probs else np.zeros((n, 0))
        return RowStats(entropies, logprobs, tracked)


def _bf16_products(hidden: Any, weight: Any) -> Any:
    """Float32 ``hidden @ weight.T`` of bfloat16 operands: exact products, float32 sums.

    On CUDA the tensor cores do it (``torch.mm(..., out_dtype=torch.float32)``). Elsewhere
    (a CPU, a torch without that kernel) the same arithmetic is emulated: the products
    in float32 (exact for bfloat16 operands), summed as tensor cores sum them, in
    float32 over blocks of ``MMA_K`` along the hidden dimension.
    """
    import torch

    if hidden.device.type == "cuda":
        try:
            return torch.mm(hidden, weight.T, out_dtype=torch.float32)
        except (TypeError, RuntimeError, NotImplementedError):  # older torch: no mm.dtype
            pass
    out = torch.zeros((hidden.shape[0], weight.shape[0]), dtype=torch.float32, device=hidden.device)
    for k in range(0, hidden.shape[1], MMA_K):
        out += hidden[:, k : k + MMA_K].float() @ weight[:, k : k + MMA_K].float().T
    return out


def resolve_products(choice: str, model: Any) -> str:
    """``EngineConfig.head``: ``auto`` -> ``bf16`` for a bfloat16 model on CUDA, else ``float32``."""
    import torch

    if choice != "auto":
        return choice
    weight = model.get_output_embeddings().weight
    return "bf16" if weight.device.type == "cuda" and weight.dtype == torch.bfloat16 else "float32"


def check_against_model(model: Any, decoder: Any, head: Float32Head) -> None:
    """Compare the float32 head with the model's own logits on a few tokens; raise on a mismatch.

    The tolerance is 4 units of the model dtype's rounding relative to the largest logit,
    far above rounding and far below a missing scale or soft-cap.
    """
    import torch

    ids = torch.arange(1, 9, device=head.weight.device)[None] % int(head.weight.shape[0])  # (1, 8) ids < V
    ref = model(input_ids=ids, use_cache=False).logits[0].float()  # (8, V)
    ours = head.logits(decoder(input_ids=ids, use_cache=False).last_hidden_state[0])
    tol = 4 * torch.finfo(model.dtype).eps * max(1.0, float(ref.abs().max()))
    err = float((ours - ref).abs().max())
    if not err <= tol:
        raise ValueError(
            f"the float32 LM head does not reproduce {type(model).__name__}'s logits (max |difference| "
            f"{err:.3g} > {tol:.3g}): its output head is not a supported form; use another backend"
        )
