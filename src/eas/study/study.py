"""The uncertainty study (docs/method.md sections 2-3): sample, grade, score, correlate, report.

Pipeline, per question: N samples (``eas.sampling.questions``) -> final answers, equivalence
classes, answer entropy, correctness entropy, pass rate (``eas.answers``) -> the
single-pass metrics of the first sample with a boxed answer, or the mean over the first
k such samples (``eas.scoring.runs.score_records`` on the exact sampled context) -> across questions, each
metric's correlation with the reference uncertainty (``eas.maths.correlation``) -> figures
(``eas.study.plots``), a report (``eas.study.report``) and ``traces.html``, every question
token by token (``eas.view.page``).

**(ours)** A sample without a final ``\\boxed{...}`` cannot be scored (x_T is undefined),
so by default the study scores the first sample of each question that has one
(``first_boxed``; off: sample 0, as the paper); a question with no such sample has no
metric values and drops out of the correlations, which report their n; the count is
logged and written to ``settings.json`` (``questions_without_scores``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from eas.answers import AnswerMatcher, check_extract_modes
from eas.config import EASConfig, SamplingConfig, setting
from eas.records import Record
from eas.sampling.questions import FewShot, Question
from eas.sampling.sample import grade_samples, sample_questions
from eas.storage.files import write_rows
from eas.storage.jsontext import dumps
from eas.study.tables import (
    REFERENCES,
    correlation_rows,
    per_question_rows,
    samples_to_score,
    write_correlations_csv,
)

log = logging.getLogger(__name__)

TRACES_PAGE = "traces.html"  # every question token by token (eas view), linked from the report


@dataclass(frozen=True)
class StudyConfig:
    """Settings of a study (the CLI builds it; defaults here).

    ``eas``: the study always scores the raw rendered prompt (the chat template is applied
    when building it) and keeps trajectories (not under a probe stride > 1: then EAS is
    estimated and the trajectory and option figures are left out).
    """

    sampling: SamplingConfig = setting(help="how the N answers are sampled", factory=SamplingConfig)
    eas: EASConfig = setting(help="the metric's settings (trigger, answer prefix, ...)", factory=EASConfig)
    extract: tuple[str, ...] = setting(
        ("boxed",),
        "answer extraction, modes tried in order, comma-separated: boxed (last \\boxed{...}), last-number, "
        "choice (last option letter)",
    )
    score_samples: int = setting(
        1, "K: average the metrics over the first K samples that have a boxed answer", metavar="K"
    )
    first_boxed: bool = setting(
        True,
        "score the first K samples that have a boxed final answer (off: the first K, whatever they hold)",
        flag="--sample0",
        flag_help="score the first K samples whatever they hold, as the paper (a question whose sample 0 has no "
        "boxed answer then drops out); default: the first K with a boxed answer",
    )
    alpha: float = setting(0.5, "decay exponent of Fig. 3's decayed cumulative probability")
    verify_timeout_s: int = setting(5, "seconds per math-verify parse or comparison", flag="--verify-timeout")
    label: str = setting("study", "name of this model/dataset in the correlation table")
    online: bool = setting(
        False,
        "measure every sample's EAS while sampling it (eas.sampling.online; probing one position in "
        "eas.probe_stride) instead of a second scoring pass over the chosen samples; the same values (docs/online.md)",
    )

    def __post_init__(self) -> None:
        if not 1 <= self.score_samples <= self.sampling.n:
            raise ValueError(f"score_samples must be in 1..n ({self.sampling.n})")
        if self.alpha < 0:
            raise ValueError("alpha must be >= 0")
        check_extract_modes(self.extract)


def score_samples(
    samples: Sequence[dict[str, Any]],
    backend: Any,
    config: StudyConfig,
    progress: bool = False,
) -> dict[str, dict[str, Any]]:
    """Score the chosen samples of every question (``samples_to_score``); rows (or errors) by sample id.

    Multiple-choice samples also track their option letters (``option_probs``).
    """
    from eas.scoring.batches import ScoreError
    from eas.scoring.runs import score_records

    first_boxed = config.first_boxed and config.eas.end == "answer"
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in samples:
        groups.setdefault(str(r["question_id"]), []).append(r)
    chosen = [r for rows in groups.values() for r in samples_to_score(rows, config.score_samples, first_boxed)]
    by_letters: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for r in chosen:
        letters = tuple("ABCDEFGHIJ"[: len(r["choices"])]) if r.get("choices") else ()
        by_letters.setdefault(letters, []).append(r)
    results: dict[str, dict[str, Any]] = {}
    for letters, rows in by_letters.items():
        # Figures 1 and 3 need every position: under a probe stride they are left out.
        full = config.eas.probe_stride == 1
        eas = replace(config.eas, use_chat_template=False, trajectory=full, track_tokens=letters if full else ())
        records = [Record(r["id"], r["prompt"], r["response"], r["answer"]) for r in rows]
        for item in score_records(records, backend, eas, progress=progress, total=len(records)):
            if isinstance(item, ScoreError):
                results[str(item.id)] = {"id": item.id, "error": item.reason}
            else:
                results[str(item["id"])] = item
    return results


def _sample_online(
    questions: Sequence[Question], backend: Any, config: StudyConfig, fewshot: Sequence[FewShot], progress: bool
) -> list[dict[str, Any]]:
    """Every sample with its online figures: the settings ``score_samples`` would score with."""
    from eas.config import MonitorConfig
    from eas.sampling.online import sample_questions_online

    full = config.eas.probe_stride == 1
    letters = tuple("ABCDEFGHIJ"[: max((len(q.choices or ()) for q in questions), default=0)]) if full else ()
    eas = replace(config.eas, use_chat_template=False, trajectory=full, track_tokens=letters)
    monitor = MonitorConfig(probe_every=config.eas.probe_stride, trajectory=full)
    return sample_questions_online(questions, backend, config.sampling, eas, monitor, fewshot, progress=progress)


def online_scores(graded: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The scores of ``score_samples``, read from monitored samples' rows (by sample id).

    A sample whose EAS could not be measured (no boxed answer) is an error row, as in
    ``score_samples``; a multiple-choice sample keeps the probabilities of its own options.
    """
    scores: dict[str, dict[str, Any]] = {}
    for r in graded:
        if r.get("eas_error"):
            scores[str(r["id"])] = {"id": r["id"], "error": r["eas_error"]}
            continue
        row = {k: v for k, v in r.items() if k not in ("prompt", "question", "answer", "choices")}
        if "option_probs" in row:
            letters = "ABCDEFGHIJ"[: len(r.get("choices") or ())]
            row["option_probs"] = {x: p for x, p in row["option_probs"].items() if x in letters} if letters else None
            if row["option_probs"] is None:
                del row["option_probs"]
        scores[str(r["id"])] = row
    return scores


