"""Settings of an early-exit evaluation (``eas early-exit``); every default here, once."""

from __future__ import annotations

from dataclasses import dataclass

from eas.config import EASConfig, MonitorConfig, SamplingConfig, setting


@dataclass(frozen=True)
class EarlyExitConfig:
    """What ``eas early-exit`` runs and how it summarises it.

    ``arms``: every stop rule to evaluate, as complete ``NAME:k=v,...`` specs (a sweep is
    one arm per value; ``eas.sampling.rules.parse_sweep``). ``monitor``: the forced
    answer's budget and the end-of-thinking text (the full run is probed at every token
    and never stopped, so its ``probe_every`` and ``stop`` are not used).
    """

    arms: tuple[str, ...] = setting((), "the stop rules, one per arm (NAME:k=v,...)")
    sampling: SamplingConfig = setting(help="how the answers are sampled", factory=SamplingConfig)
    eas: EASConfig = setting(help="the trigger and what ends the area", factory=EASConfig)
    monitor: MonitorConfig = setting(help="the forced answer's budget, the end of thinking", factory=MonitorConfig)
    resamples: int = setting(2000, "bootstrap draws of the paired accuracy difference", flag="--bootstrap-resamples")
    confidence: float = setting(0.95, "level of the paired bootstrap interval")
    bootstrap_seed: int = setting(0, "seed of the bootstrap draws")

    def __post_init__(self) -> None:
        if not self.arms:
            raise ValueError("give at least one stop rule (--rule)")
        if len(set(self.arms)) < len(self.arms):
            raise ValueError("a stop rule is given twice")
        if self.resamples < 100:
            raise ValueError("resamples must be >= 100")
        if not 0 < self.confidence < 1:
            raise ValueError("confidence must be in (0, 1)")
        if self.monitor.probe_every != 1 or self.monitor.stop is not None:
            raise ValueError("the full run is probed at every token and never stopped (probe_every 1, no stop)")
