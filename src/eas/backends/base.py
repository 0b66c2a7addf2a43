"""The Backend protocol: what every model runtime provides to the scorer.

A backend measures; it never computes the per-record figures (``eas.maths.metrics`` does).
Every backend can ``describe`` itself and be closed (it is a context manager: ``with
spec.load() as backend: ...``). A backend that also gives per-position hidden-state
features (``FeatureBackend``: the in-process hf backend) can run amortised EAS; callers
ask for that capability, never for a backend's internals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from eas.backends.watch import StreamedBackend, WatchedBackend
from eas.config import SamplingConfig
from eas.records import Record


@dataclass(frozen=True)
class EncodedRecord:
    """A record as token ids, with its probe layout.

    Attributes:
        prompt_ids: P tokens.
        response_ids: R tokens (x_1 .. x_R).
        suffix_ids: s tokens appended to every probe context.
        answer_end: T, the 1-based index of x_T in the response.
        track_ids: token ids whose probability each probe also returns (may be empty).
        probe_subset: the t of the probes to run (stratified probing,
            ``eas.maths.stratified``), increasing; None runs every t = 1 .. T-1.
        response_offsets: ``[start, end)`` character span of each response token in the
            response text (the tokenizer's offset mapping); empty when not known.
    """

    record: Record
    prompt_ids: list[int]
    response_ids: list[int]
    suffix_ids: list[int]
    answer_end: int
    track_ids: tuple[int, ...] = ()
    probe_subset: tuple[int, ...] | None = None
    response_offsets: tuple[tuple[int, int], ...] = ()

    @property
    def probe_positions(self) -> Sequence[int]:
        """The positions t probed, 1-based and increasing: t = 1 .. T-1, or under
        stratified probing the ``probe_subset`` drawn for the record.

        The one place they are enumerated: backends measure these probes, in this order,
        and ``Measurement.probe_entropies[i]`` is H at ``probe_positions[i]``.
        """
        return range(1, self.answer_end) if self.probe_subset is None else self.probe_subset

    @property
    def n_probes(self) -> int:
        """T-1: the positions the area covers (all probed unless ``probe_subset``)."""
        return self.answer_end - 1

    @property
    def context_length(self) -> int:
        return len(self.prompt_ids) + len(self.response_ids)

    def probe_context(self, t: int) -> list[int]:
        """Full input of probe t (1-based): prompt + x_1..x_t + suffix."""
        return self.prompt_ids + self.response_ids[:t] + self.suffix_ids


class NonFiniteLogitsError(ValueError):
    """A model gave logits that are not finite (NaN, +inf, or no finite logit in a row).

    The message names the position (``non-finite logits at probe t=17``); the scorer
    sends the record to the errors file instead of scoring it with a made-up number.
    """


@dataclass(frozen=True)
class Measurement:
    """What a backend measured on one record.

    Per-probe arrays hold one entry per probe run, in the order of
    ``EncodedRecord.probe_positions`` (t = 1 .. T-1 unless the record was stratified).

    Attributes:
        probe_entropies: ``(T-1,)`` H_t in bits for t = 1 .. T-1. Exact for in-process
            backends; for top-K backends the entropy of the K returned tokens (a lower
            bound of H_t).
        token_logprobs: ``(R,)`` natural-log probability of each response token, or None
            when the backend cannot measure them (some servers).
        token_entropies: ``(R,)`` bits, entropy of the distribution predicting each token,
            or None when the backend cannot measure them.
        probe_token_probs: ``(T-1, K)`` probability, at each probe, of each of the record's
            tracked tokens (``EncodedRecord.track_ids``), from the same logits as the probe
            entropies; ``None`` when no token is tracked.
        probe_bounds: top-K backends only: ``(T-1,)`` bits the missing tail can add to
            each H_t (so H_t lies in ``[probe_entropies, probe_entropies + probe_bounds]``).
        probe_topk_mass: top-K backends only: ``(T-1,)`` probability mass of the K tokens.
    """

    probe_entropies: np.ndarray
    token_logprobs: np.ndarray | None
    token_entropies: np.ndarray | None
    probe_token_probs: np.ndarray | None = None
    probe_bounds: np.ndarray | None = None
    probe_topk_mass: np.ndarray | None = None


@dataclass(frozen=True)
class PositionFeatures:
    """What one forward pass measured on one record, for an amortised-EAS head.

    Attributes:
        features: ``(T-1, d)`` one row per probe position t: the hidden states of the
            chosen layers at x_t, then the next-token entropy at x_t (bits).
        token_logprobs: ``(R,)`` natural-log probability of each response token.
        token_entropies: ``(R,)`` bits, the entropy of the distribution predicting each token.
    """

    features: np.ndarray
    token_logprobs: np.ndarray
    token_entropies: np.ndarray


class Backend(Protocol):
    """A model runtime that can measure encoded records and sample answers.

    Backends are context managers: leaving the block calls ``close`` (a server backend
    stops its connection pool; an in-process model is left to the garbage collector).
    """

    tokenizer: Any
    max_context: int | None

    def describe(self) -> dict[str, Any]:
        """Model name, device, dtype: what a results manifest should record."""
        ...

    def close(self) -> None:
        """Release what the backend holds (connections, threads); it is not used afterwards."""
        ...

    def __enter__(self) -> Backend: ...

    def __exit__(self, *exc: object) -> None: ...

    def measure(self, batch: Sequence[EncodedRecord]) -> list[Measurement]:
        """Measure every record of ``batch``; one Measurement per record, same order."""
        ...

    def sample(
        self, prompts: Sequence[str], config: SamplingConfig, *, progress: bool = False, first_batch: int = 0
    ) -> list[list[str]]:
        """``config.n`` sampled continuations of every prompt text: ``samples[i][k]``.

        ``first_batch``: the sampler batch index (``config.batch_size // config.n``
        prompts a batch) of the first prompt, which seeds it, so a resumed run samples
        with the seeds of an uninterrupted one.
        """
        ...


@runtime_checkable
class FeatureBackend(Protocol):
    """A backend that also reads per-position features from one forward pass (amortised EAS)."""

    def features(self, batch: Sequence[EncodedRecord], layers: Sequence[int]) -> list[PositionFeatures]:
        """One ``PositionFeatures`` per record of ``batch``, same order; ``layers`` are 1-based blocks."""
        ...

    def feature_layers(self) -> tuple[int, ...]:
        """The default layers whose hidden states are features (the middle block and the last)."""
        ...

    def model_fingerprint(self) -> str:
        """A short hash of what decides the model's outputs (a head is only valid for it)."""
        ...


# Optional capabilities a caller may require (an estimator's ``requires``, online sampling), and what gives them.
CAPABILITIES = {
    "features": "the model's hidden states, which only the in-process hf backend gives (--backend hf)",
    "watched": "probes inside the decoding loop of an in-process model (--backend hf)",
    "streamed": "a streamed generation with a probe request per position (a server: --backend openai)",
}


def capabilities(backend: Any) -> frozenset[str]:
    """The optional capabilities (keys of ``CAPABILITIES``) a loaded backend has."""
    kinds = {"features": FeatureBackend, "watched": WatchedBackend, "streamed": StreamedBackend}
    return frozenset(name for name, proto in kinds.items() if isinstance(backend, proto))
