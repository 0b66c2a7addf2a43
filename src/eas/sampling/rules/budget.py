"""``budget``: stop after a fixed number of reasoning tokens (the baseline every early-exit paper compares with)."""

from __future__ import annotations

from dataclasses import dataclass

from eas.sampling.rules.base import Checker, Step, StopRule, register


@register
@dataclass(frozen=True)
class Budget(StopRule):
    """Stop once ``n`` tokens have been generated.

    Attributes:
        n: the token budget of the reasoning.
    """

    name = "budget"
    swept = "n"
    n: int = 512

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError("n must be >= 1")

    def start(self) -> Checker:
        def check(step: Step) -> str | None:
            return f"budget: {step.t} tokens" if step.t >= self.n else None

        return check
