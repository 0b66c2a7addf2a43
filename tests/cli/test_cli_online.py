"""``eas sample --monitor/--stop/--probe-every/--trajectory`` in-process through ``main([...])``."""

import pytest
from support import read_jsonl, write_jsonl

from eas.cli import main

QUESTIONS = [
    {"id": "q1", "question": "What is 7 + 5?", "answer": "12"},
    {"id": "q2", "question": "What is 9 - 4?", "answer": "5"},
]
COMMON = ["-n", "2", "--max-new-tokens", "12", "--seed", "1", "--temperature", "1.0", "--no-fewshot"]


def test_sample_monitor_writes_online_eas_and_eas_view_shows_it(tmp_path, tiny_dir):
    q = write_jsonl(tmp_path / "q.jsonl", QUESTIONS)
    plain, online = tmp_path / "plain.jsonl", tmp_path / "online.jsonl"
    model = ["--model", str(tiny_dir)]
    assert main(["-q", "sample", str(q), "--out", str(plain), *model, *COMMON]) == 0
    argv = [
        "-q",
        "sample",
        str(q),
        "--out",
        str(online),
        *model,
        *COMMON,
        "--monitor",
        "--trajectory",
        "--end",
        "response",
    ]
    assert main(argv) == 0
    rows, ref = read_jsonl(online), read_jsonl(plain)
    assert [r["response"] for r in rows] == [r["response"] for r in ref]  # monitoring changes no sample
    for r in rows:
        assert r["online"] and r["eas"] == pytest.approx(sum(r["trajectory"]), rel=1e-9)
        assert r["n_probes"] == len(r["trajectory"]) == r["answer_end_token"] - 1
        assert len(r["token_spans"]) == r["response_tokens"] and r["stopped_at"] is None
    page = tmp_path / "page.html"
    assert main(["-q", "view", str(online), "--id", "q1/0", "--out", str(page)]) == 0
    assert page.stat().st_size > 0
    # a rerun with other monitor settings is refused, not mixed
    assert main([*argv[:-2], "--probe-every", "4", "--end", "response"]) == 2


def test_sample_stop_rule_and_probe_every(tmp_path, tiny_dir):
    q = write_jsonl(tmp_path / "q.jsonl", QUESTIONS)
    out = tmp_path / "s.jsonl"
    argv = ["-q", "sample", str(q), "--out", str(out), "--model", str(tiny_dir), *COMMON, "--end", "response"]
    assert main([*argv, "--stop", "budget:n=4", "--answer-tokens", "3", "--probe-every", "2"]) == 0
    for r in read_jsonl(out):
        assert r["stopped_at"] == 4 and r["stop_reason"] == "budget: 4 tokens" and r["probe_stride"] == 2
        assert "\\boxed{" in r["response"] and r["n_probes"] == 4 and r["n_probes_run"] <= 3
    strided = tmp_path / "strided.jsonl"
    assert main([*argv[:4], str(strided), *argv[5:], "--probe-every", "3", "--trajectory"]) == 0
    row = read_jsonl(strided)[0]
    assert row["trajectory_t"] and len(row["trajectory"]) == len(row["trajectory_t"]) < row["n_probes"]
    assert main(["-q", "view", str(strided), "--id", "q1/0", "--out", str(tmp_path / "strided.html")]) == 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--stop", "nope"], "unknown stop rule 'nope'"),
        (["--stop", "eat:beta=2"], "bad setting 'beta=2'"),
        (["--probe-every", "0"], "--probe-every must be an integer >= 1"),
    ],
)
def test_monitor_usage_errors(tmp_path, capsys, extra, message):
    q = write_jsonl(tmp_path / "q.jsonl", QUESTIONS)
    assert main(["-q", "sample", str(q), "--out", str(tmp_path / "s.jsonl"), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_help_lists_the_monitor_options(capsys):
    with pytest.raises(SystemExit):
        main(["sample", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for word in ("--monitor", "--stop", "--probe-every", "--trajectory", "eat (alpha, delta, m)"):
        assert word in out
    with pytest.raises(SystemExit):
        main(["study", "--help"])
    assert "--online" in capsys.readouterr().out


def test_a_model_online_probes_cannot_run_in_is_refused_with_the_reason(tokenizer):
    from eas.backends.hf.backend import HFBackend
    from eas.cli.common import UsageError
    from eas.cli.online import check_online_backend
    from eas.testing.models import make_tiny_llama

    backend = HFBackend(make_tiny_llama(len(tokenizer)), tokenizer)
    assert check_online_backend(backend) is backend
    backend.model.config._attn_implementation = "flash_attention_2"  # takes no 4-D mask
    with pytest.raises(UsageError, match="online probes do not support attention implementation 'flash_attention_2'"):
        check_online_backend(backend)


def test_online_backends_are_asked_for_their_capability_not_their_attributes(tokenizer):
    from types import SimpleNamespace

    from eas.backends.base import capabilities
    from eas.backends.openai.backend import OpenAIBackend
    from eas.cli.common import UsageError
    from eas.cli.online import check_online_backend
    from eas.config import ServerConfig

    server = OpenAIBackend("m", tokenizer, ServerConfig(base_url="http://127.0.0.1:9/v1"))
    assert capabilities(server) == {"streamed"}
    assert check_online_backend(server) is server  # eas sample: the server controller
    with pytest.raises(UsageError, match="eas study --online probes inside the decoding loop: use --backend hf"):
        check_online_backend(server, server_ok=False)
    with pytest.raises(UsageError, match="need an in-process model"):
        check_online_backend(SimpleNamespace(model=object()))  # an attribute named model is no capability
    server.close()
