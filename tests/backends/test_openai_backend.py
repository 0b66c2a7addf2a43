"""The openai backend against a scripted loopback server: maths, retries, detection, key."""

import logging
import math

import numpy as np
import pytest
from support.stub_server import TAIL_P, Stub

from eas.backends.openai.backend import OpenAIBackend, ServerError
from eas.backends.openai.detect import ServerProfile
from eas.config import EASConfig, ServerConfig
from eas.maths.entropy import topk_truncation_bound
from eas.records import Record
from eas.scoring.batches import RESULT_COLUMNS, TOPK_COLUMNS, ScoreError
from eas.scoring.probes import encode_record
from eas.scoring.runs import score_records

REC = Record("a", "What is 2+3?", r"2 + 3 = 5, so \boxed{5}.")
FAST = {"backoff_s": 0.01, "timeout_s": 10.0}


def _top(tokenizer):
    """Two tokens with p = 0.5 and 0.25; the first is the prompt's last token, so the
    echo check finds it in the top-K."""
    last = encode_record(tokenizer, REC, EASConfig()).prompt_ids[-1]
    other = tokenizer(" 5", add_special_tokens=False)["input_ids"][0]
    return {last: 0.5, other: 0.25}


def _backend(stub, tokenizer, **server):
    return OpenAIBackend("stub-model", tokenizer, ServerConfig(base_url=stub.url, **{**FAST, **server}))


def _skip_detection(b):
    """Token-id prompts, legacy shape, no echo: only probe requests go out."""
    b.profile = ServerProfile("ids", "completions", b.server.top_k, None, 2, "legacy", "text")
    b.echo_ok = False


def test_topk_entropy_bound_and_echo_ppl(tokenizer):
    top = _top(tokenizer)
    with Stub(tokenizer, top) as stub:
        b = _backend(stub, tokenizer, concurrency=3)
        rows = list(score_records([REC], b, EASConfig(trajectory=True)))
    row = rows[0]
    assert b.prompt_mode == "ids" and b.echo_ok is True
    assert list(row)[: len(RESULT_COLUMNS)] == list(RESULT_COLUMNS)
    assert set(TOPK_COLUMNS) <= set(row)
    n = row["n_probes"]
    assert n > 3
    # every probe sees p = (0.5, 0.25): H = 0.5*1 + 0.25*2 = 1 bit, mass 0.75
    np.testing.assert_allclose(row["trajectory"], 1.0, rtol=1e-12)
    np.testing.assert_allclose(row["trajectory_topk_mass"], 0.75, rtol=1e-12)
    bound = float(topk_truncation_bound(np.log([0.5, 0.25]), len(tokenizer)))
    assert bound == pytest.approx(0.25 * math.log2((len(tokenizer) - 2) / 0.25))
    assert row["eas"] == pytest.approx(n * 1.0)
    assert row["eas_bound"] == pytest.approx(n * bound)
    assert row["min_topk_mass"] == pytest.approx(0.75)
    # ppl from the echoed response-token log-probs
    enc = encode_record(tokenizer, REC, EASConfig())
    lps = [math.log(top.get(i, TAIL_P)) for i in enc.response_ids]
    assert row["ppl"] == pytest.approx(math.exp(-np.mean(lps)))
    assert row["max_seq_logprob"] == pytest.approx(sum(lps))
    assert row["mean_token_entropy"] is None and row["hes"] is None
    # one request per probe t = 1..n, as token ids (order: see the next test)
    probe_lens = [len(r["prompt"]) for r in stub.requests if r.get("logprobs") == 20 and not r.get("echo")]
    assert sorted(probe_lens)[-n:] == list(range(len(enc.probe_context(1)), len(enc.probe_context(n)) + 1))


def test_probes_of_a_trace_go_out_in_order_of_t(tokenizer):
    with Stub(tokenizer, _top(tokenizer)) as stub:
        b = _backend(stub, tokenizer, concurrency=1)
        _skip_detection(b)
        row = next(iter(score_records([REC], b)))
    lens = [len(r["prompt"]) for r in stub.requests]
    assert len(lens) == row["n_probes"] and lens == sorted(lens) and len(set(lens)) == len(lens)


