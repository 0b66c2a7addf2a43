"""The early-exit run: full monitored generations, every stop rule replayed on them, the
forced answers of the stops, all graded; one part per sampler batch, so a killed run resumes.

For each sampler batch (the batches and seeds of ``eas sample``): the questions' n samples
are decoded with a probe after every token and no stop (``monitored_samples``: a
``BatchMonitor`` in-process, or the server controller), which gives the
full generation, its EAS and, at every step, what a stop rule reads. Each arm's rule is
replayed on those steps (``eas.sampling.online.replay``): where it stops at t, the exit's
answer is the one a monitored run would force there (``eas.sampling.online.forced``), so
each exit is paired with the full run whose first t tokens it shares. Both are graded as
``eas sample`` grades (``grade_samples``: math-verify equivalence of the extracted answer).

One output row per sample: the full run (response, extracted, correct, tokens, EAS) and
``exits``, one entry per arm (stopped_at or null, the reason, tokens, the forced answer
and its grade; an arm that never fired repeats the full run's answer and tokens).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from eas.answers import AnswerMatcher
from eas.sampling.online.forced import ForcedAnswer, Prefix, forced_answers
from eas.sampling.online.replay import first_stop, recorded_steps
from eas.sampling.online.rows import OnlineSample, online_row
from eas.sampling.online.sample import monitored_samples, require_online
from eas.sampling.online.setup import OnlineSetup, online_setup
from eas.sampling.questions import FewShot, Question, build_prompt
from eas.sampling.rules import StopRule, parse_rule
from eas.sampling.sample import grade_samples, loaded_backend
from eas.storage.files import errors_path, write_results
from eas.storage.parts import PartStore, RunSummary, fingerprint, read_manifest
from eas.study.early_exit.config import EarlyExitConfig

RUNS = "runs.jsonl"
FULL_COLUMNS = ("response", "tokens_generated", "reasoning_tokens", "eas", "n_probes")


def question_keys(questions: Sequence[Question]) -> list[tuple[Any, str]]:
    """``(id, fingerprint)`` of every question: what a part covers."""
    return [(q.id, fingerprint([q.question, q.answer, q.choices])) for q in questions]


def run_settings(
    config: EarlyExitConfig,
    questions: Sequence[Question],
    fewshot: Sequence[FewShot],
    extract: Sequence[str],
    backend: dict[str, Any],
) -> dict[str, Any]:
    """Everything that decides the run's numbers (the run store refuses a rerun with others)."""
    return {
        "arms": list(config.arms),
        "sampling": asdict(config.sampling),
        "eas": {"trigger": config.eas.trigger, "end": config.eas.end},
        "forced_answer": {
            "answer_tokens": config.monitor.answer_tokens,
            "end_of_thinking": config.monitor.end_of_thinking,
        },
        "extract": list(extract),
        "fewshot": fingerprint([(s.question.text(), s.solution) for s in fewshot]),
        "questions": fingerprint(question_keys(questions)),
        "backend": backend,
    }


