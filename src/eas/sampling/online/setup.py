"""What a monitored run needs in token ids, built once from the tokenizer and the settings.

The trigger is tokenized alone, without special tokens, exactly as ``eas score`` builds
a probe's suffix (``eas.scoring.probes``), so an online H_t is the H_t of post-hoc
scoring. On a stop, the reasoning is closed the model's way: the end-of-thinking text
(``MonitorConfig.end_of_thinking``; by default ``\\n</think>\\n\\n`` when the chat template
uses ``</think>``, else nothing) and then the trigger are forced, each tokenized alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eas.config import EASConfig, MonitorConfig
from eas.sampling.rules import StopRule, parse_rule

THINK_END = "</think>"


@dataclass(frozen=True)
class OnlineSetup:
    """Token ids and settings of a monitored run.

    Attributes:
        suffix_ids: the trigger's ids (every probe's suffix).
        track_ids: ids whose probability each probe returns (``EASConfig.track_tokens``).
        close_ids: ids forced on a stop before the trigger (may be empty).
        close_text: their text (skipped when the reasoning already holds it).
        eas: the metric's settings.
        monitor: the monitor's settings.
        rule: the stop rule, or None.
    """

    suffix_ids: tuple[int, ...]
    track_ids: tuple[int, ...]
    close_ids: tuple[int, ...]
    close_text: str
    eas: EASConfig
    monitor: MonitorConfig
    rule: StopRule | None

    @property
    def trigger_open_braces(self) -> int:
        """Braces the trigger leaves open (``\\boxed{``: 1); the forced answer ends when they close."""
        return self.eas.trigger.count("{") - self.eas.trigger.count("}")


def end_of_thinking(tokenizer: Any, monitor: MonitorConfig) -> str:
    """The text that closes the reasoning on a stop (see the module docstring)."""
    if monitor.end_of_thinking is not None:
        return monitor.end_of_thinking
    template = getattr(tokenizer, "chat_template", None) or ""
    return f"\n{THINK_END}\n\n" if isinstance(template, str) and THINK_END in template else ""


def online_setup(tokenizer: Any, eas: EASConfig, monitor: MonitorConfig) -> OnlineSetup:
    """Ids and settings of a monitored run; ``ValueError`` (one line) for what it cannot do."""
    if eas.answer_prefix_tokens:
        raise ValueError(
            "online probes use the trigger alone: answer_prefix_tokens must be 0 (drop --answer-prefix-tokens)"
        )
    suffix = tuple(tokenizer(eas.trigger, add_special_tokens=False)["input_ids"])
    if not suffix:
        raise ValueError(f"the trigger {eas.trigger!r} has no tokens")
    track = []
    for text in eas.track_tokens:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise ValueError(f"tracked token {text!r} is {len(ids)} tokens with this tokenizer, not one")
        track.append(int(ids[0]))
    close = end_of_thinking(tokenizer, monitor)
    close_ids = tuple(tokenizer(close, add_special_tokens=False)["input_ids"]) if close else ()
    rule = parse_rule(monitor.stop) if monitor.stop else None
    return OnlineSetup(suffix, tuple(track), close_ids, close, eas, monitor, rule)