def test_text_fallback_and_shifted_echo(tokenizer, caplog):
    with Stub(tokenizer, _top(tokenizer), accept_ids=False, shift_echo=True) as stub:
        b = _backend(stub, tokenizer)
        with caplog.at_level(logging.WARNING):
            row = next(iter(score_records([REC], b)))
    assert b.prompt_mode == "text" and b.echo_ok is False
    assert row["ppl"] is None and row["max_seq_logprob"] is None
    assert row["eas"] == pytest.approx(row["n_probes"])
    assert "token-id prompts" in caplog.text and "ppl" in caplog.text
    assert all(isinstance(r["prompt"], str) for r in stub.requests[1:])
    assert len(stub.requests) - 1 == sum(isinstance(r["prompt"], str) for r in stub.requests)  # no retry of ids
    reason = b.describe()["server"]["text_reason"]
    assert reason == "HTTP 500: prompt must be a string"  # recorded in the run's manifest


@pytest.mark.parametrize("status", [503, 502, 429])
def test_a_transient_error_during_detection_is_waited_out_not_taken_for_a_refusal(tokenizer, caplog, status):
    with Stub(tokenizer, _top(tokenizer)) as stub:
        stub.fail, stub.fail_message = [status, status], "Loading model"
        b = _backend(stub, tokenizer, max_retries=3)
        with caplog.at_level(logging.INFO):
            row = next(iter(score_records([REC], b)))
    assert b.prompt_mode == "ids" and b.describe()["server"]["text_reason"] is None
    assert all(isinstance(r.get("prompt", r.get("input_ids")), list) for r in stub.requests)  # token ids throughout
    assert row["eas"] == pytest.approx(row["n_probes"]) and "refuses token-id prompts" not in caplog.text


def test_a_refusal_after_a_transient_error_is_read_at_once(tokenizer):
    """A 503, then the server's refusal of token ids (a 500 naming the prompt, as
    llama-cpp-python answers): text from the next request on, no retry of the refusal."""
    with Stub(tokenizer, _top(tokenizer), accept_ids=False) as stub:
        stub.fail, stub.fail_message = [503], "Loading model"
        b = _backend(stub, tokenizer, max_retries=5)
        row = next(iter(score_records([REC], b)))
    assert b.prompt_mode == "text" and b.describe()["server"]["text_reason"] == "HTTP 500: prompt must be a string"
    assert [isinstance(r["prompt"], list) for r in stub.requests[:3]] == [True, True, False]
    assert row["eas"] == pytest.approx(row["n_probes"])


def test_a_server_that_stays_down_fails_detection_instead_of_switching_to_text(tokenizer):
    with Stub(tokenizer, _top(tokenizer)) as stub:
        stub.fail, stub.fail_message = [503] * 50, "Loading model"
        b = _backend(stub, tokenizer, max_retries=2)
        (err,) = score_records([REC], b)
    assert isinstance(err, ScoreError) and "503" in err.reason and err.retry
    assert b.profile is None and all(isinstance(r.get("prompt", r.get("input_ids")), list) for r in stub.requests)


def test_only_a_refusal_that_names_the_prompt_selects_text():
    from eas.backends.openai.detect import refuses_token_ids

    assert refuses_token_ids(ServerError("x", 400, "prompt: invalid type: sequence, expected a string"))  # TGI
    assert refuses_token_ids(ServerError("x", 422, "body -> prompt: str type expected"))
    assert refuses_token_ids(
        ServerError("x", 500, "[{'loc': ('body', 'prompt', 'str'), 'msg': 'Input should be a valid string'}]")
    )
    for status, message in ((503, "Loading model"), (429, "prompt queue full"), (401, "invalid api key"), (None, "")):
        assert not refuses_token_ids(ServerError("x", status, message))


def test_retries_with_backoff_then_success(tokenizer):
    with Stub(tokenizer, _top(tokenizer)) as stub:
        b = _backend(stub, tokenizer, max_retries=3)
        _skip_detection(b)  # count only probe requests
        stub.fail = [500, 429, 503]
        enc = encode_record(tokenizer, REC, EASConfig())
        top = b.probe(enc, 1)
    np.testing.assert_allclose(np.exp(top), [0.5, 0.25])
    assert b.stats["retries"] == 3 and len(stub.requests) == 4


