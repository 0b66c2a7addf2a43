"""Online EAS through llama.cpp's native ``llama-server``: the server controller, for real.

The server runs the embedded Q4_1 GGUF with two slots (``-np 2``: the stream in one, the
probes in the other, so probes run while the generation goes on) and one thread. Every
probe is a token-id prompt (prompt + the generated ids + the trigger), so the in-process
hf backend (the same weights dequantized to float32) can score exactly the same probes;
what remains between the two is quantisation (see test_native_server.py: the server
quantizes the activations for its Q4_1 products).

Measured here (3 prompts, 32 tokens each, seeds 0-2): 99 % of the in-process H_t lie
inside [H_t, H_t + bound_t] of the server's probe (4 prompts x 40 tokens: 124 of 125,
the one outside by 0.10 bits); r = 0.99 between the exact H_t and the interval
midpoints; the streamed token log-probs give the in-process perplexity within 1.5 %.
Tolerances below: 95 % of positions (the issue's bar, as test_native_server.py), 0.05
bits per probe on the EAS interval, r >= 0.95, perplexity within 5 %.
"""

import numpy as np
import pytest
from support import read_jsonl, write_jsonl

from eas.backends.base import EncodedRecord
from eas.backends.load import load_backend
from eas.backends.prompts import render_prompt, text_prompt_ids
from eas.config import EASConfig, MonitorConfig, SamplingConfig, ServerConfig
from eas.maths.metrics import perplexity
from eas.records import Record
from eas.sampling.online import online_setup, stream

pytestmark = pytest.mark.server

PROMPTS = [
    "Name a prime number larger than 10.",
    "What is the capital of France?",
    "Write a haiku about rain.",
]
TOKENS = 32
MIN_INSIDE, TOL_PER_PROBE, MIN_R, PPL_REL = 0.95, 0.05, 0.95, 0.05
EAS = EASConfig(end="response")  # every sample has an EAS, boxed answer or not


@pytest.fixture(scope="module")
def server():
    from eas.testing.llama_server import native_llama_server

    with native_llama_server(n_ctx=4096, n_threads=1, n_parallel=2) as url:
        backend = load_backend("embedded", backend="openai", server=ServerConfig(base_url=url, concurrency=1))
        yield backend
        backend.close()


def _run(backend, prompt, seed, monitor):
    events = stream(backend, prompt, sampling=SamplingConfig(max_new_tokens=TOKENS, seed=seed), eas=EAS,
                    monitor=monitor)  # fmt: skip
    evs = list(events)
    reasoning = [e.token for e in evs if e.phase == "reason" and e.text]  # the end token has no text
    return reasoning, evs, events.row


def test_probes_hold_the_in_process_entropy_within_their_bounds(server):
    hf = load_backend("embedded")
    tokenizer = hf.tokenizer
    suffix = list(online_setup(tokenizer, EAS, MonitorConfig()).suffix_ids)
    exact_h, lo, hi = [], [], []
    for seed, prompt in enumerate(PROMPTS):
        ids, _, row = _run(server, prompt, seed, MonitorConfig(trajectory=True))
        assert row["reasoning_tokens"] == len(ids) and row["retokenizes"] and row["eas_bound"] > 0
        n = row["n_probes"]
        enc = EncodedRecord(Record(str(seed), prompt, row["response"]), text_prompt_ids(tokenizer,
                            render_prompt(tokenizer, prompt)), ids, suffix, n + 1)  # fmt: skip
        m = hf.measure([enc])[0]
        tol = TOL_PER_PROBE * n
        assert row["eas"] - tol <= float(m.probe_entropies.sum()) <= row["eas"] + row["eas_bound"] + tol
        assert row["ppl"] == pytest.approx(perplexity(m.token_logprobs), rel=PPL_REL)
        exact_h += list(m.probe_entropies)
        lo += row["trajectory"]
        hi += list(np.add(row["trajectory"], row["trajectory_bound"]))
    exact_h, lo, hi = map(np.asarray, (exact_h, lo, hi))
    assert np.mean((exact_h >= lo) & (exact_h <= hi)) >= MIN_INSIDE
    assert np.corrcoef(exact_h, (lo + hi) / 2)[0, 1] >= MIN_R
    assert server.stats["retokenized_probes"] == 0


