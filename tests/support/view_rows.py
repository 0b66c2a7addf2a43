"""Scored rows for the view's tests and benchmark, made without a model."""

from __future__ import annotations

import json
import math
import random
import re
from typing import Any

WORDS = ("the", "so", "we", "check", "wait", "maybe", "sum", "of", "is", "x", "=", "12", "+", "then", "hmm", "\n")
HOSTILE = 'We add <script>window.pwned=1</script> then </script><img/src="x"/onerror="window.pwned=2"> so \\boxed{42}.'


def synthetic_row(n_tokens: int, seed: int = 0, row_id: str = "synthetic/0", options: bool = False) -> dict[str, Any]:
    """A scored row of ``n_tokens`` response tokens ending in ``\\boxed{42}.``.

    Tokens are words with their leading space inside the span (GPT-style offsets), except
    every 7th token whose span leaves the space out (SentencePiece-style gap). x_T is the
    token ``2`` of ``42``; the trajectory is a random walk with a few spikes, in bits.
    """
    rng = random.Random(seed)
    parts: list[str] = []
    spans: list[list[int]] = []
    pos = 0
    tail = [" so", " the", " answer", " is", " \\", "boxed", "{", "4", "2", "}", "."]
    body = max(0, n_tokens - len(tail))
    for i in range(body + len(tail)):
        tok = rng.choice(WORDS) if i < body else tail[i - body]
        text = tok if tok == "\n" or (i < body and tok.startswith(" ")) else (" " + tok if i < body else tok)
        start = pos + (1 if i % 7 == 3 and text.startswith(" ") else 0)
        parts.append(text)
        pos += len(text)
        spans.append([start, pos])
    response = "".join(parts)
    answer_end = body + tail.index("2") + 1
    h, traj = 1.0, []
    for _ in range(1, answer_end):
        h = min(8.0, max(0.0, h + rng.gauss(0, 0.15) + (3.0 if rng.random() < 0.01 else 0.0) - 0.02 * h))
        traj.append(round(h, 4))
    row: dict[str, Any] = {
        "id": row_id,
        "prompt": "Compute the thing. Put the final answer in \\boxed{}.",
        "response": response,
        "answer": "42",
        "token_spans": spans,
        "trajectory": traj,
        "answer_end_token": answer_end,
        "response_tokens": len(spans),
        "eas": sum(traj),
        "mean_eas": sum(traj) / len(traj) if traj else None,
        "final_entropy": traj[-1] if traj else None,
    }
    if options:
        probs: dict[str, list[float]] = {o: [] for o in "ABCD"}
        for t in range(len(traj)):
            w = [math.exp(math.sin(t / 50 + k)) for k in range(4)]
            for o, x in zip("ABCD", w, strict=True):
                probs[o].append(round(x / sum(w), 4))
        row["option_probs"] = probs
    return row


def word_spans(text: str) -> list[list[int]]:
    """A toy tokenizer's offsets: runs of non-space characters and runs of spaces."""
    return [[m.start(), m.end()] for m in re.finditer(r"\S+|\s+", text)]


def row_for(response: str, row_id: str = "q17/0", **extra: Any) -> dict[str, Any]:
    """A scored row of ``response`` (word tokens) with H_t = 0.25 t, x_T on the boxed answer's end."""
    spans = word_spans(response)
    box_end = response.rindex("}") - 1  # last character of the boxed content
    answer_end = next(i for i, (a, b) in enumerate(spans) if a <= box_end < b) + 1
    traj = [0.25 * t for t in range(1, answer_end)]
    return {
        "id": row_id,
        "prompt": "What is <b>6 x 7</b>? </script><script>window.pwned=3</script>",
        "response": response,
        "token_spans": spans,
        "trajectory": traj,
        "answer_end_token": answer_end,
        "eas": sum(traj),
        "mean_eas": sum(traj) / len(traj),
        "final_entropy": traj[-1],
        "answer": "42",
        "correct": True,
        **extra,
    }


def trace_data(page: str, i: int = 0) -> dict[str, Any]:
    """The JSON block of trace ``i`` of a page."""
    block = page.split(f'<script type="application/json" id="eas-d{i}">', 1)[1].split("</script>", 1)[0]
    return json.loads(block)