def test_gives_up_after_max_retries_and_the_record_fails(tokenizer):
    with Stub(tokenizer, _top(tokenizer)) as stub:
        b = _backend(stub, tokenizer, max_retries=2)
        _skip_detection(b)
        stub.fail = [500] * 50
        rows = list(score_records([REC], b))
    assert isinstance(rows[0], ScoreError) and "gave up after 3 attempts" in rows[0].reason
    with Stub(tokenizer, _top(tokenizer)) as stub:
        b = _backend(stub, tokenizer, max_retries=5)
        stub.fail = [400]
        with pytest.raises(ServerError, match="HTTP 400"):
            b.client.post("/completions", {"prompt": "x"})
        assert len(stub.requests) == 1  # a client error is not retried


def test_connection_errors_are_retried_then_reported(tokenizer):
    from eas.testing.llama_server import free_port

    b = OpenAIBackend(
        "m", tokenizer, ServerConfig(base_url=f"http://127.0.0.1:{free_port()}/v1", max_retries=2, **FAST)
    )
    with pytest.raises(ServerError, match=r"gave up after 3 attempts.*Connect"):
        b.client.post("/completions", {"prompt": "x"})
    assert b.stats["retries"] == 2


def test_api_key_is_sent_but_never_shown(tokenizer, monkeypatch, caplog, tmp_path):
    secret = "sk-test-4f9a1c"
    monkeypatch.setenv("EAS_API_KEY", secret)
    with Stub(tokenizer, _top(tokenizer)) as stub:
        b = _backend(stub, tokenizer)
        with caplog.at_level(logging.DEBUG):
            rows = list(score_records([REC], b, EASConfig(trajectory=True)))
    assert all(h.get("Authorization") == f"Bearer {secret}" for h in stub.headers)
    assert secret not in caplog.text and secret not in repr(b.describe()) and secret not in repr(rows)


def test_server_config_validation():
    with pytest.raises(ValueError, match="base_url"):
        ServerConfig(base_url="localhost:8000")
    with pytest.raises(ValueError, match="top_k"):
        ServerConfig(top_k=0)


def test_cli_unreachable_server_is_a_usage_error(tmp_path, capsys, embedded_dir):
    from support import write_jsonl

    from eas.cli import main
    from eas.testing.llama_server import free_port

    src = write_jsonl(tmp_path / "in.jsonl", [{"id": "a", "prompt": REC.prompt, "response": REC.response}])
    url = f"http://127.0.0.1:{free_port()}/v1"
    args = ["-q", "score", str(src), "--backend", "openai", "--base-url", url, "--max-retries", "0"]
    assert main([*args, "--out", str(tmp_path / "o.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "no server answers" in err and "Traceback" not in err


def test_a_probe_stride_sends_only_the_chosen_probes(tokenizer):
    rec = Record("long", "What is 2+3?", "We add 2 and 3, step by step, and check it twice. " * 3 + r"\boxed{5}.")
    config = EASConfig(trajectory=True, probe_stride=4, probe_seed=2)
    enc = encode_record(tokenizer, rec, config)
    with Stub(tokenizer, _top(tokenizer)) as stub:
        b = _backend(stub, tokenizer, concurrency=1)
        _skip_detection(b)
        row = next(iter(score_records([rec], b, config)))
    n = row["n_probes"]
    assert n == enc.n_probes > 20 and row["n_probes_run"] == len(enc.probe_positions) == math.ceil((n - 1) / 4) + 1
    assert [len(r["prompt"]) for r in stub.requests] == [len(enc.probe_context(t)) for t in enc.probe_positions]
    assert row["trajectory_t"] == list(enc.probe_positions)
    # every probe sees H = 1 bit: the estimate is exact and the spread between blocks 0
    bound = float(topk_truncation_bound(np.log([0.5, 0.25]), len(tokenizer)))
    assert row["eas"] == pytest.approx(n) and row["eas_se"] == 0.0
    assert row["eas_bound"] == pytest.approx(n * bound) and row["min_topk_mass"] == pytest.approx(0.75)