def test_a_budget_stop_fires_at_t_and_forces_the_answer(server):
    tokenizer = server.tokenizer
    monitor = MonitorConfig(stop="budget:n=5", answer_tokens=8)
    full, _, _ = _run(server, PROMPTS[0], 0, MonitorConfig())
    ids, events, row = _run(server, PROMPTS[0], 0, monitor)
    assert row["stopped_at"] == 5 and row["reasoning_tokens"] == 5 and row["stop_reason"] == "budget: 5 tokens"
    assert ids[:5] == full[:5]  # the same seed: the same tokens up to the stop
    assert [e.stop_reason for e in events if e.stop_reason] == ["budget: 5 tokens"]
    # the forced answer is the server's greedy continuation of the reasoning cut at t = 5 + trigger
    setup = online_setup(tokenizer, EAS, monitor)
    context = text_prompt_ids(tokenizer, render_prompt(tokenizer, PROMPTS[0])) + ids[:5]
    greedy = [t.token for t in server.stream_completion(context + list(setup.suffix_ids), 8, None, None)]
    text = tokenizer.decode(greedy, skip_special_tokens=True)
    assert row["final_answer"] == (text.split("}")[0] if "}" in text else text).strip()
    assert row["area_at_stop"] == row["eas"] and row["n_probes"] == 5


def test_monitored_samples_equal_the_unmonitored_ones(tmp_path):
    """``eas sample --backend openai`` with and without ``--monitor``, each on a fresh server
    (a server's KV cache of earlier work can change how a prompt's chunks round)."""
    from eas.cli import main
    from eas.testing.llama_server import native_llama_server

    questions = write_jsonl(
        tmp_path / "q.jsonl", [{"id": f"q{i}", "question": f"What is {i} + 2?", "answer": str(i + 2)} for i in range(2)]
    )
    runs = []
    variants = (("plain", []), ("every", ["--monitor"]), ("every2", ["--monitor", "--probe-every", "2"]))
    for name, extra in variants:
        with native_llama_server(n_ctx=4096, n_threads=1, n_parallel=2) as url:
            args = ["-q", "sample", str(questions), "--model", "embedded", "--backend", "openai", "--base-url", url]
            args += ["-n", "2", "--max-new-tokens", "24", "--concurrency", "1", "--seed", "5", "--end", "response"]
            assert main([*args, *extra, "--out", str(tmp_path / f"{name}.jsonl")]) == 0
        runs.append(read_jsonl(tmp_path / f"{name}.jsonl"))
    plain, every, every2 = runs
    assert [r["response"] for r in every] == [r["response"] for r in plain]
    assert [r["response"] for r in every2] == [r["response"] for r in plain]
    assert len({r["response"] for r in plain}) > 1  # each sample has its own seed
    assert all(r["online"] and r["probe_stride"] == 1 and r["eas_bound"] > 0 for r in every)
    assert all(r["probe_stride"] == 2 and r["n_probes_run"] < r["n_probes"] for r in every2 if r["n_probes"] > 3)


def test_early_exit_through_the_server_equals_its_stopped_runs(tmp_path):
    """``eas early-exit --backend openai`` (full runs replayed) against ``eas sample --backend openai
    --stop`` of the same arm and seeds, each on a fresh server: the same stops, tokens and forced answers."""
    from eas.cli import main
    from eas.testing.llama_server import native_llama_server

    questions = write_jsonl(
        tmp_path / "q.jsonl", [{"id": f"q{i}", "question": f"What is {i} + 3?", "answer": str(i + 3)} for i in range(2)]
    )
    common = ["--model", "embedded", "--backend", "openai", "-n", "1", "--max-new-tokens", "16", "--seed", "2"]
    common += ["--concurrency", "1", "--answer-tokens", "8", "--no-fewshot", "--end", "response"]
    with native_llama_server(n_ctx=4096, n_threads=1, n_parallel=2) as url:
        out = tmp_path / "ee"
        argv = ["-q", "early-exit", str(questions), "--out", str(out), "--base-url", url, *common]
        assert main([*argv, "--rule", "budget", "--sweep", "5", "--rule", "plateau:h=0.01,w=2,min_tokens=0"]) == 0
    with native_llama_server(n_ctx=4096, n_threads=1, n_parallel=2) as url:
        live = tmp_path / "live.jsonl"
        argv = ["-q", "sample", str(questions), "--out", str(live), "--base-url", url, *common, "--stop", "budget:n=5"]
        assert main(argv) == 0
    runs, stopped = read_jsonl(out / "runs.jsonl"), read_jsonl(live)
    for run, row in zip(runs, stopped, strict=True):
        budget, never = run["exits"]
        assert budget["stopped_at"] == row["stopped_at"] == 5 and never["stopped_at"] is None
        assert budget["tokens"] == row["tokens_generated"] and budget["final_answer"] == row["final_answer"]
        assert never["tokens"] == run["tokens_generated"]
        assert run["eas_bound"] > 0  # a top-K lower value carries its bound
