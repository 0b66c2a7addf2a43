"""The server controller of online EAS: a streamed generation, probed by requests (``--backend openai``).

An OpenAI-compatible server (llama-server, vLLM) cannot run the trigger inside its own
decoding step, so the controller plays the decoding loop's part for the sampling
layer's ``BatchMonitor`` (a batch of one row; the same ``Watch`` calls as
``eas.backends.hf.generate.DecodeLoop``, so the stop rules, the probe plan, the forced
answer and the rows are those of the in-process path):

1. the generation is streamed (``StreamedBackend.stream_completion``: token-id prompt,
   the sample's seed, temperature and top-p), token by token, with each token's id;
2. after x_t, when the monitor asks for a probe at t (every token, or under
   ``probe_every`` k the seeded position of each block plus paragraph boundaries when the
   rule reads them), one request: prompt + x_1..x_t + trigger, as token ids (the
   tokens exactly as generated), 1 token at temperature 0, top-K log-probs
   (``StreamedBackend.probe_ids``). The server's prefix cache holds the previous probe's
   prompt + x_1..x_{t-1}, so each probe computes x_t and the trigger only. H_t is the
   top-K entropy, the exact H_t lies in ``[H_t, H_t + bound_t]`` (docs/method.md), and the
   rules read that lower value (and the exact top probability);
3. on a stop at t the stream is closed (the server stops generating), and the forced
   answer is one more greedy stream of prompt + x_1..x_t + end of thinking + trigger,
   closed as soon as the trigger's brace closes (``answer_tokens`` at most);
4. when the row ends, the positions the stratified plan still lacks are probed.

The generation's own tokens arrive while probes are answered: the stream and the probes
need two server slots (llama-server ``-np 2``) to run side by side; with one slot the
probes wait for the generation to end (the same numbers, but a stop saves no server time).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from eas.backends.openai.backend import sample_seed
from eas.backends.prompts import text_prompt_ids
from eas.backends.watch import Emitted, StreamedBackend, StreamToken
from eas.config import SamplingConfig
from eas.maths.stratified import record_seed
from eas.sampling.online.monitor import BatchMonitor, answer_so_far
from eas.sampling.online.rows import OnlineSample
from eas.sampling.online.setup import OnlineSetup

__all__ = ["drive_server", "require_streamed", "server_forced_answer", "server_samples"]


def require_streamed(backend: Any) -> StreamedBackend:
    """The backend, if it can stream and probe (a server); else a one-line ``ValueError``."""
    if not isinstance(backend, StreamedBackend):
        raise ValueError("this backend can neither decode under a watch (--backend hf) nor stream and probe a server")
    return backend


def _eos_id(tokenizer: Any) -> int:
    eos = tokenizer.eos_token_id
    return int(eos[0] if isinstance(eos, (list, tuple)) else eos if eos is not None else -1)


def _ends(tokenizer: Any, tok: StreamToken) -> bool:
    """Whether a streamed token ends the generation: the tokenizer's EOS, or a special token the
    server sent as empty text (llama-server streams its end-of-generation token so; vLLM does not
    stream it at all, and the stream's ``finish_reason`` says ``stop``)."""
    return tok.token == tokenizer.eos_token_id or (not tok.text and tok.token in set(tokenizer.all_special_ids))


def drive_server(
    backend: Any, prompt: str, sampling: SamplingConfig, watch: BatchMonitor, seed: int | None
) -> Iterator[int]:
    """Generate one sample of ``prompt`` (text) on the server, reporting to ``watch`` as row 0;
    yields after every token (so a caller can stream ``watch.events``). ``seed``: the server's
    sampling seed. A server error (``ServerError``) propagates: the row is never finished
    with half a generation."""
    server = require_streamed(backend)
    if watch.track_ids:
        raise ValueError("tracked tokens need the whole distribution at every probe: use --backend hf")
    tokenizer = watch.tokenizer
    prompt_ids = text_prompt_ids(tokenizer, prompt)
    watch.rows[0].sample.topk = True
    reasoning = watch.rows[0].sample.reasoning.ids
    suffix = list(watch.suffix_ids)
    forced: Sequence[int] | None = None
    with server.stream_completion(prompt_ids, sampling.max_new_tokens, sampling, seed) as stream:
        step = 0
        for tok in stream:
            if _ends(tokenizer, tok):  # the end token is not text: no probe, the row ends
                watch.emitted([Emitted(0, tok.token, tok.logprob, None, eos=True)])
                break
            watch.emitted([Emitted(0, tok.token, tok.logprob, None)])
            yield step
            step += 1
            if len(reasoning) >= sampling.max_new_tokens:
                break  # the budget's last token: the row ends unfed, as in-process
            probe = server.probe_ids(prompt_ids + reasoning + suffix) if watch.probe_now([0]) else None
            stops = watch.measured([0], None if probe is None else [probe])
            if stops:
                forced = stops[0]
                break
        else:
            if stream.finish_reason == "stop":  # an end token the server did not stream (vLLM)
                watch.emitted([Emitted(0, _eos_id(tokenizer), None, None, eos=True)])
    if forced is not None:
        yield from _forced_answer(server, watch, prompt_ids + reasoning, forced, step)
    positions = watch.catch_up(0)
    watch.ended(0, {t: server.probe_ids(prompt_ids + reasoning[:t] + suffix) for t in positions})


def _forced_answer(
    server: StreamedBackend, watch: BatchMonitor, context: list[int], forced: Sequence[int], step: int
) -> Iterator[int]:
    """Force ``forced`` (end of thinking + trigger) after ``context`` and decode the answer greedily
    until the monitor has it (the trigger's brace closed), an end token, or ``answer_tokens``."""
    for token in forced:
        watch.emitted([Emitted(0, token, None, None, forced=True)])
    budget = watch.setup.monitor.answer_tokens
    with server.stream_completion(context + list(forced), budget, None, None) as answer:
        for tok in answer:
            done = watch.emitted(
                [Emitted(0, tok.token, tok.logprob, None, forced=True, eos=_ends(watch.tokenizer, tok))]
            )
            yield step
            step += 1
            if done:
                return
    if answer.finish_reason == "stop":
        watch.emitted([Emitted(0, _eos_id(watch.tokenizer), None, None, forced=True, eos=True)])


def server_plan_seed(probe_seed: int, question: int, k: int) -> int:
    """Seed of the positions sample ``k`` of question number ``question`` probes under ``probe_every`` > 1
    (each server sample is its own batch of one)."""
    return record_seed(["online-server", int(question), int(k)], probe_seed)


def server_samples(
    backend: Any, prompts: Sequence[str], sampling: SamplingConfig, setup: OnlineSetup, first_question: int
) -> list[OnlineSample]:
    """``sampling.n`` monitored samples of each prompt text on the server, one after the other
    (sample ``i * n + k``), with the seeds of ``eas sample --backend openai``."""
    samples = []
    for i, prompt in enumerate(prompts):
        for k in range(sampling.n):
            q = first_question + i
            watch = BatchMonitor(
                backend.tokenizer, 1, setup, server_plan_seed(setup.eas.probe_seed, q, k), sampling.max_new_tokens
            )
            for _ in drive_server(backend, prompt, sampling, watch, sample_seed(sampling, q, k)):
                watch.events.clear()
            sample = watch.finished[0]
            sample.row = i * sampling.n + k
            samples.append(sample)
    return samples


def server_forced_answer(backend: Any, setup: OnlineSetup, context: Sequence[int]) -> tuple[list[int], str]:
    """The greedy answer after ``context`` (prompt, reasoning kept, end of thinking, trigger: token ids)
    on the server: ``(answer ids, answer text)``, cut where the trigger's brace closes, at an end token,
    or after ``answer_tokens``, as the in-process forced answer."""
    server = require_streamed(backend)
    tokenizer, ids, text = backend.tokenizer, [], ""
    with server.stream_completion(list(context), setup.monitor.answer_tokens, None, None) as answer:
        for tok in answer:
            end = _ends(tokenizer, tok)
            ids.append(tok.token)
            text, complete = answer_so_far(tokenizer.decode(ids, skip_special_tokens=True), setup.trigger_open_braces)
            if complete or end:
                return ids, text.strip()
    if answer.finish_reason == "stop":
        ids.append(_eos_id(tokenizer))
    return ids, text.strip()
