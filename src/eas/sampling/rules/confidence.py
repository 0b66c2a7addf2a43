"""``confidence``: DEER-style (Yang et al., "Dynamic Early Exit in Reasoning Models",
arXiv 2504.15895): stop at a boundary once the forced answer is confident.

DEER, at "Wait"-style transition points, forces a trial answer and stops when the mean
top-token probability of the trial answer's tokens is >= 0.95. Here, at every paragraph
boundary (``\\n\\n``), the confidence is the probability of the forced answer's first
token (the probe's top probability, from the same forward pass as H_t): cheaper (no
trial answer is decoded) and exact for one-token answers, an approximation otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

from eas.sampling.rules.base import Checker, Step, StopRule, register


@register
@dataclass(frozen=True)
class Confidence(StopRule):
    """Stop at a boundary when the forced answer's first token has probability >= ``p``.

    Attributes:
        p: the confidence threshold (DEER's 0.95).
        min_tokens: never stop before this many tokens.
    """

    name = "confidence"
    swept = "p"
    boundary_probes = True
    p: float = 0.95
    min_tokens: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.p <= 1 or self.min_tokens < 0:
            raise ValueError("need 0 < p <= 1 and min_tokens >= 0")

    def start(self) -> Checker:
        def check(step: Step) -> str | None:
            if not step.boundary or step.top_prob is None or step.t < self.min_tokens:
                return None
            if step.top_prob >= self.p:
                return f"confidence: answer token probability {step.top_prob:.3f} >= {self.p} at a boundary"
            return None

        return check
