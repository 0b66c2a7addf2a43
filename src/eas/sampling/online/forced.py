"""Forced answers of given prefixes: what a monitored run decodes after a stop, decoded apart.

``eas early-exit`` replays stop rules on the curve of a full monitored sample
(``eas.sampling.online.replay``); where a rule stops at t, the sample's answer is the one
the monitored run would have forced there: the prompt, the reasoning x_1..x_t, the
end-of-thinking ids (unless the reasoning already closed it) and the trigger, then greedy
decoding until the trigger's brace closes, an end token, or ``answer_tokens`` tokens, as
``eas.sampling.online.monitor`` decodes it in the loop. Here every prefix is prefilled
whole (one batch of token-id prompts through the backend's ``decode_watched``), so the
logits differ from the loop's token-by-token ones only by float rounding. On a server
each prefix is one greedy streamed request (``eas.sampling.online.server``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from eas.backends.prompts import text_prompt_ids
from eas.backends.watch import Emitted, Probe, StreamedBackend
from eas.config import SamplingConfig
from eas.sampling.online.monitor import answer_so_far
from eas.sampling.online.setup import THINK_END, OnlineSetup


@dataclass(frozen=True)
class Prefix:
    """Where a sample stopped: its prompt as the sampler rendered it, the reasoning ids kept
    and their text as the monitor joined it (which decides whether the thinking is closed)."""

    prompt: str
    reasoning_ids: tuple[int, ...]
    reasoning_text: str


@dataclass(frozen=True)
class ForcedAnswer:
    """The answer forced after a prefix.

    Attributes:
        forced_ids: the ids forced before the greedy answer (end of thinking, trigger).
        answer_ids: the greedy answer's ids (an end token included when it came).
        answer_text: the answer inside the trigger's brace (what was decoded of it when
            the budget ran out first).
    """

    forced_ids: tuple[int, ...]
    answer_ids: tuple[int, ...]
    answer_text: str


def forced_ids(setup: OnlineSetup, reasoning_text: str) -> tuple[int, ...]:
    """What is forced after the reasoning: the end of thinking (unless it is there) and the trigger."""
    close = () if THINK_END in reasoning_text else setup.close_ids
    return tuple(close) + tuple(setup.suffix_ids)


class _AnswerWatch:
    """A ``Watch`` that only decodes: it ends a row when its greedy answer is complete."""

    def __init__(self, tokenizer: Any, setup: OnlineSetup, n_rows: int):
        self.tokenizer, self.setup = tokenizer, setup
        self.suffix_ids, self.track_ids = setup.suffix_ids, ()
        self.ids: list[list[int]] = [[] for _ in range(n_rows)]
        self.text: list[str] = [""] * n_rows

    def emitted(self, tokens: Sequence[Emitted]) -> set[int]:
        done = set()
        for e in tokens:
            self.ids[e.row].append(e.token)
            greedy = self.tokenizer.decode(self.ids[e.row], skip_special_tokens=True)
            answer, complete = answer_so_far(greedy, self.setup.trigger_open_braces)
            self.text[e.row] = answer.strip()
            if complete or e.eos:
                done.add(e.row)
        return done

    def probe_now(self, rows: Sequence[int]) -> bool:
        return False

    def measured(self, rows: Sequence[int], probes: Sequence[Probe] | None) -> Mapping[int, Sequence[int]]:
        return {}

    def catch_up(self, row: int) -> Sequence[int]:
        return ()

    def ended(self, row: int, probes: Mapping[int, Probe]) -> None:
        return None


def forced_answers(
    backend: Any,
    setup: OnlineSetup,
    prefixes: Sequence[Prefix],
    batch_size: int,
) -> list[ForcedAnswer]:
    """The forced answer after each prefix, in order.

    Args:
        backend: a ``WatchedBackend`` (the hf backend), or a server (``StreamedBackend``:
            one greedy stream per prefix, its prefix cache reused).
        setup: the monitored run's ids and settings (trigger, end of thinking, answer budget).
        prefixes: the stops.
        batch_size: prefixes decoded per batch.
    """
    tokenizer = backend.tokenizer
    if isinstance(backend, StreamedBackend):  # a server: one greedy stream per prefix
        from eas.sampling.online.server import server_forced_answer

        out = []
        for p in prefixes:
            forced = forced_ids(setup, p.reasoning_text)
            context = text_prompt_ids(tokenizer, p.prompt) + list(p.reasoning_ids) + list(forced)
            ids, text = server_forced_answer(backend, setup, context)
            out.append(ForcedAnswer(forced, tuple(ids), text))
        return out
    config = SamplingConfig(
        n=1, temperature=0.0, max_new_tokens=setup.monitor.answer_tokens, batch_size=max(1, batch_size)
    )
    out: list[ForcedAnswer] = []
    for start in range(0, len(prefixes), config.batch_size):
        chunk = prefixes[start : start + config.batch_size]
        forced = [forced_ids(setup, p.reasoning_text) for p in chunk]
        prompts = [
            text_prompt_ids(tokenizer, p.prompt) + list(p.reasoning_ids) + list(f)
            for p, f in zip(chunk, forced, strict=True)
        ]
        watch = _AnswerWatch(tokenizer, setup, len(prompts))
        for _ in backend.decode_watched(prompts, replace(config, batch_size=len(prompts)), watch, 0):
            pass
        out += [ForcedAnswer(f, tuple(watch.ids[i]), watch.text[i]) for i, f in enumerate(forced)]
    return out
