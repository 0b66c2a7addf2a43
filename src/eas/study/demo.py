"""``eas demo``: the uncertainty study on the built-in question set and the embedded model.

Full: all built-in questions (60 open arithmetic/word problems, 20 four-option multiple
choice), n = 8 samples each. Quick: a spread subset of 12 open and 4 multiple-choice
questions, n = 4, for a first look in about two minutes of CPU. Sampling settings are
chosen to fit the budget of ``eas demo`` (<= 10 minutes on 2 CPU cores).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eas.config import EASConfig, SamplingConfig
from eas.sampling.questions import Question, builtin_questions_path, load_fewshot, load_questions
from eas.study.study import StudyConfig, StudyResult, run_study


@dataclass(frozen=True)
class DemoPlan:
    """Which questions and how many samples a demo runs."""

    name: str
    every_open: int  # take every k-th open question
    every_choice: int  # take every k-th multiple-choice question
    sampling: SamplingConfig


FULL = DemoPlan("full", 1, 1, SamplingConfig(n=8, temperature=0.7, top_p=0.95, max_new_tokens=80, batch_size=64))
QUICK = DemoPlan("quick", 5, 5, SamplingConfig(n=4, temperature=0.7, top_p=0.95, max_new_tokens=80, batch_size=64))


def demo_questions(plan: DemoPlan) -> list[Question]:
    """The plan's subset of the built-in questions, in file order."""
    questions = load_questions(builtin_questions_path())
    open_q = [q for q in questions if not q.choices][:: plan.every_open]
    choice_q = [q for q in questions if q.choices][:: plan.every_choice]
    return open_q + choice_q


def run_demo(
    backend: Any, out_dir: str | Path, quick: bool = False, progress: bool = False, eas: EASConfig | None = None
) -> StudyResult:
    """Run the demo study with ``backend`` (normally the embedded model) into ``out_dir``;
    ``eas``: the metric's settings (e.g. a probe stride; default ``EASConfig()``)."""
    plan = QUICK if quick else FULL
    config = StudyConfig(sampling=plan.sampling, eas=eas or EASConfig(), label=f"SmolLM2-135M, built-in ({plan.name})")
    return run_study(
        demo_questions(plan),
        backend,
        config,
        out_dir,
        fewshot=load_fewshot(None),
        dataset=f"built-in question set ({plan.name} demo)",
        progress=progress,
    )
