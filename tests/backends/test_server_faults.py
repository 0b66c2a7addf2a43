"""`eas score --backend openai` through a fault-injecting proxy in front of the real
llama.cpp server: the same results as without faults, bounded retries, nothing lost,
and the API key nowhere in what a run writes."""

from __future__ import annotations

from importlib.resources import files

import pytest
from support import read_jsonl
from support.fault_proxy import fault_proxy

from eas.cli import main

pytestmark = pytest.mark.server

KEY = "sk-test-0123456789abcdef"


@pytest.fixture
def traces(tmp_path):
    lines = files("eas").joinpath("data/example_traces.jsonl").read_text().splitlines()[:3]
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def _score(src, out, url, *extra) -> int:
    args = ["-q", "score", str(src), "--out", str(out), "--model", "embedded", "--backend", "openai"]
    return main([*args, "--base-url", url, "--concurrency", "4", "--timeout", "3", *extra])


def _same(rows, ref):
    assert [r["id"] for r in rows] == [r["id"] for r in ref]
    for r, e in zip(rows, ref, strict=True):
        assert r["n_probes"] == e["n_probes"]
        assert r["eas"] == pytest.approx(e["eas"], abs=1e-3)
        assert r["eas_bound"] == pytest.approx(e["eas_bound"], abs=1e-3)


def test_faults_are_survived_and_the_key_never_written(tmp_path, traces, llama_url, monkeypatch, caplog):
    monkeypatch.setenv("EAS_API_KEY", KEY)
    ref = tmp_path / "ref.jsonl"
    assert _score(traces, ref, llama_url) == 0
    out = tmp_path / "faulty.jsonl"
    with fault_proxy(llama_url, rate=0.3, seed=1, hang_s=3.5) as (url, proxy):
        assert _score(traces, out, url, "--max-retries", "12") == 0
    assert sum(proxy.counts[f] for f in ("500", "429", "hang", "reset", "truncate", "badjson")) >= 20
    assert all(h == f"Bearer {KEY}" for h in proxy.headers_seen)  # the key was sent ...
    _same(read_jsonl(out), read_jsonl(ref))
    assert not (tmp_path / "faulty.errors.jsonl").exists()
    for path in tmp_path.rglob("*"):  # ... and is in nothing the runs wrote
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
    assert KEY not in caplog.text


def test_records_that_still_fail_are_retried_on_the_next_run(tmp_path, traces, llama_url):
    ref = tmp_path / "ref.jsonl"
    assert _score(traces, ref, llama_url) == 0
    out = tmp_path / "s.jsonl"
    with fault_proxy(llama_url, rate=0.5, seed=2, hang_s=3.5) as (url, proxy):
        assert _score(traces, out, url, "--max-retries", "0", "--batch-tokens", "1") == 3  # no retries: some fail
        errors = read_jsonl(tmp_path / "s.errors.jsonl")
        assert errors and all("backend error" in e["error"] for e in errors)
        assert len(read_jsonl(out)) + len(errors) == 3  # nothing lost
        proxy.rate = 0.0  # the server recovers; the same run again (retries do not change the numbers)
        assert _score(traces, out, url, "--max-retries", "5", "--batch-tokens", "1") == 0
    _same(read_jsonl(out), read_jsonl(ref))
    assert not (tmp_path / "s.errors.jsonl").exists()  # the earlier run's errors file is gone
