"""A corpus of hostile records: each bad one gets a precise reason in the errors file,
the good ones around them are scored, and nothing reaches the user as a traceback."""

from __future__ import annotations

import csv

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support import read_jsonl

from eas.cli import main

GOOD = '{"id": "good-%d", "prompt": "What is 2+%d?", "response": "2+%d is %d, so \\\\boxed{%d}."}'

# (id, raw JSONL line, expected words of the reason). An id of None: the row index is used.
BAD = [
    ("no-prompt", '{"id": "no-prompt", "response": "\\\\boxed{1}"}', "field 'prompt' is missing"),
    ("no-response", '{"id": "no-response", "prompt": "q"}', "field 'response' is missing"),
    ("null-response", '{"id": "null-response", "prompt": "q", "response": null}', "field 'response' is missing"),
    ("int-response", '{"id": "int-response", "prompt": "q", "response": 12}', "is a int, expected a string"),
    ("list-prompt", '{"id": "list-prompt", "prompt": ["q"], "response": "\\\\boxed{1}"}', "is a list"),
    ("dict-answer", '{"id": "dict-answer", "prompt": "q", "response": "\\\\boxed{1}", "answer": {}}', "is a dict"),
    ("bool-response", '{"id": "bool-response", "prompt": "q", "response": true}', "is a bool"),
    ("empty", '{"id": "empty", "prompt": "q", "response": ""}', "empty response"),
    ("spaces", '{"id": "spaces", "prompt": "q", "response": "   \\n\\t  "}', "empty response"),
    ("no-box", '{"id": "no-box", "prompt": "q", "response": "the answer is 4"}', "no \\boxed"),
    ("unclosed", '{"id": "unclosed", "prompt": "q", "response": "so \\\\boxed{4"}', "never closed"),
    ("unbalanced", '{"id": "unbalanced", "prompt": "q", "response": "\\\\boxed{{4}"}', "never closed"),
    ("empty-box", '{"id": "empty-box", "prompt": "q", "response": "so \\\\boxed{}"}', "\\boxed{} is empty"),
    ("nan-answer", '{"id": "nan-answer", "prompt": "q", "response": "\\\\boxed{1}", "answer": NaN}', "is nan"),
    ("inf-answer", '{"id": "inf-answer", "prompt": "q", "response": "\\\\boxed{1}", "answer": Infinity}', "is inf"),
    (None, '{"id": 1.5, "prompt": "q", "response": "\\\\boxed{1}"}', "expected a string or integer"),
    (None, '{"id": [1], "prompt": "q", "response": "\\\\boxed{1}"}', "expected a string or integer"),
    (None, '["a", "list"]', "not an object"),
    (None, '"a string"', "not an object"),
    (None, "{not json at all", "not valid JSON"),
    (None, '{"id": "x", "prompt": "q", "response": "unterminated', "not valid JSON"),
    (None, "[" * 100000 + "]" * 100000, "JSON"),
    (
        "huge",
        '{"id": "huge", "prompt": "q", "response": "%s \\\\boxed{1}"}' % ("x" * 10_000_000),
        "characters, far more",
    ),
    ("too-long", '{"id": "too-long", "prompt": "q", "response": "%s \\\\boxed{1}"}' % (" 7" * 1500), "context of 1024"),
    (None, b'{"id": "bad-utf8", "prompt": "q", "response": "\xff\xfe \\\\boxed{1}"}', "not valid UTF-8"),
]


def _corpus() -> tuple[bytes, dict, list[str]]:
    lines: list[bytes] = []
    expected: dict = {}
    good_ids = []
    for i, (rid, raw, reason) in enumerate(BAD):
        lines.append((GOOD % (i, i, i, i + 2, i + 2)).encode())
        good_ids.append(f"good-{i}")
        expected[rid if rid is not None else len(lines)] = reason
        lines.append(raw if isinstance(raw, bytes) else raw.encode())
    lines.append(b'{"id": "last-good", "prompt": "q", "response": "\\\\boxed{9}"}')
    good_ids.append("last-good")
    lines.append(b'{"id": "truncated", "prompt": "q", "resp')  # a last line cut short
    expected[len(lines) - 1] = "not valid JSON"
    return b"\n".join(lines), expected, good_ids


