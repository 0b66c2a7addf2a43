"""The openai backend against each engine's answer shape through the stub server
(tests/support/stub_server.py cites the sources): detection, id keys, vLLM's K cap, SGLang's
/generate, null/NaN log-probs retried then a record error, and the manifest."""

import json
import logging
import math

import numpy as np
import pytest
from support.stub_server import Stub

from eas.backends.openai.backend import OpenAIBackend
from eas.config import EASConfig, ServerConfig
from eas.maths.entropy import topk_truncation_bound
from eas.records import Record
from eas.scoring.batches import ScoreError
from eas.scoring.probes import encode_record
from eas.scoring.runs import score_records

REC = Record("a", "What is 2+3?", r"2 + 3 = 5, so \boxed{5}.")
FAST = {"backoff_s": 0.01, "timeout_s": 10.0}
P = (0.5, 0.25)
H_BITS = 1.0  # -(0.5 log2 0.5 + 0.25 log2 0.25)


def _top(tokenizer):
    last = encode_record(tokenizer, REC, EASConfig()).prompt_ids[-1]
    other = tokenizer(" 5", add_special_tokens=False)["input_ids"][0]
    return {last: P[0], other: P[1]}


def _score(stub, tokenizer, **server):
    b = OpenAIBackend("m", tokenizer, ServerConfig(base_url=stub.url, **{**FAST, **server}))
    return b, list(score_records([REC], b, EASConfig(trajectory=True)))


@pytest.mark.parametrize(
    ("shape", "route", "keyed_by", "token_id_keys"),
    [
        ("llama_server", "completions", "id", False),
        ("vllm", "completions", "id", True),  # via return_tokens_as_token_ids
        ("sglang", "generate", "id", False),  # the adapter keys by text: /generate gives ids
        ("legacy", "completions", "text", False),
    ],
)
def test_each_engine_shape_gives_the_same_figures(tokenizer, shape, route, keyed_by, token_id_keys):
    with Stub(tokenizer, _top(tokenizer), shape=shape) as stub:
        b, rows = _score(stub, tokenizer)
    row = rows[0]
    assert not isinstance(row, ScoreError), row
    p = b.profile
    assert (p.prompt_mode, p.route, p.keyed_by, p.token_id_keys) == ("ids", route, keyed_by, token_id_keys)
    assert p.top_k == 20 and p.top_k_cap is None and p.top_k_returned == 2
    np.testing.assert_allclose(row["trajectory"], H_BITS, rtol=1e-12)
    bound = float(topk_truncation_bound(np.log(P), len(tokenizer)))
    assert row["eas_bound"] == pytest.approx(row["n_probes"] * bound)
    assert b.echo_ok is (shape in ("legacy", "vllm"))  # llama-server ignores echo; /generate has none
    probes = [(path, r) for path, r in zip(stub.paths, stub.requests, strict=True) if not r.get("echo")]
    last = probes[-row["n_probes"] :]
    if route == "generate":
        assert all(path == "/generate" and isinstance(r["input_ids"], list) for path, r in last)
        assert all(r["top_logprobs_num"] == 20 and r["return_logprob"] for _, r in last)
    else:
        assert all(path == "/v1/completions" and isinstance(r["prompt"], list) for path, r in last)
        assert all(bool(r.get("return_tokens_as_token_ids")) is token_id_keys for _, r in last)


def test_vllm_max_logprobs_lowers_k_to_the_cap(tokenizer, caplog):
    with Stub(tokenizer, _top(tokenizer), shape="vllm", max_logprobs=20) as stub, caplog.at_level(logging.WARNING):
        b, rows = _score(stub, tokenizer, top_k=50)
    assert not isinstance(rows[0], ScoreError)
    assert b.profile.top_k == 20 and b.profile.top_k_cap == 20
    assert "at most 20 log-probs" in caplog.text
    asked = [r["logprobs"] for r in stub.requests if not r.get("echo")]
    assert asked[0] == 50 and set(asked[1:]) == {20}  # refused once, then the cap throughout
    assert b.describe()["server"]["top_k_cap"] == 20


