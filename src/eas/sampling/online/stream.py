"""Stream one answer and its uncertainty, token by token (the library's online API).

``stream(backend, "What is 17 * 3?")`` samples one answer with online probes and yields,
for every token, a ``TokenEvent``: the token id, its text piece, H_t in bits (None where
no probe ran) and the area so far. After the last event, ``.row`` holds the sample's row
(the figures ``eas score`` would give it, the stop, the forced answer).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from eas.backends.openai.backend import sample_seed
from eas.backends.prompts import render_prompt
from eas.backends.watch import StreamedBackend
from eas.config import EASConfig, MonitorConfig, SamplingConfig
from eas.sampling.online.monitor import BatchMonitor, TokenEvent
from eas.sampling.online.rows import online_row
from eas.sampling.online.sample import batch_probe_seed, require_watched
from eas.sampling.online.server import drive_server
from eas.sampling.online.setup import online_setup


class OnlineStream:
    """An iterator of ``TokenEvent``s; ``row`` is the finished sample's row once it is exhausted."""

    def __init__(
        self, backend: Any, prompt_text: str, sampling: SamplingConfig, eas: EASConfig, monitor: MonitorConfig
    ):
        self.backend = backend if isinstance(backend, StreamedBackend) else require_watched(backend)
        self.tokenizer = backend.tokenizer
        self.setup = online_setup(self.tokenizer, eas, monitor)
        self.prompt, self.sampling = prompt_text, sampling
        self.row: dict[str, Any] | None = None

    def __iter__(self) -> Iterator[TokenEvent]:
        seed = batch_probe_seed(self.setup.eas.probe_seed, 0)
        watch = BatchMonitor(self.tokenizer, 1, self.setup, seed, self.sampling.max_new_tokens)
        if isinstance(self.backend, StreamedBackend):  # a server: the controller (eas.sampling.online.server)
            steps = drive_server(self.backend, self.prompt, self.sampling, watch, sample_seed(self.sampling, 0, 0))
        else:
            steps = self.backend.decode_watched([self.prompt], self.sampling, watch, 0)
        for _ in steps:
            yield from watch.events
            watch.events.clear()
        yield from watch.events
        watch.events.clear()
        self.row = {"prompt": self.prompt, **online_row(self.tokenizer, watch.finished[0], self.setup)}


def stream(
    backend: Any,
    prompt: str,
    *,
    sampling: SamplingConfig | None = None,
    eas: EASConfig | None = None,
    monitor: MonitorConfig | None = None,
) -> OnlineStream:
    """Sample one answer to ``prompt``, yielding each token with H_t and the area so far.

    Args:
        backend: an in-process backend (``load_backend("embedded")`` or any hf model), or a
            server (``load_backend(..., backend="openai")``: top-K probes by request,
            ``eas.sampling.online.server``).
        prompt: the user's message; rendered with the chat template when
            ``eas.use_chat_template`` (the default), else used as the prompt text.
        sampling: temperature, top-p, budget and seed (``n`` is set to 1).
        eas: the trigger and what ends the area (``EASConfig``).
        monitor: ``probe_every``, a stop rule, ... (``MonitorConfig``).

    Example:
        >>> from eas import load_backend  # doctest: +SKIP
        >>> for ev in stream(load_backend("embedded"), "What is 17 * 3?"):  # doctest: +SKIP
        ...     print(ev.text, ev.entropy, ev.area)
    """
    eas = eas or EASConfig()
    sampling = replace(sampling or SamplingConfig(), n=1, batch_size=1)
    text = render_prompt(backend.tokenizer, prompt, eas.use_chat_template)
    return OnlineStream(backend, text, sampling, eas, monitor or MonitorConfig())
