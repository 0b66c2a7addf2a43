"""Helpers for the tests: tiny seeded models, backends, input files."""

from __future__ import annotations

import json
from pathlib import Path

from eas.config import EngineConfig
from eas.testing import make_tiny_llama

__all__ = ["arithmetic_records", "backend", "make_tiny_llama", "write_jsonl"]


def backend(model, tokenizer, **engine):
    from eas.backends.hf import HFBackend

    return HFBackend(model, tokenizer, EngineConfig(**engine))


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def arithmetic_records(n: int = 60) -> list[dict]:
    """``n`` short solved additions (ids r0, r1, ...); with n > 31, two bad records in the middle."""
    rows = []
    for i in range(n):
        a, b = 3 * i + 1, 7 * i % 11 + 2
        steps = " ".join(f"Step {k}: {a} plus {k} is {a + k}." for k in range(i % 5 + 1))
        rows.append({"id": f"r{i}", "prompt": f"What is {a} + {b}?", "response": f"{steps} So \\boxed{{{a + b}}}."})
    if n > 31:
        rows[7]["response"] = "no final answer"  # bad records in the middle
        rows[31]["response"] = ""
    return rows