@dataclass
class StudyResult:
    """What a study produced (also written to its folder)."""

    out_dir: Path
    samples: list[dict[str, Any]]
    table: list[dict[str, Any]]
    correlations: list[dict[str, Any]]
    figures: dict[str, Path]
    report_md: Path
    report_html: Path
    traces_html: Path


def run_study(
    questions: Sequence[Question],
    backend: Any,
    config: StudyConfig,
    out_dir: str | Path,
    fewshot: Sequence[FewShot] = (),
    dataset: str = "",
    progress: bool = False,
    on_stage: Callable[[str], None] | None = None,
) -> StudyResult:
    """Sample, grade, score, correlate, draw and report; every file goes to ``out_dir``."""
    from eas.study.plots import draw_figures
    from eas.study.report import write_report
    from eas.view.page import study_page

    started = time.monotonic()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stage = on_stage or (lambda s: log.info("%s", s))
    online = " with online EAS" if config.online else ""
    stage(f"sampling {config.sampling.n} answers for each of {len(questions)} questions{online}")
    if config.online:
        samples = _sample_online(questions, backend, config, fewshot, progress)
    else:
        samples = sample_questions(questions, backend, config.sampling, fewshot, progress)
    matcher = AnswerMatcher(config.verify_timeout_s)
    graded = grade_samples(questions, samples, config.extract, matcher)
    write_rows(graded, out / "samples.jsonl")
    if config.online:
        scores = online_scores(graded)
    else:
        which = "with a boxed answer " if config.first_boxed else ""
        stage(f"scoring the first {config.score_samples} sample(s) {which}of every question")
        scores = score_samples(graded, backend, config, progress)
    first_boxed = config.first_boxed and config.eas.end == "answer"
    table = per_question_rows(questions, graded, scores, config.score_samples, first_boxed)
    dropped = sum(1 for r in table if not r["scored_samples"])
    log.info("%d of %d questions have no scored sample and drop out of the correlations", dropped, len(table))
    write_rows(table, out / "per_question.jsonl")
    corr = [row for ref in REFERENCES for row in correlation_rows(table, ref, config.label)]
    write_correlations_csv(corr, out / "correlations.csv")
    stage("drawing figures and writing the report")
    figures = draw_figures(table, out, config.alpha)
    settings = {
        "model": backend.describe(),
        "dataset": dataset,
        "questions": len(questions),
        "sampling": asdict(config.sampling),
        "extract": list(config.extract),
        "score_samples": config.score_samples,
        "scored_samples": "first with a boxed answer" if first_boxed else "first",
        "questions_without_scores": dropped,
        "trigger": config.eas.trigger,
        "answer_prefix_tokens": config.eas.answer_prefix_tokens,
        "probe_stride": config.eas.probe_stride,
        "probe_seed": config.eas.probe_seed,
        "online": config.online,
        "alpha": config.alpha,
        "wall_time_s": round(time.monotonic() - started, 1),
    }
    (out / "settings.json").write_text(dumps(settings, indent=2, default=str) + "\n")
    model = settings["model"].get("model") if isinstance(settings["model"], dict) else None
    traces = out / TRACES_PAGE
    traces.write_text(study_page(table, config.label, None if model is None else str(model)), encoding="utf-8")
    md, html = write_report(out, settings, table, corr, figures, traces=traces.name)
    return StudyResult(out, graded, table, corr, figures, md, html, traces)
