"""The openai backend against a real llama.cpp server (llama-cpp-python) on loopback.

The server runs the embedded Q4_1 GGUF; the hf backend runs the same weights
dequantized to float32. The server computes with quantized arithmetic (activations are
quantized for the Q4_1 matmuls) and, since llama-cpp-python takes only text prompts,
re-tokenizes the decoded probe text (measured: 130 of 452 probe prompts of the 12
example traces came out one token shorter, a response token merging with the trigger).

Measured on the 12 bundled traces (K = 20, V = 49152): the exact EAS of every trace lies
inside [eas, eas + eas_bound] with no tolerance (closest: 0.21 bits per probe below the
upper end); per position, 81 % of the exact H_t lie inside [H_t, H_t + bound_t], the
others by up to 2.4 bits outside (90th percentile 0.53 bits), and the exact H_t
correlate with the interval midpoints at r = 0.93. Tolerances below: 0.1 bits per probe
on the trace interval, at least 70 % of positions inside, r >= 0.85.
"""

import numpy as np
import pytest
from support import check_topk_interval, example_records, read_jsonl, score_on_server_and_exact, write_jsonl

pytestmark = pytest.mark.server

TOL_PER_PROBE = 0.1  # bits, see the module docstring
MIN_INSIDE = 0.70
MIN_R = 0.85


def test_exact_eas_lies_within_the_topk_interval(llama_url, embedded_dir):
    server, rows, exact = score_on_server_and_exact(llama_url, 4, concurrency=2)
    assert server.prompt_mode == "text"  # llama-cpp-python 0.3 refuses token-id prompts
    assert server.echo_ok is False  # and shifts its echoed log-probs by one position
    check_topk_interval(rows, exact, TOL_PER_PROBE, MIN_INSIDE, MIN_R)


def test_cli_scores_through_the_server_and_topk_stats(llama_url, tmp_path, capsys):
    from eas.cli import main

    src = write_jsonl(
        tmp_path / "in.jsonl", [{"id": r.id, "prompt": r.prompt, "response": r.response} for r in example_records(2)]
    )
    out = tmp_path / "scored.jsonl"
    args = ["-q", "score", str(src), "--backend", "openai", "--base-url", llama_url, "--trajectory", "--out", str(out)]
    assert main(args) == 0
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == [r.id for r in example_records(2)]
    assert all(len(r["trajectory_bound"]) == len(r["trajectory_topk_mass"]) == r["n_probes"] for r in rows)
    capsys.readouterr()
    assert main(["topk-stats", str(out)]) == 0
    printed = capsys.readouterr().out
    mass = np.concatenate([r["trajectory_topk_mass"] for r in rows])
    assert f"{100 * mass.mean():.2f}%" in printed
    assert all(f"p{p}" in printed for p in (90, 95, 99))


def test_sample_through_the_server(llama_url, tmp_path):
    from eas.cli import main

    questions = write_jsonl(
        tmp_path / "q.jsonl", [{"id": f"q{i}", "question": f"What is {i} + 2?", "answer": str(i + 2)} for i in range(2)]
    )
    args = ["sample", str(questions), "--model", "embedded", "--backend", "openai", "--base-url", llama_url]
    args += ["-n", "2", "--max-new-tokens", "24", "--concurrency", "2", "--seed", "5"]
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert main(["-q", *args, "--out", str(first)]) == 0
    assert main(["-q", *args, "--out", str(second)]) == 0
    rows = read_jsonl(first)
    assert [r["id"] for r in rows] == ["q0/0", "q0/1", "q1/0", "q1/1"]
    assert all(r["response"] and isinstance(r["correct"], bool) for r in rows)
    again = [r["response"] for r in read_jsonl(second)]
    assert again == [r["response"] for r in rows]  # the same seed gives the same samples
