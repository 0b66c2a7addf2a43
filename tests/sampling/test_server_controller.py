"""The server controller of online EAS against a scripted streaming server (no model).

The stub streams a fixed generation (sampled requests) or a fixed answer (greedy ones) in
llama-server's chunk shape (``logprobs.content`` with ids, one token a chunk, as recorded
from b11434), and answers each probe with two tokens whose probabilities depend on the
probe prompt's length only, so every expected H_t, bound and area is computed here from
the stub's own rule, independently of the controller.
"""

from __future__ import annotations

import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from support import write_jsonl

from eas.backends.openai.backend import OpenAIBackend
from eas.backends.openai.client import ServerError
from eas.backends.openai.stream import parse_chunk
from eas.backends.prompts import render_prompt, text_prompt_ids
from eas.backends.watch import StreamToken
from eas.config import EASConfig, MonitorConfig, SamplingConfig, ServerConfig
from eas.maths.entropy import topk_truncation_bound
from eas.maths.stratified import probe_plan
from eas.sampling.online import online_setup, stream
from eas.sampling.online.sample import batch_probe_seed

GENERATION = "We add: 2 + 5 = 7.\n\nSo the answer is \\boxed{7}."
ANSWER = "42} because"
QUESTION = "What is 2 + 5?"
FAST = {"backoff_s": 0.01, "timeout_s": 10.0, "max_retries": 0}


def dist(n: int) -> tuple[float, float]:
    """The stub's two top probabilities after a probe prompt of n tokens."""
    return 0.3 + 0.05 * (n % 7), 0.2


def h_bits(n: int) -> float:
    p, q = dist(n)
    return -(p * math.log2(p) + q * math.log2(q))


