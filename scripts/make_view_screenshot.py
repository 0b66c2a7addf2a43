"""Make the README's picture of ``eas view``: ``docs/view.png``, from the bundled traces.

Scores two of the bundled example traces (``src/eas/data/example_traces.jsonl``: a right
answer and a wrong one) with the embedded model (SmolLM2-135M-Instruct, CPU, a few
seconds), renders them side by side with ``eas.view.render`` and screenshots the page in
headless Chromium, with the mouse (``#trace=1&hover=t``) on the slip of the wrong one.

Usage: python scripts/make_view_screenshot.py [--out docs/view.png] [--size 1200,460]
(needs the embedded model, ``make install``, and chromium: apt-get install chromium)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support import chromium  # noqa: E402

IDS = ("apples", "wrong")  # side by side: a right and a wrong answer
SLIP = "makes 15"  # the (simulated) mouse is on the last token of this text in the second trace
EXAMPLES = ROOT / "src" / "eas" / "data" / "example_traces.jsonl"


def scored_examples(ids: tuple[str, ...] = IDS) -> list[dict[str, Any]]:
    """The bundled traces ``ids``, scored by the embedded model with their text kept."""
    from eas import EASConfig, load_backend, read_records, score_records
    from eas.answers import AnswerMatcher, extract_boxed

    records = {r.id: r for r in read_records(EXAMPLES) if not isinstance(r, Exception)}
    chosen = [records[i] for i in ids]
    matcher = AnswerMatcher()
    rows = []
    for rec, row in zip(
        chosen, score_records(chosen, load_backend("embedded"), EASConfig(trajectory=True)), strict=True
    ):
        if not isinstance(row, dict):
            raise RuntimeError(f"{rec.id}: {row.reason}")
        answer = extract_boxed(rec.response)
        correct = matcher.equivalent(answer, str(rec.answer))
        rows.append({"prompt": rec.prompt, "response": rec.response, "answer": rec.answer, "correct": correct, **row})
    return rows


def main(argv: list[str] | None = None) -> Path:
    from eas import view

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "view.png")
    parser.add_argument("--size", default="1200,460", help="window width,height in pixels")
    args = parser.parse_args(argv)
    from eas.view.trace import token_texts

    rows = scored_examples()
    tokens, _ = token_texts(rows[1]["response"], rows[1]["token_spans"])
    char = rows[1]["response"].index(SLIP) + len(SLIP) - 1
    hover = next(t for t in range(1, len(tokens) + 1) if len("".join(tokens[:t])) > char)
    page = view.render(rows, title="eas view: two bundled traces", model="SmolLM2-135M-Instruct (embedded)")
    width, height = (int(x) for x in args.size.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "view.html"
        path.write_text(page, encoding="utf-8")
        chromium.screenshot(chromium.page_url(path, f"#trace=1&hover={hover}"), args.out, size=(width, height))
    return args.out


if __name__ == "__main__":
    print(main())
