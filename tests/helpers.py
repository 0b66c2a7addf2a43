"""Helpers for the tests: tiny seeded models, backends, input files."""

from __future__ import annotations

import json
from pathlib import Path

from eas.config import EngineConfig
from eas.testing import make_tiny_llama

__all__ = ["backend", "make_tiny_llama", "write_jsonl"]


def backend(model, tokenizer, **engine):
    from eas.backends.hf import HFBackend

    return HFBackend(model, tokenizer, EngineConfig(**engine))


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
