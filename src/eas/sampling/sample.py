"""Sample N answers per question and grade them: answers, equivalence classes, correctness.

``sample_questions`` asks the backend (``Backend.sample``) for ``n`` answers to every
question's prompt (``eas.sampling.questions.build_prompt``); ``grade_samples`` extracts
each final answer, groups equivalent answers into classes and marks the correct ones
(``eas.answers``). ``sample_file`` (``eas sample``) does both into a file, resumably;
with a ``MonitorConfig`` it samples with online probes (``eas.sampling.online``), so each
row also holds its EAS and the other figures (``eas sample --monitor``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from eas.answers import AnswerMatcher, extract_answer
from eas.answers import group_answers as group
from eas.backends.base import Backend
from eas.config import EASConfig, MonitorConfig, SamplingConfig
from eas.progress import progress_bar
from eas.sampling.questions import FewShot, Question, build_prompt
from eas.storage.files import check_output_path, errors_path, write_results
from eas.storage.parts import PartStore, RunSummary, fingerprint, read_manifest


def loaded_backend(backend: Backend | Callable[[], Backend]) -> Backend:
    """The backend, or what the loader gives (a backend has ``measure``; a loader does not):
    a run loads its model only when some batch is still to run."""
    return backend() if callable(backend) and not hasattr(backend, "measure") else backend  # type: ignore[return-value]


def sample_questions(
    questions: Sequence[Question],
    backend: Backend,
    sampling: SamplingConfig,
    fewshot: Sequence[FewShot] = (),
    progress: bool = False,
    first_batch: int = 0,
) -> list[dict[str, Any]]:
    """Sample ``sampling.n`` responses per question; one row per sample (not graded yet).

    ``first_batch``: the sampler batch index of the first question (a resumed run samples
    a later slice with the seeds an uninterrupted run would have used).
    """
    prompts = [build_prompt(backend.tokenizer, q, fewshot) for q in questions]
    texts = backend.sample(prompts, sampling, progress=progress, first_batch=first_batch)
    rows = []
    for q, prompt, samples in zip(questions, prompts, texts, strict=True):
        for k, response in enumerate(samples):
            row = {"id": f"{q.id}/{k}", "question_id": q.id, "sample": k, "prompt": prompt, "response": response}
            row.update({"question": q.question, "answer": q.answer})
            if q.choices:
                row["choices"] = list(q.choices)
            rows.append(row)
    return rows


def grade_samples(
    questions: Sequence[Question],
    samples: Sequence[dict[str, Any]],
    extract: Sequence[str] = ("boxed",),
    matcher: AnswerMatcher | None = None,
) -> list[dict[str, Any]]:
    """Add ``extracted``, ``correct`` and ``answer_class`` to every sample row.

    Classes are numbered per question in order of first appearance; "no answer" is a class.
    """
    matcher = matcher or AnswerMatcher()
    by_id = {str(q.id): q for q in questions}
    out = [dict(r) for r in samples]
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in out:
        groups.setdefault(str(row["question_id"]), []).append(row)
    for qid, rows in groups.items():
        q = by_id[qid]
        answers = [extract_answer(r["response"], extract, q.choices) for r in rows]  # type: ignore[arg-type]
        labels = group(answers, matcher) if not q.choices else _letter_classes(answers)
        for r, a, label in zip(rows, answers, labels, strict=True):
            r["extracted"] = a
            r["answer_class"] = label
            r["correct"] = bool(a is not None and q.answer is not None and matcher.equivalent(a, q.answer))
    return out


def _letter_classes(answers: Sequence[str | None]) -> list[int]:
    """Classes of option letters: equal letters only (no math-verify)."""
    seen: dict[str | None, int] = {}
    return [seen.setdefault(a, len(seen)) for a in answers]


def sample_file(
    questions: Sequence[Question],
    out: str | Path,
    backend: Backend | Callable[[], Backend],
    sampling: SamplingConfig,
    *,
    fewshot: Sequence[FewShot] = (),
    extract: Sequence[str] = ("boxed",),
    matcher: Any = None,
    settings: dict[str, Any] | None = None,
    overwrite: bool = False,
    progress: bool = False,
    monitor: MonitorConfig | None = None,
    eas: EASConfig | None = None,
) -> RunSummary:
    """Sample and grade answers to ``questions`` into ``out``, resumably.

    One part per sampler batch (``batch_size // n`` questions), seeded by its batch index
    as in an uninterrupted run, so a resumed run writes exactly the same samples.
    ``monitor``: sample with online probes (the trigger, end and probe seed of ``eas``);
    without a stop rule the responses are those of an unmonitored run.
    """
    out = Path(out)
    check_output_path(out)
    all_settings = {
        "sampling": asdict(sampling),
        "fewshot": fingerprint([(s.question.text(), s.solution) for s in fewshot]),
        "extract": list(extract),
        **(settings or {}),
    }
    if monitor is not None:
        eas = eas or EASConfig()
        all_settings |= {"monitor": asdict(monitor), "eas": asdict(eas)}
    store = PartStore(out, all_settings, overwrite).open()
    if store.complete:
        man = read_manifest(out)
        return RunSummary(man.get("rows", 0), man.get("errors", 0), already_complete=True)
    made: list[Backend] = []
    per_batch = max(1, sampling.batch_size // sampling.n)
    indices = []
    with progress_bar(progress, len(questions), desc="sampling") as bar:
        for b, start in enumerate(range(0, len(questions), per_batch)):
            group = list(questions[start : start + per_batch])
            keys = [(q.id, fingerprint([q.question, q.answer, q.choices])) for q in group]
            indices.append(b)
            if not store.is_done(b, keys):
                if not made:
                    made.append(loaded_backend(backend))
                if monitor is not None:
                    from eas.sampling.online import sample_questions_online

                    rows = sample_questions_online(group, made[0], sampling, eas, monitor, fewshot, first_batch=b)
                else:
                    rows = sample_questions(group, made[0], sampling, fewshot, first_batch=b)
                store.write_part(b, keys, grade_samples(group, rows, extract, matcher), [])
            bar.update(len(group))
    counts = store.finish(indices, write_results, errors_path(out), {"questions": len(questions)})
    return RunSummary(counts["rows"], counts["errors"])
