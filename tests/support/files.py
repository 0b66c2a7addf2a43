"""JSONL files as the tests write and read them, and a run's stored parts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Every line of ``path`` as a JSON value (a blank line is an error, as in any JSONL)."""
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def count_parts(out: Path) -> int:
    """How many parts a run writing ``out`` has stored so far (0 without its parts folder)."""
    d = out.with_name(out.name + ".parts")
    return len(list(d.glob("part-*.jsonl"))) if d.exists() else 0
