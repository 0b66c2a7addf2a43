"""Monitored sampling of questions: n answers each, with their online EAS (``eas sample --monitor``).

The batches, prompts and seeds are those of ``eas.sampling.sample.sample_questions``
(``batch_size // n`` questions a batch, the generator seeded by the batch index), so
without a stop rule the responses are those of an unmonitored run. Each row also holds
the figures ``eas score`` would give its text (``eas.sampling.online.rows``). A server
(a ``StreamedBackend``) is driven by ``eas.sampling.online.server`` instead, sample by
sample, with the seeds of ``eas sample --backend openai``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eas.backends.watch import StreamedBackend, WatchedBackend
from eas.config import EASConfig, MonitorConfig, SamplingConfig
from eas.maths.stratified import record_seed
from eas.progress import progress_bar
from eas.sampling.online.monitor import BatchMonitor
from eas.sampling.online.rows import OnlineSample, online_row
from eas.sampling.online.setup import OnlineSetup, online_setup
from eas.sampling.questions import FewShot, Question, build_prompt


def batch_probe_seed(probe_seed: int, batch_index: int) -> int:
    """Seed of the positions a batch probes under ``probe_every`` > 1 (one draw per batch)."""
    return record_seed(["online-batch", int(batch_index)], probe_seed)


def require_watched(backend: Any) -> WatchedBackend:
    """The backend, if it can decode under a watch; else a one-line ``ValueError``."""
    if not isinstance(backend, WatchedBackend):
        raise ValueError(
            "online EAS runs inside the decoding loop of an in-process model: use the hf backend "
            "(--backend hf), not a server"
        )
    return backend


def require_online(backend: Any) -> Any:
    """The backend, if online probes can run on it (in its decoding loop, or a server the controller
    streams and probes); else a one-line ``ValueError``."""
    if not isinstance(backend, (WatchedBackend, StreamedBackend)):
        raise ValueError("online EAS needs an in-process model (--backend hf) or an OpenAI-compatible server")
    return backend


def monitored_samples(
    backend: Any, prompts: Sequence[str], sampling: SamplingConfig, setup: OnlineSetup, batch_index: int
) -> list[OnlineSample]:
    """The finished samples of one sampler batch (sample ``i * n + k``): decoded under a
    ``BatchMonitor`` in-process, or, on a server, by the controller sample by sample."""
    if isinstance(backend, StreamedBackend):
        from eas.sampling.online.server import server_samples

        first_question = batch_index * max(1, sampling.batch_size // sampling.n)
        return server_samples(backend, prompts, sampling, setup, first_question)
    watched = require_watched(backend)
    n_rows = len(prompts) * sampling.n
    seed = batch_probe_seed(setup.eas.probe_seed, batch_index)
    monitor = BatchMonitor(backend.tokenizer, n_rows, setup, seed, sampling.max_new_tokens)
    for _ in watched.decode_watched(prompts, sampling, monitor, batch_index):
        monitor.events.clear()
    return [monitor.finished[r] for r in range(n_rows)]


def monitor_batch(
    backend: Any, prompts: Sequence[str], sampling: SamplingConfig, setup: OnlineSetup, batch_index: int
) -> list[dict[str, Any]]:
    """One online row per sample of one sampler batch (row ``i * n + k``)."""
    samples = monitored_samples(backend, prompts, sampling, setup, batch_index)
    return [online_row(backend.tokenizer, s, setup) for s in samples]


def sample_questions_online(
    questions: Sequence[Question],
    backend: Any,
    sampling: SamplingConfig,
    eas: EASConfig,
    monitor: MonitorConfig,
    fewshot: Sequence[FewShot] = (),
    first_batch: int = 0,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """``sampling.n`` monitored responses per question; one row per sample (not graded yet).

    ``first_batch``: the sampler batch index of the first question, as in ``sample_questions``.
    """
    setup = online_setup(backend.tokenizer, eas, monitor)
    per_batch = max(1, sampling.batch_size // sampling.n)
    rows = []
    with progress_bar(progress, len(questions), desc="sampling (online EAS)") as bar:
        for b, start in enumerate(range(0, len(questions), per_batch), start=first_batch):
            rows += _batch_rows(backend, list(questions[start : start + per_batch]), sampling, setup, fewshot, b)
            bar.update(min(per_batch, len(questions) - start))
    return rows


def _batch_rows(
    backend: Any,
    group: list[Question],
    sampling: SamplingConfig,
    setup: OnlineSetup,
    fewshot: Sequence[FewShot],
    b: int,
) -> list[dict[str, Any]]:
    """The rows of one sampler batch (its questions' n samples each), as ``sample_questions`` lays them out."""
    prompts = [build_prompt(backend.tokenizer, q, fewshot) for q in group]
    online = monitor_batch(backend, prompts, sampling, setup, b)
    rows = []
    for i, (q, prompt) in enumerate(zip(group, prompts, strict=True)):
        for k in range(sampling.n):
            row = {"id": f"{q.id}/{k}", "question_id": q.id, "sample": k, "prompt": prompt}
            row.update(online[i * sampling.n + k])
            row.update({"question": q.question, "answer": q.answer})
            if q.choices:
                row["choices"] = list(q.choices)
            rows.append(row)
    return rows
