"""The README's examples, run as a new user types them (issue 24: "a README that is true").

The rule (for everyone who adds an example to the README): every fenced ``bash`` or
``python`` block has an HTML comment on the line right above its opening fence, one of

* ``<!-- test -->``: run by default (``make test``). Keep these fast: seconds to a minute
  or two each with the embedded model on a CPU;
* ``<!-- test: slow -->``: run by ``make test-all`` (``pytest -m ""``);
* ``<!-- not tested: REASON -->``: not run (it needs a server in another terminal, a
  network, an install...); say why, and where a test covers it instead.

A test marker may add ``; expect: TEXT``: TEXT must then appear in the block's output
(stdout and stderr), e.g. a warning the README promises. A ``json`` block marked
``<!-- test: row ID of FILE -->`` is an output row the README shows: it must have the
columns of row ID of FILE (made by an earlier block), in order, with the same values
(numbers to 4 significant digits; a list that ends in ``"..."`` is a prefix).

How the blocks run: in README order, all in one temporary folder that holds links to the
checkout's ``src``, ``benchmarks`` and ``scripts`` (so ``src/eas/data/...`` works as in
the repository root) and the files earlier blocks wrote. A shell block is one ``bash -eo
pipefail`` script; a python block goes to ``python -``. ``eas`` and ``python`` are this
interpreter's, importing this checkout's ``eas``. A fast block may use only files made by
earlier fast blocks (a slow block may use any earlier one).
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support import read_jsonl

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MARKER = re.compile(r"^<!--\s*(test|not tested)\s*(?::\s*(.*?))?\s*-->\s*$")
FENCE = re.compile(r"^```(\w*)\s*$")
RUN_LANGUAGES = {"bash": "shell", "sh": "shell", "shell": "shell", "python": "python"}
TIMEOUT_S = {"fast": 900, "slow": 3600}


@dataclass(frozen=True)
class Block:
    line: int  # 1-based line of the opening fence
    language: str
    text: str
    marker: str | None  # "test", "not tested" or None
    options: str

    @property
    def slow(self) -> bool:
        return "slow" in [o.strip() for o in self.options.split(";")[0].split(",")]

    @property
    def expect(self) -> list[str]:
        return [o.split(":", 1)[1].strip() for o in self.options.split(";") if o.strip().startswith("expect:")]

    @property
    def row_of(self) -> tuple[str, str] | None:
        m = re.match(r"row (\S+) of (\S+)", self.options.split(";")[0].strip())
        return (m.group(1), m.group(2)) if m else None

    @property
    def name(self) -> str:
        first = next((ln for ln in self.text.splitlines() if ln.strip() and not ln.startswith("#")), "")
        return f"L{self.line}:{first[:40]}"


def readme_blocks(text: str) -> list[Block]:
    """Every fenced block of ``text`` with the marker on the line above it (if any)."""
    lines = text.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start, body = i, []
        i += 1
        while i < len(lines) and lines[i].rstrip() != "```":
            body.append(lines[i])
            i += 1
        above = MARKER.match(lines[start - 1].strip()) if start else None
        marker, options = (above.group(1), above.group(2) or "") if above else (None, "")
        blocks.append(Block(start + 1, m.group(1), "\n".join(body) + "\n", marker, options))
        i += 1
    return blocks


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))
TESTED = [b for b in BLOCKS if b.marker == "test"]


def test_every_example_says_whether_it_is_tested() -> None:
    unmarked = [b.line for b in BLOCKS if b.language in RUN_LANGUAGES and b.marker is None]
    assert not unmarked, f"README blocks without <!-- test --> / <!-- not tested: why --> above them: lines {unmarked}"
    for b in BLOCKS:
        if b.marker == "not tested":
            assert b.options.strip(), f"README line {b.line}: say why it is not tested"
        if b.marker == "test":
            assert b.language in RUN_LANGUAGES or b.row_of, f"README line {b.line}: cannot run a {b.language!r} block"


def test_the_extraction_rule() -> None:
    text = (
        "intro\n<!-- test -->\n```bash\neas a\n```\n<!-- test: slow; expect: warn -->\n```bash\neas b \\\n  --x\n```\n"
        "<!-- not tested: needs a server -->\n```bash\neas c\n```\n```bash\neas d\n```\n"
        '<!-- test: row q1 of out.jsonl -->\n```json\n{"id": "q1"}\n```\n'
    )
    a, b, c, d, e = readme_blocks(text)
    assert (a.marker, a.slow, a.text, a.line) == ("test", False, "eas a\n", 3)
    assert (b.slow, b.expect, b.text) == (True, ["warn"], "eas b \\\n  --x\n")
    assert (c.marker, c.options) == ("not tested", "needs a server")
    assert d.marker is None and e.row_of == ("q1", "out.jsonl")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("readme")
    for name in ("src", "benchmarks", "scripts"):
        (folder / name).symlink_to(ROOT / name)
    return folder


def _env() -> dict[str, str]:
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = str(ROOT / "src") + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["HF_HUB_OFFLINE"] = "1"
    return env


def _run(block: Block, folder: Path) -> str:
    if block.language == "python":
        argv, stdin = [sys.executable, "-"], block.text
    else:
        argv, stdin = ["bash", "-eo", "pipefail", "-s"], block.text
    done = subprocess.run(
        argv,
        input=stdin,
        cwd=folder,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S["slow" if block.slow else "fast"],
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, (
        f"README line {block.line} failed (exit {done.returncode}):\n{block.text}\n{output[-4000:]}"
    )
    return output


def _same(shown: Any, real: Any, where: str) -> None:
    if isinstance(shown, list) and shown and shown[-1] == "...":
        assert isinstance(real, list) and len(real) >= len(shown) - 1, where
        for k, (a, b) in enumerate(zip(shown[:-1], real, strict=False)):
            _same(a, b, f"{where}[{k}]")
    elif isinstance(shown, float) or (isinstance(real, float) and isinstance(shown, int)):
        assert isinstance(real, (int, float)) and math.isclose(shown, real, rel_tol=5e-4, abs_tol=1e-6), (
            f"{where}: README {shown} != {real}"
        )
    elif isinstance(shown, dict):
        assert isinstance(real, dict) and list(shown) == list(real), f"{where}: columns {list(shown)} != {list(real)}"
        for k in shown:
            _same(shown[k], real[k], f"{where}.{k}")
    elif isinstance(shown, list):
        assert isinstance(real, list) and len(shown) == len(real), where
        for k, (a, b) in enumerate(zip(shown, real, strict=True)):
            _same(a, b, f"{where}[{k}]")
    else:
        assert shown == real, f"{where}: README {shown!r} != {real!r}"


def _check_row(block: Block, folder: Path) -> None:
    rid, name = block.row_of  # type: ignore[misc]
    rows = read_jsonl(folder / name)
    real = next((r for r in rows if str(r.get("id")) == rid), None)
    assert real is not None, f"README line {block.line}: no row {rid!r} in {name}"
    _same(json.loads(block.text), real, f"README line {block.line}: row {rid}")


@pytest.mark.parametrize(
    "block", [pytest.param(b, marks=[pytest.mark.slow] if b.slow else [], id=b.name) for b in TESTED]
)
def test_readme_example(block: Block, workspace: Path) -> None:
    if block.row_of:
        _check_row(block, workspace)
        return
    output = _run(block, workspace)
    for text in block.expect:
        assert text in output, f"README line {block.line}: {text!r} not in its output:\n{output[-4000:]}"


def test_a_shown_row_that_differs_from_the_real_one_fails() -> None:
    real = {"id": "a", "eas": 203.52199, "trajectory": [3.1083431, 3.2143323, 4.4250054, 5.3], "n": 51}
    _same({"id": "a", "eas": 203.52, "trajectory": [3.1083, 3.2143, "..."], "n": 51}, real, "row")
    for wrong in (
        {"id": "a", "eas": 203.9, "trajectory": [3.1083, "..."], "n": 51},  # another value
        {"id": "a", "eas": 203.52, "trajectory": [3.2143, "..."], "n": 51},  # not a prefix
        {"id": "a", "trajectory": [3.1083, "..."], "eas": 203.52, "n": 51},  # columns in another order
        {"id": "a", "eas": 203.52, "trajectory": [3.1083, "..."]},  # a column missing
        {"id": "a", "eas": 203.52, "trajectory": [3.1083, 3.2143], "n": 51},  # cut without saying so
    ):
        with pytest.raises(AssertionError):
            _same(wrong, real, "row")
