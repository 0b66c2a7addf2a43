"""``eas evaluate`` prompts as ``eas sample`` does, says so, and keeps the graded responses."""

from __future__ import annotations

import json

import pytest
from support import read_jsonl, write_jsonl

from eas.cli import main

QUESTIONS = [
    {"id": "q1", "question": "What is 7 + 5?", "answer": "12"},
    {"id": "q2", "question": "What is 9 - 4?", "answer": "5"},
]
COMMON = ["--max-new-tokens", "32", "--temperature", "0.7"]


def test_evaluate_grades_the_samples_eas_sample_draws(tmp_path, capsys, embedded_dir) -> None:
    q = write_jsonl(tmp_path / "q.jsonl", QUESTIONS)
    sampled = tmp_path / "samples.jsonl"
    assert main(["-q", "sample", str(q), "-n", "2", "--seed", "3", *COMMON, "--out", str(sampled)]) == 0
    out = tmp_path / "eval.json"
    argv = ["evaluate", "embedded", "--questions", str(q), "-k", "2", "--sample-seed", "3", *COMMON]
    assert main([*argv, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    kept = tmp_path / "eval.samples.jsonl"
    graded, reference = read_jsonl(kept), read_jsonl(sampled)
    # The same prompts (few-shot examples included) and seeds: the very samples and grades of eas sample.
    assert [(r["id"], r["prompt"], r["response"], r["correct"]) for r in graded] == [
        (r["id"], r["prompt"], r["response"], r["correct"]) for r in reference
    ]
    assert "\\boxed{" in graded[0]["prompt"]  # the solved examples are in the prompt
    result = json.loads(out.read_text())["embedded"]
    expected = {qid: sum(r["correct"] for r in reference if r["question_id"] == qid) / 2 for qid in ("q1", "q2")}
    assert {r["id"]: r["pass_rate"] for r in result["per_question"]} == expected
    assert result["avg_pass_at_1"] == pytest.approx(sum(expected.values()) / 2)
    assert result["samples"] == str(kept) and "solved examples (built-in" in result["prompts"]
    assert f"Avg Pass@1 = {100 * result['avg_pass_at_1']:.1f}%" in printed
    assert "prompts: 4 solved examples (built-in; those of the question's kind)" in printed
    assert f"graded responses: {kept}" in printed
    # --no-fewshot asks the question alone, and says so; the kept samples of other settings are refused
    assert main(["-q", *argv, "--no-fewshot", "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["-q", *argv, "--no-fewshot", "--overwrite", "--out", str(out)]) == 0
    assert "prompts: the question alone (no solved example)" in capsys.readouterr().out
    assert all("\\boxed{" not in r["prompt"] for r in read_jsonl(kept))


def test_evaluate_help_says_how_it_prompts(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for text in ("as `eas sample` builds them", "--no-fewshot", "eval.samples.jsonl", "--fewshot FILE"):
        assert text in out
