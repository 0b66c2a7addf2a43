"""EAS inside LM-Polygraph: a stat calculator and two estimators, loaded by module path.

* ``EASTrajectoryCalculator`` computes the stat ``eas_trajectory``: for each greedy
  generation of the batch (the stat ``greedy_tokens``), the forced-answer entropy
  ``H_t`` (bits) at t = 1 .. T-1, with eas's packed probes on the model LM-Polygraph
  already holds (``eas.backends.hf.HFBackend``: one forward pass plus the probes, exact
  full-vocabulary entropies). The prompt is tokenized as the model saw it
  (``model.tokenize``, one text at a time so no padding enters), the response is the
  generated token ids themselves, less a final EOS.
* ``EAS`` (the area, ``sum H_t``) and ``MeanEAS`` (``EAS / (T-1)``) read it; higher means
  more uncertain, as LM-Polygraph expects.

Settings (``cfg`` of the calculator): ``trigger`` (default ``EASConfig.trigger``) and
``end``: ``response`` (default: x_T is the last generated token, for free-form answers)
or ``answer`` (x_T ends the last ``\\boxed{...}``; a generation without one has no
trajectory and its estimates are NaN).

polygraph_eval config::

    stat_calculators:
      - auto
      - name: EASTrajectoryCalculator
        builder: eas.integrations.lm_polygraph
        cfg: {end: response}
        stats: [eas_trajectory]
        dependencies: [greedy_tokens]
    estimators:
      - name: eas.integrations.lm_polygraph
        cfg: {kind: eas}
      - name: eas.integrations.lm_polygraph
        cfg: {kind: mean_eas}

From Python, ``stat_calculator_container()`` gives that calculator entry for ``UEManager``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from lm_polygraph.estimators.estimator import Estimator
from lm_polygraph.stat_calculators.stat_calculator import StatCalculator

from eas.config import EASConfig, EngineConfig
from eas.maths.metrics import entropy_area, mean_entropy_area

log = logging.getLogger(__name__)

STAT = "eas_trajectory"
DEPENDENCIES = ["greedy_tokens"]
ENDS = ("response", "answer")


def _get(cfg: Any, key: str, default: Any) -> Any:
    """``cfg[key]`` from a dict or an OmegaConf config, else ``default``."""
    if cfg is None:
        return default
    value = cfg.get(key, default) if hasattr(cfg, "get") else getattr(cfg, key, default)
    return default if value is None else value


class EASTrajectoryCalculator(StatCalculator):
    """The forced-answer entropy trajectory of each greedy generation (stat ``eas_trajectory``)."""

    @staticmethod
    def meta_info() -> tuple[list[str], list[str]]:
        return [STAT], list(DEPENDENCIES)

    def __init__(self, trigger: str = EASConfig.trigger, end: str = "response", chunk_size: int | None = None):
        super().__init__()
        if end not in ENDS:
            raise ValueError(f"end must be one of {', '.join(ENDS)}, not {end!r}")
        self.trigger = trigger
        self.end = end
        self.engine = EngineConfig(chunk_size=chunk_size)
        self._backend: Any = None

    def __str__(self) -> str:
        return f"EASTrajectoryCalculator(trigger={self.trigger!r}, end={self.end})"

    def _backend_for(self, model: Any) -> Any:
        from eas.backends.hf.backend import HFBackend

        if self._backend is None or self._backend.model is not model.model:
            self._backend = HFBackend(model.model, model.tokenizer, self.engine)
        return self._backend

    def _answer_end(self, tokenizer: Any, response_ids: list[int]) -> int | None:
        """T: the number of response tokens up to x_T (None: no boxed answer for end='answer')."""
        if self.end == "response":
            return len(response_ids)
        from eas.records import RecordError
        from eas.scoring.probes import answer_end_char

        text = tokenizer.decode(response_ids, skip_special_tokens=False)
        try:
            char = answer_end_char(text, "answer")
        except RecordError:
            return None
        # The first prefix whose decoded text reaches past x_T's last character.
        lo, hi = 1, len(response_ids)
        while lo < hi:
            mid = (lo + hi) // 2
            if len(tokenizer.decode(response_ids[:mid], skip_special_tokens=False)) > char:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def __call__(
        self, dependencies: dict[str, Any], texts: list[str], model: Any, max_new_tokens: int = 100, **kwargs: Any
    ) -> dict[str, list[np.ndarray]]:
        from eas.backends.base import EncodedRecord
        from eas.records import Record

        backend = self._backend_for(model)
        tok = model.tokenizer
        suffix = list(tok(self.trigger, add_special_tokens=False)["input_ids"])
        eos = tok.eos_token_id
        encoded: list[EncodedRecord | None] = []
        for i, text in enumerate(texts):
            prompt_ids = [int(x) for x in model.tokenize([text])["input_ids"][0]]
            response = [int(x) for x in dependencies["greedy_tokens"][i]]
            if response and eos is not None and response[-1] == eos:
                response = response[:-1]
            end = self._answer_end(tok, response) if response else None
            if end is None:
                encoded.append(None)
                continue
            record = Record(i, text, tok.decode(response, skip_special_tokens=False))
            encoded.append(EncodedRecord(record, prompt_ids, response, suffix, end))
        runnable = [e for e in encoded if e is not None]
        measured = iter(backend.measure(runnable)) if runnable else iter(())
        # [NaN]: no x_T (an empty generation, or no boxed answer with end='answer'); [] is T = 1.
        trajectories = [np.array([np.nan]) if e is None else next(measured).probe_entropies for e in encoded]
        return {STAT: trajectories}


class EAS(Estimator):
    """Entropy Area Score: ``sum_t H_t`` over the greedy generation (bits; higher = more uncertain)."""

    def __init__(self) -> None:
        super().__init__([STAT], "sequence")

    def __str__(self) -> str:
        return "EAS"

    def __call__(self, stats: dict[str, Any]) -> np.ndarray:
        return np.array([entropy_area(h) for h in _trajectories(stats)])  # NaN where no trajectory


class MeanEAS(Estimator):
    """Mean EAS: EAS / (T-1) (bits per position; NaN without a probe)."""

    def __init__(self) -> None:
        super().__init__([STAT], "sequence")

    def __str__(self) -> str:
        return "MeanEAS"

    def __call__(self, stats: dict[str, Any]) -> np.ndarray:
        values = [mean_entropy_area(h) for h in _trajectories(stats)]
        return np.array([np.nan if v is None else v for v in values], dtype=float)


def _trajectories(stats: dict[str, Any]) -> list[np.ndarray]:
    return [np.asarray(h, dtype=np.float64) for h in stats[STAT]]


ESTIMATORS = {"eas": EAS, "mean_eas": MeanEAS}


def load_stat_calculator(cfg: Any, env: Any = None) -> EASTrajectoryCalculator:
    """LM-Polygraph's builder hook: the calculator with the settings of ``cfg``."""
    return EASTrajectoryCalculator(
        trigger=_get(cfg, "trigger", EASConfig.trigger),
        end=_get(cfg, "end", "response"),
        chunk_size=_get(cfg, "chunk_size", None),
    )


def load_estimator(cfg: Any = None) -> Estimator:
    """LM-Polygraph's estimator hook: ``cfg.kind`` = ``eas`` (default) or ``mean_eas``."""
    kind = _get(cfg, "kind", "eas")
    if kind not in ESTIMATORS:
        raise ValueError(f"kind must be one of {', '.join(ESTIMATORS)}, not {kind!r}")
    return ESTIMATORS[kind]()


def stat_calculator_container(cfg: dict[str, Any] | None = None) -> Any:
    """The ``StatCalculatorContainer`` that makes ``UEManager`` build this calculator."""
    from lm_polygraph.utils.factory_stat_calculator import StatCalculatorContainer
    from omegaconf import OmegaConf

    return StatCalculatorContainer(
        name="EASTrajectoryCalculator",
        cfg=OmegaConf.create(cfg or {}),
        stats=[STAT],
        dependencies=list(DEPENDENCIES),
        builder=__name__,
    )