def run_early_exit(
    questions: Sequence[Question],
    out_dir: str | Path,
    backend: Any,
    config: EarlyExitConfig,
    *,
    fewshot: Sequence[FewShot] = (),
    extract: Sequence[str] = ("boxed",),
    matcher: AnswerMatcher | None = None,
    backend_settings: dict[str, Any] | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> RunSummary:
    """Run (or resume) the evaluation into ``out_dir/runs.jsonl``.

    Args:
        questions: the questions (id, question, answer, optional choices).
        out_dir: the output folder (created).
        backend: an in-process backend (``WatchedBackend``) or a server (``StreamedBackend``,
            the controller of ``eas.sampling.online.server``), or a callable that loads one
            (called only when some batch is still to run).
        config: the arms, sampling and forced-answer settings.
        fewshot, extract, matcher: the prompts' examples and the grading, as ``eas sample``.
        backend_settings: the backend as resolved (model, dtype, device), for the run's identity.
        overwrite: start again even when ``out_dir`` holds a run with other settings.
        progress: show a progress bar.
    """
    from eas.progress import progress_bar

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = run_settings(config, questions, fewshot, extract, backend_settings or {})
    store = PartStore(out / RUNS, settings, overwrite).open()
    if store.complete:
        man = read_manifest(out / RUNS)
        return RunSummary(man.get("rows", 0), man.get("errors", 0), already_complete=True)
    matcher = matcher or AnswerMatcher()
    arms = [parse_rule(spec) for spec in config.arms]
    per_batch = max(1, config.sampling.batch_size // config.sampling.n)
    loaded: list[Any] = []
    indices = []
    with progress_bar(progress, len(questions), desc="early exit", unit="question") as bar:
        for b, start in enumerate(range(0, len(questions), per_batch)):
            group = list(questions[start : start + per_batch])
            keys = question_keys(group)
            indices.append(b)
            if not store.is_done(b, keys):
                if not loaded:  # loaded only when some batch is still to run; its ids built once
                    model = require_online(loaded_backend(backend))
                    loaded += [model, online_setup(model.tokenizer, config.eas, config.monitor)]
                rows = _batch_rows(loaded[0], loaded[1], group, config, arms, fewshot, b, extract, matcher)
                store.write_part(b, keys, rows, [])
            bar.update(len(group))
    counts = store.finish(indices, write_results, errors_path(out / RUNS), {"questions": len(questions)})
    return RunSummary(counts["rows"], counts["errors"])


def _batch_rows(
    backend: Any,
    setup: OnlineSetup,
    group: list[Question],
    config: EarlyExitConfig,
    arms: Sequence[StopRule],
    fewshot: Sequence[FewShot],
    b: int,
    extract: Sequence[str],
    matcher: AnswerMatcher,
) -> list[dict[str, Any]]:
    """One sampler batch: the full runs, each arm's stop replayed on them, the forced answers, the grades."""
    tokenizer, sampling = backend.tokenizer, config.sampling
    prompts = [build_prompt(tokenizer, q, fewshot) for q in group]
    n_rows = len(prompts) * sampling.n
    samples = monitored_samples(backend, prompts, sampling, setup, b)
    full = grade_samples(group, [_full_row(tokenizer, group, s, setup, sampling.n) for s in samples], extract, matcher)
    stops = [[first_stop(rule, recorded_steps(s)) for rule in arms] for s in samples]
    wanted = sorted({(r, stop[0]) for r, per_arm in enumerate(stops) for stop in per_arm if stop is not None})
    prefixes = [_prefix(prompts[r // sampling.n], samples[r], t) for r, t in wanted]
    answers = dict(zip(wanted, forced_answers(backend, setup, prefixes, sampling.batch_size), strict=True))
    for a, spec in enumerate(config.arms):
        exits = [_exit_row(tokenizer, full[r], samples[r], stops[r][a], answers) for r in range(n_rows)]
        stopped = [e for e in exits if e["stopped_at"] is not None]
        for e, graded in zip(stopped, grade_samples(group, stopped, extract, matcher), strict=True):
            e.update(extracted=graded["extracted"], correct=graded["correct"])
        for row, e in zip(full, exits, strict=True):
            row["exits"].append({"arm": spec, **{k: v for k, v in e.items() if k not in _ROW_KEYS}})
    return full


_ROW_KEYS = ("id", "question_id", "response")


def _full_row(
    tokenizer: Any, group: list[Question], sample: OnlineSample, setup: OnlineSetup, n: int
) -> dict[str, Any]:
    """The full run of one sample: its response, tokens and EAS (graded afterwards), exits to come."""
    q = group[sample.row // n]
    online = online_row(tokenizer, sample, setup)
    row = {"id": f"{q.id}/{sample.row % n}", "question_id": q.id, "sample": sample.row % n, "answer": q.answer}
    row.update({k: online[k] for k in FULL_COLUMNS})
    if "eas_bound" in online:  # a server's top-K value: the exact EAS lies in [eas, eas + eas_bound]
        row["eas_bound"] = online["eas_bound"]
    row["question"], row["exits"] = q.question, []
    if q.choices:
        row["choices"] = list(q.choices)
    return row


def _prefix(prompt: str, sample: OnlineSample, t: int) -> Prefix:
    """Where ``sample`` stops at t: its prompt and its first t reasoning tokens."""
    return Prefix(prompt, tuple(sample.reasoning.ids[:t]), "".join(sample.reasoning.pieces[:t]))


def _exit_row(
    tokenizer: Any,
    full: dict[str, Any],
    sample: OnlineSample,
    stop: tuple[int, str] | None,
    answers: dict[tuple[int, int], ForcedAnswer],
) -> dict[str, Any]:
    """One arm's exit of one sample (the full run's answer and tokens when the rule never fired)."""
    if stop is None:
        return {
            "id": full["id"],
            "question_id": full["question_id"],
            "stopped_at": None,
            "stop_reason": None,
            "tokens": full["tokens_generated"],
            "area_at_stop": None,
            "final_answer": None,
            "extracted": full["extracted"],
            "correct": full["correct"],
        }
    t, reason = stop
    forced = answers[(sample.row, t)]
    ids = list(sample.reasoning.ids[:t]) + list(forced.forced_ids) + list(forced.answer_ids)
    area = sum(sample.probes[u].entropy for u in range(1, t + 1))
    return {
        "id": full["id"],
        "question_id": full["question_id"],
        "response": tokenizer.decode(ids, skip_special_tokens=True).strip(),
        "stopped_at": t,
        "stop_reason": reason,
        "tokens": len(ids),
        "area_at_stop": area,
        "final_answer": forced.answer_text,
    }