class StreamStub:
    """Streams ``generation`` (sampled requests) or ``answer`` (temperature 0) ids; probes answer ``dist``.

    ``error_after``: a streamed generation stops after that many tokens with an error event
    (``mode="event"``: llama-server's ``error:`` line; ``"chunk"``: a ``data: {"error": ...}``
    chunk; ``"cut"``: the connection just closes)."""

    def __init__(self, tokenizer, generation, answer, error_after=None, mode="event", stream_eos=False):
        self.tokenizer, self.generation, self.answer = tokenizer, generation, answer
        self.stream_eos = stream_eos  # llama-server streams its end token as an empty-text entry, vLLM does not
        self.error_after, self.mode = error_after, mode
        self.requests: list[dict] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self._json({"object": "list", "data": [{"id": "stub"}]})

            def _json(self, body):
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.requests.append(body)
                if body.get("stream"):
                    return stub.stream(self, body)
                ids = body["prompt"]
                p, q = dist(len(ids))
                top = [{"id": 5, "token": "a", "logprob": math.log(p)}, {"id": 6, "token": "b", "logprob": math.log(q)}]
                self._json({"choices": [{"text": "a", "logprobs": {"content": [{**top[0], "top_logprobs": top}]}}]})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stream(self, handler, body):
        greedy = body.get("temperature") == 0
        ids = (self.answer if greedy else self.generation)[: body["max_tokens"]]
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.end_headers()
        try:
            for n, i in enumerate(ids):
                if not greedy and n == self.error_after:
                    if self.mode == "event":
                        handler.wfile.write(b'error: {"code": 500, "message": "slot crashed"}\n\n')
                    elif self.mode == "chunk":
                        handler.wfile.write(b'data: {"error": {"code": 500, "message": "slot crashed"}}\n\n')
                    return
                text = self.tokenizer.decode([i])
                entry = {"id": i, "token": text, "logprob": -0.1, "top_logprobs": []}
                chunk = {"choices": [{"text": text, "logprobs": {"content": [entry]}, "finish_reason": None}]}
                handler.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                handler.wfile.flush()
            finish = "length" if len(ids) == body["max_tokens"] else "stop"
            if finish == "stop" and self.stream_eos:
                entry = {"id": self.tokenizer.eos_token_id, "token": "", "logprob": -2.0, "top_logprobs": []}
                chunk = {"choices": [{"text": "", "logprobs": {"content": [entry]}, "finish_reason": None}]}
                handler.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            done = {"choices": [{"text": "", "logprobs": None, "finish_reason": finish}]}
            handler.wfile.write(f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n".encode())
        except (BrokenPipeError, ConnectionResetError):  # the controller closed the stream
            pass

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def ids(tokenizer):
    return list(tokenizer(GENERATION, add_special_tokens=False)["input_ids"])


def _run(tokenizer, stub, monitor, eas=None, max_new_tokens=64):
    backend = OpenAIBackend("stub", tokenizer, ServerConfig(base_url=stub.url, **FAST))
    events = stream(backend, QUESTION, sampling=SamplingConfig(max_new_tokens=max_new_tokens, seed=3), eas=eas,
                    monitor=monitor)  # fmt: skip
    tokens = list(events)
    backend.close()
    return tokens, events.row


def test_chunks_name_their_tokens_by_id_or_fail():
    entry = {"id": 253, "token": " a", "logprob": -0.5}
    chunk = {"choices": [{"text": " a", "logprobs": {"content": [entry]}, "finish_reason": None}]}
    assert parse_chunk(chunk) == ([StreamToken(253, " a", -0.5)], None)
    legacy = {"tokens": ["token_id:7", "token_id:9"], "token_logprobs": [-1.0, None]}  # vLLM with token-id keys
    toks, finish = parse_chunk({"choices": [{"text": "xy", "logprobs": legacy, "finish_reason": "stop"}]})
    assert [(t.token, t.logprob) for t in toks] == [(7, -1.0), (9, None)] and finish == "stop"
    with pytest.raises(ServerError, match="names no token ids"):
        parse_chunk({"choices": [{"text": " a", "logprobs": {"tokens": [" a"]}, "finish_reason": None}]})
    with pytest.raises(ServerError, match="names no token ids"):
        parse_chunk({"choices": [{"text": " a", "logprobs": None, "finish_reason": None}]})
    with pytest.raises(ServerError, match="stopped the stream with an error: boom"):
        parse_chunk({"error": {"message": "boom"}})


@pytest.mark.parametrize("stream_eos", [False, True])
def test_every_token_is_probed_on_the_exact_generated_ids(tokenizer, ids, stream_eos):
    stub = StreamStub(tokenizer, ids, [], stream_eos=stream_eos)
    try:
        events, row = _run(tokenizer, stub, MonitorConfig(trajectory=True))
    finally:
        stub.close()
    setup = online_setup(tokenizer, EASConfig(), MonitorConfig())
    prompt = text_prompt_ids(tokenizer, render_prompt(tokenizer, QUESTION))
    suffix = list(setup.suffix_ids)
    gen, probes = stub.requests[1], stub.requests[2:]
    assert gen["stream"] and gen["prompt"] == prompt and gen["seed"] == 3 * 1_000_003  # eas sample's seed of q0/0
    assert gen["temperature"] == SamplingConfig().temperature and gen["max_tokens"] == 64
    # one probe per generated token (the stream ended on an end token, so the last is probed too), in order of t
    assert [p["prompt"] for p in probes] == [prompt + ids[:t] + suffix for t in range(1, len(ids) + 1)]
    assert all(p["max_tokens"] == 1 and p["temperature"] == 0 and not p.get("stream") for p in probes)
    assert [e.token for e in events] == [*ids, tokenizer.eos_token_id]
    n = row["n_probes"]
    t_box = tokenizer.decode(ids).index("7}") + 1  # x_T holds the boxed 7
    assert n == len(tokenizer(GENERATION[:t_box], add_special_tokens=False)["input_ids"]) - 1
    expected = [h_bits(len(prompt) + t + len(suffix)) for t in range(1, n + 1)]
    np.testing.assert_allclose(row["trajectory"], expected, rtol=1e-9)
    bounds = [
        float(topk_truncation_bound(np.log(dist(len(prompt) + t + len(suffix))), len(tokenizer)))
        for t in range(1, n + 1)
    ]
    np.testing.assert_allclose(row["trajectory_bound"], bounds, rtol=1e-9)
    assert row["eas"] == pytest.approx(sum(expected)) and row["eas_bound"] == pytest.approx(sum(bounds))
    assert row["ppl"] == pytest.approx(math.exp(0.1)) and row["mean_token_entropy"] is None and row["hes"] is None
    assert row["response"] == GENERATION and row["stopped_at"] is None and row["tokens_generated"] == len(ids) + 1


def test_a_stop_closes_the_stream_and_forces_the_answer(tokenizer, ids):
    answer = list(tokenizer(ANSWER, add_special_tokens=False)["input_ids"])
    stub = StreamStub(tokenizer, ids, answer)
    monitor = MonitorConfig(stop="budget:n=3", answer_tokens=8)
    try:
        events, row = _run(tokenizer, stub, monitor)
    finally:
        stub.close()
    setup = online_setup(tokenizer, EASConfig(), monitor)
    prompt = text_prompt_ids(tokenizer, render_prompt(tokenizer, QUESTION))
    forced = list(setup.close_ids) + list(setup.suffix_ids)
    last = stub.requests[-1]
    assert last["stream"] and last["temperature"] == 0 and last["max_tokens"] == 8
    assert last["prompt"] == prompt + ids[:3] + forced  # the reasoning cut at t = 3, closed, the trigger
    n_probes = sum(1 for r in stub.requests if not r.get("stream") and r["max_tokens"] == 1) - 1  # minus detection
    assert n_probes == 3
    used = next(k for k in range(1, len(answer) + 1) if "}" in tokenizer.decode(answer[:k]))
    assert row["stopped_at"] == 3 and row["stop_reason"] == "budget: 3 tokens" and row["final_answer"] == "42"
    assert row["reasoning_tokens"] == 3 and row["tokens_generated"] == 3 + len(forced) + used
    h = [h_bits(len(prompt) + t + len(setup.suffix_ids)) for t in (1, 2, 3)]
    assert row["area_at_stop"] == pytest.approx(sum(h)) and row["eas"] == pytest.approx(sum(h))
    assert [e.phase for e in events].count("answer") == len(forced) + used


def test_probe_every_k_gives_the_stratified_estimate(tokenizer, ids):
    stub = StreamStub(tokenizer, ids, [])
    try:
        _, row = _run(tokenizer, stub, MonitorConfig(probe_every=3, trajectory=True))
    finally:
        stub.close()
    prompt = text_prompt_ids(tokenizer, render_prompt(tokenizer, QUESTION))
    s = len(online_setup(tokenizer, EASConfig(), MonitorConfig()).suffix_ids)
    plan = probe_plan(row["n_probes"], 3, batch_probe_seed(EASConfig().probe_seed, 0))  # as stream() seeds it
    h = np.array([h_bits(len(prompt) + t + s) for t in plan.positions])
    assert row["trajectory_t"] == list(plan.positions) and row["probe_stride"] == 3
    assert row["eas"] == pytest.approx(float(np.dot(plan.weights, h)))
    probed = [len(r["prompt"]) - len(prompt) - s for r in stub.requests[2:] if not r.get("stream")]
    assert set(plan.positions) <= set(probed) and len(probed) < len(ids)  # not every token


@pytest.mark.parametrize("mode", ["event", "chunk", "cut"])
def test_a_server_error_mid_stream_writes_nothing(tokenizer, ids, tmp_path, capsys, mode):
    from eas.cli import main

    stub = StreamStub(tokenizer, ids, [], error_after=4, mode=mode)
    q = write_jsonl(tmp_path / "q.jsonl", [{"id": "q1", "question": QUESTION, "answer": "7"}])
    out = tmp_path / "s.jsonl"
    argv = ["-q", "sample", str(q), "--out", str(out), "--model", "embedded", "--backend", "openai"]
    argv += ["--base-url", stub.url, "--max-retries", "0", "-n", "1", "--monitor"]
    try:
        assert main(argv) == 2
    finally:
        stub.close()
    err = capsys.readouterr().err
    why = {"event": "slot crashed", "chunk": "slot crashed", "cut": "without a finish_reason"}[mode]
    assert "the server failed" in err and why in err and "Traceback" not in err
    assert not out.exists() or not out.read_text().strip()
