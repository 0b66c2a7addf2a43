"""What a decoding loop and an online monitor tell each other (monitored sampling, docs/online.md).

A backend that can probe while it decodes (the hf backend: ``HFBackend.decode_watched``)
runs one batch of rows and, at every step, reports to a ``Watch`` (the sampling layer's
per-batch monitor, ``eas.sampling.online``):

1. ``emitted``: the token each active row emitted (with its log-probability and the
   entropy of the distribution it was drawn from); the watch answers which rows end now;
2. ``probe_now``: whether the coming forward pass carries the trigger (a probe at t for
   every row of the batch);
3. ``measured``: the probes of that pass (``None`` when it carried none); the watch
   answers which rows stop reasoning, with the token ids to force next (the end of
   thinking and the trigger), after which those rows decode greedily;
4. ``catch_up`` / ``ended``: when a row ends, the positions whose probe the watch still
   needs (stratified probing draws them only once T is known), and their values.

Nothing here imports torch: the types are plain numbers, so a server-side controller
(which sees text and top-K log-probs, not tensors) drives the same watch: a
``StreamedBackend`` (the openai backend) streams a generation token by token
(``stream_completion``) and answers one probe request per position (``probe``), and
``eas.sampling.online.server`` plays the decoding loop's part.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from eas.config import SamplingConfig


@dataclass(frozen=True)
class Probe:
    """What the forced-answer probe measured at one position t.

    Attributes:
        entropy: H_t in bits over the whole vocabulary (NaN when the logits were not finite).
        top_prob: ``max_v P(v | C_t)``: the probability of the forced answer's most likely
            first token (DEER-style confidence).
        tracked: probabilities of the watch's tracked token ids, in order.
        bound: top-K probes only (a server): the most the K tokens' missing tail can add, so
            the exact H_t lies in ``[entropy, entropy + bound]``; None when ``entropy`` is exact.
        topk_mass: top-K probes only: the probability mass of the K tokens returned.
    """

    entropy: float
    top_prob: float
    tracked: tuple[float, ...] = ()
    bound: float | None = None
    topk_mass: float | None = None


@dataclass(frozen=True)
class Emitted:
    """One token a row emitted at a step.

    Attributes:
        row: the row's index in the batch (prompt i, sample k: ``i * n + k``).
        token: the token id.
        logprob: natural-log probability of the token under the model's own (untempered)
            distribution at that step; None when the runtime does not give it.
        entropy: entropy in bits of that distribution; None when the runtime does not give it
            (a server gives top-K log-probs, not the whole distribution).
        forced: the token was forced or decoded greedily after a stop (the answer phase).
        eos: the token ends the sample (an end-of-sequence id); it is not part of the text.
    """

    row: int
    token: int
    logprob: float | None
    entropy: float | None
    forced: bool = False
    eos: bool = False


class Watch(Protocol):
    """The sampling layer's side of a monitored batch (see the module docstring)."""

    suffix_ids: tuple[int, ...]
    track_ids: tuple[int, ...]

    def emitted(self, tokens: Sequence[Emitted]) -> set[int]:
        """Record one token per active row; return the rows that end now (the token is kept, not fed)."""
        ...

    def probe_now(self, rows: Sequence[int]) -> bool:
        """Whether the next forward pass of these (still active) rows carries the trigger."""
        ...

    def measured(self, rows: Sequence[int], probes: Sequence[Probe] | None) -> Mapping[int, Sequence[int]]:
        """The probes of the pass just run, one per row (None: no probe); return the rows that
        stop reasoning, each with the token ids to feed next before greedy decoding."""
        ...

    def catch_up(self, row: int) -> Sequence[int]:
        """A row ends: the positions t (of its reasoning tokens) still to probe."""
        ...

    def ended(self, row: int, probes: Mapping[int, Probe]) -> None:
        """The probes of ``catch_up``'s positions; the row is gone from the batch after this."""
        ...


@runtime_checkable
class WatchedBackend(Protocol):
    """A backend that can decode under a ``Watch`` (optional; the hf backend has it)."""

    def decode_watched(
        self, prompts: Sequence[str | Sequence[int]], config: SamplingConfig, watch: Watch, batch_index: int = 0
    ) -> Iterator[int]:
        """Decode ``config.n`` samples of each prompt (a text, or token ids taken as they are) as
        one batch, seeded by ``batch_index`` as ``Backend.sample`` seeds that batch, reporting to
        ``watch``; yields the step number after every step (so a caller can stream). Rows are
        ``i * n + k``."""
        ...


@runtime_checkable
class WatchRefusals(Protocol):
    """A ``WatchedBackend`` that can say beforehand why its model cannot be watched (the hf backend)."""

    def watch_unsupported_reason(self) -> str | None:
        """Why online probes cannot run in this model's decoding loop (an attention kernel
        that takes no mask, layers that cannot be re-masked), or None."""
        ...


@dataclass(frozen=True)
class StreamToken:
    """One token of a streamed generation (a server).

    Attributes:
        token: its id.
        text: its text as the server sent it.
        logprob: natural-log probability the server gave it (its untempered distribution),
            or None when it gave none.
    """

    token: int
    text: str
    logprob: float | None


class TokenStream(Protocol):
    """A generation in flight: iterate for its tokens; ``finish_reason`` once exhausted
    (``"stop"``: an end token or stop string, ``"length"``: the budget); ``close`` abandons it."""

    finish_reason: str | None

    def __iter__(self) -> Iterator[StreamToken]: ...

    def close(self) -> None: ...


@runtime_checkable
class StreamedBackend(Protocol):
    """A backend that streams a generation and answers probe requests (a server: the openai backend)."""

    def stream_completion(
        self, prompt_ids: Sequence[int], max_tokens: int, config: SamplingConfig | None, seed: int | None
    ) -> TokenStream:
        """Start generating after ``prompt_ids`` (token ids, so a probe sees exactly these):
        sampled with ``config``'s temperature and top-p and ``seed``, or greedily when ``config``
        is None; at most ``max_tokens`` tokens. ``ValueError`` (one line) when the server
        cannot be driven this way (it takes no token-id prompts, its stream has no ids)."""
        ...

    def probe_ids(self, ids: Sequence[int]) -> Probe:
        """The forced-answer probe after ``ids`` (prompt + x_1..x_t + trigger): one request."""
        ...