def test_hostile_jsonl_corpus(tmp_path, tiny_dir, capsys):
    data, expected, good_ids = _corpus()
    assert len(expected) >= 25
    src = tmp_path / "hostile.jsonl"
    src.write_bytes(data)
    out = tmp_path / "s.jsonl"
    assert main(["-q", "score", str(src), "--out", str(out), "--model", str(tiny_dir)]) == 3
    assert "Traceback" not in capsys.readouterr().err
    assert [r["id"] for r in read_jsonl(out)] == good_ids
    errors = {e["id"]: e["error"] for e in read_jsonl(tmp_path / "s.errors.jsonl")}
    assert set(errors) == set(expected)
    for rid, reason in expected.items():
        assert reason in errors[rid], (rid, errors[rid])
        assert "\n" not in errors[rid] and len(errors[rid]) < 300


def test_parquet_with_the_wrong_schema_is_a_usage_error(tmp_path, tiny_dir, capsys):
    pq.write_table(pa.table({"question": ["q"], "text": ["\\boxed{1}"]}), tmp_path / "bad.parquet")
    assert (
        main(
            ["-q", "score", str(tmp_path / "bad.parquet"), "--out", str(tmp_path / "s.jsonl"), "--model", str(tiny_dir)]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "no field 'prompt', 'response'" in err and "question" in err


def test_parquet_with_wrong_types_per_record(tmp_path, tiny_dir):
    pq.write_table(pa.table({"id": ["a", "b"], "prompt": ["q", "q"], "response": [1, 2]}), tmp_path / "t.parquet")
    assert (
        main(["-q", "score", str(tmp_path / "t.parquet"), "--out", str(tmp_path / "s.jsonl"), "--model", str(tiny_dir)])
        == 3
    )
    assert [e["id"] for e in read_jsonl(tmp_path / "s.errors.jsonl")] == ["a", "b"]


def test_not_a_parquet_file(tmp_path, tiny_dir, capsys):
    (tmp_path / "x.parquet").write_bytes(b"PAR1 this is not parquet")
    assert (
        main(["-q", "score", str(tmp_path / "x.parquet"), "--out", str(tmp_path / "s.jsonl"), "--model", str(tiny_dir)])
        == 2
    )
    assert "cannot read as parquet" in capsys.readouterr().err


def test_csv_with_embedded_newlines_and_bad_bytes(tmp_path, tiny_dir):
    path = tmp_path / "in.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "prompt", "response"])
        w.writerow(["multi", "What is\n1+1?", "Line one.\nLine two: \\boxed{2}"])
        w.writerow(["nobox", "q", "text\nwithout a box"])
    with path.open("ab") as f:
        f.write(b'bytes,q,"\xff\\boxed{3}"\n')
    out = tmp_path / "s.jsonl"
    assert main(["-q", "score", str(path), "--out", str(out), "--model", str(tiny_dir)]) == 3
    assert [r["id"] for r in read_jsonl(out)] == ["multi"]
    errors = {e["id"]: e["error"] for e in read_jsonl(tmp_path / "s.errors.jsonl")}
    assert "no \\boxed" in errors["nobox"] and "not valid UTF-8" in errors["bytes"]


@pytest.mark.parametrize("content", [b"", b"\n\n"])
def test_empty_input_gives_empty_outputs(tmp_path, tiny_dir, content):
    (tmp_path / "e.jsonl").write_bytes(content)
    out = tmp_path / "s.jsonl"
    args = ["-q", "score", str(tmp_path / "e.jsonl"), "--out", str(out), "--model", str(tiny_dir), "--allow-empty"]
    assert main(args) == 0
    assert out.read_text() == "" and not (tmp_path / "s.errors.jsonl").exists()


def test_pickled_weights_are_never_loaded(tmp_path, tiny_dir, capsys):
    """Only safetensors (or the embedded GGUF) are loaded: a pickle can run code."""
    import shutil

    import torch
    from safetensors.torch import load_file

    model_dir = tmp_path / "pickled"
    shutil.copytree(tiny_dir, model_dir)
    weights = load_file(model_dir / "model.safetensors")
    (model_dir / "model.safetensors").unlink()
    torch.save(weights, model_dir / "pytorch_model.bin")
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": "a", "prompt": "q", "response": "\\\\boxed{1}"}\n')
    assert main(["-q", "score", str(src), "--out", str(tmp_path / "s.jsonl"), "--model", str(model_dir)]) == 2
    assert "cannot load model" in capsys.readouterr().err
