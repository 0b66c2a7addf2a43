"""``eat``: the EAT rule (Wang et al., "Entropy After </Think> for reasoning model early
exiting", arXiv 2509.26522; github.com/xidulu/EAT).

At every paragraph boundary (``\\n\\n``, EAT's reasoning steps) the forced-answer entropy
H is read and folded into an exponential moving average and variance (timescale
``alpha``): the first boundary sets the mean to H and the variance to 0; then
``mean <- alpha H + (1 - alpha) mean`` and ``var <- alpha (H - mean)^2 + (1 - alpha) var``
with the updated mean (the order of EAT's ``exponential_moving_variance``). Stop once
``var < delta`` at the m-th boundary or later (the online check of interwhen's
``EATMonitor``: ``len(entropies) >= min_steps``). Defaults alpha 0.2, delta 1e-4, m 4 are
that implementation's.

Our deviation: EAT reads the entropy after appending ``</think>`` and an answer prompt;
here H is this run's probe (the trigger, after the end of thinking only when the trigger
says so), the same H_t as EAS.
"""

from __future__ import annotations

from dataclasses import dataclass

from eas.sampling.rules.base import Checker, Step, StopRule, register


@register
@dataclass(frozen=True)
class EAT(StopRule):
    """Stop when the EMA variance of H at paragraph boundaries falls below ``delta``.

    Attributes:
        alpha: the EMA timescale (weight of the newest value).
        delta: the variance threshold (bits squared).
        m: the fewest boundaries before a stop.
    """

    name = "eat"
    swept = "delta"
    boundary_probes = True
    alpha: float = 0.2
    delta: float = 1e-4
    m: int = 4

    def __post_init__(self) -> None:
        if not 0 < self.alpha <= 1 or self.delta <= 0 or self.m < 1:
            raise ValueError("need 0 < alpha <= 1, delta > 0 and m >= 1")

    def start(self) -> Checker:
        state = {"n": 0, "mean": 0.0, "var": 0.0}

        def check(step: Step) -> str | None:
            if not step.boundary or step.entropy is None:
                return None
            h, a = step.entropy, self.alpha
            state["n"] += 1
            if state["n"] == 1:
                state["mean"], state["var"] = h, 0.0
            else:
                state["mean"] = a * h + (1 - a) * state["mean"]
                state["var"] = a * (h - state["mean"]) ** 2 + (1 - a) * state["var"]
            if state["n"] >= self.m and state["var"] < self.delta:
                return f"eat: EMA variance {state['var']:.3g} < {self.delta} after {state['n']} boundaries"
            return None

        return check