@pytest.mark.parametrize(("shape", "value"), [("llama_server", None), ("legacy", math.nan), ("sglang", None)])
def test_null_or_nan_logprobs_are_retried(tokenizer, shape, value):
    with Stub(tokenizer, _top(tokenizer), shape=shape) as stub:
        b = OpenAIBackend("m", tokenizer, ServerConfig(base_url=stub.url, max_retries=3, **FAST))
        b._detect(encode_record(tokenizer, REC, EASConfig()).prompt_ids)
        stub.bad = [value, value]
        rows = list(score_records([REC], b, EASConfig(trajectory=True)))
    assert not isinstance(rows[0], ScoreError), rows[0]
    assert b.stats["bad_answers"] == 2
    np.testing.assert_allclose(rows[0]["trajectory"], H_BITS, rtol=1e-12)


@pytest.mark.parametrize(("shape", "value"), [("llama_server", None), ("legacy", math.nan)])
def test_logprobs_that_stay_null_or_nan_fail_the_record_not_the_run(tokenizer, shape, value):
    bad = Record("bad", REC.prompt, REC.response)
    with Stub(tokenizer, _top(tokenizer), shape=shape) as stub:
        b = OpenAIBackend("m", tokenizer, ServerConfig(base_url=stub.url, max_retries=2, concurrency=1, **FAST))
        b._detect(encode_record(tokenizer, REC, EASConfig()).prompt_ids)
        stub.bad = [value] * 3  # every answer of the first probe: 1 + 2 retries
        rows = list(score_records([bad, REC], b, EASConfig(trajectory=True), batch_tokens=1))
    err, good = rows
    assert isinstance(err, ScoreError) and err.retry  # a resumed run tries it again
    assert "no usable log-probs after 3 answers" in err.reason and ("null" in err.reason or "NaN" in err.reason)
    assert good["eas_bound"] > 0 and good["eas"] == pytest.approx(good["n_probes"] * H_BITS)


def test_error_bodies_reach_the_message(tokenizer):
    from eas.backends.openai.backend import ServerError

    for shape in ("llama_server", "sglang", "vllm"):
        with Stub(tokenizer, _top(tokenizer), shape=shape) as stub:
            b = OpenAIBackend("m", tokenizer, ServerConfig(base_url=stub.url, **FAST))
            stub.fail = [400]
            with pytest.raises(ServerError, match=r"HTTP 400: scripted failure$"):
                b.client.post("/completions", {"prompt": [1]})


def test_the_manifest_records_what_the_server_accepts(tokenizer, tmp_path, embedded_dir, capsys):
    from eas.cli import main

    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "a", "prompt": REC.prompt, "response": REC.response}) + "\n")
    out = tmp_path / "o.jsonl"
    with Stub(tokenizer, _top(tokenizer), shape="vllm", max_logprobs=5) as stub:
        args = ["score", str(src), "--backend", "openai", "--base-url", stub.url, "--model", "embedded"]
        assert main([*args, "--out", str(out)]) == 0
        quiet = capsys.readouterr().err
        assert main(["-v", *args, "--out", str(tmp_path / "v.jsonl")]) == 0
        verbose = capsys.readouterr().err
    n_requests = len(stub.requests) // 2
    assert n_requests > 10 and "HTTP Request" not in quiet and "server profile" in quiet  # no line per request
    assert verbose.count("HTTP Request: POST") >= n_requests  # ... unless --verbose
    manifest = json.loads((tmp_path / "o.jsonl.manifest.json").read_text())
    server = manifest["backend"]["server"]
    assert server["prompt_mode"] == "ids" and server["keyed_by"] == "id" and server["token_id_keys"] is True
    assert server["top_k"] == 5 and server["top_k_cap"] == 5 and server["shape"] == "legacy"
    assert manifest["backend"]["backend"] == "openai"
