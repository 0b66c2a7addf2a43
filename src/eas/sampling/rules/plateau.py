"""``plateau`` (ours): stop when the forced-answer entropy has stayed low for a while.

H_t (or, with ``mean``, its mean over the probes of the last ``w`` tokens) below ``h``
bits for ``w`` tokens, after at least ``min_tokens`` tokens. Only steps with a probe
are read: under ``--probe-every k`` a run of low values is judged by the probes it holds.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from eas.sampling.rules.base import Checker, Step, StopRule, register


@register
@dataclass(frozen=True)
class Plateau(StopRule):
    """Stop when the entropy stays below a threshold for ``w`` tokens.

    Attributes:
        h: the threshold in bits.
        w: how many tokens it must stay below.
        min_tokens: never stop before this many tokens.
        mean: compare the mean of the probes over the last ``w`` tokens, not each one.
    """

    name = "plateau"
    swept = "h"
    h: float = 0.5
    w: int = 32
    min_tokens: int = 64
    mean: bool = False

    def __post_init__(self) -> None:
        if self.w < 1 or self.min_tokens < 0 or self.h <= 0:
            raise ValueError("need h > 0, w >= 1 and min_tokens >= 0")

    def start(self) -> Checker:
        window: deque[tuple[int, float]] = deque()
        below_since: list[int | None] = [None]

        def check(step: Step) -> str | None:
            if step.entropy is None:
                return None
            t, h = step.t, step.entropy
            if self.mean:
                window.append((t, h))
                while window[0][0] <= t - self.w:
                    window.popleft()
                level = sum(v for _, v in window) / len(window)
                held = t >= self.w and level < self.h
            else:
                below_since[0] = None if h >= self.h else (below_since[0] or t)
                level, held = h, below_since[0] is not None and t - below_since[0] + 1 >= self.w
            if held and t >= self.min_tokens:
                what = "mean H" if self.mean else "H"
                return f"plateau: {what} {level:.3g} < {self.h} bits for {self.w} tokens"
            return None

        return check
