"""``eas view`` in-process through ``main([...])``, on files the real scorer wrote."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from support import read_jsonl, write_jsonl
from support.view_rows import synthetic_row, trace_data

from eas.cli import main
from eas.view.trace import token_texts

TRACES = [
    {"id": "q17/0", "prompt": "What is 2+3?", "response": "2 + 3 = 5, so the answer is \\boxed{5}.", "answer": "5"},
    # multi-byte characters: the byte-level tokenizer splits 日 across tokens (overlapping spans)
    {"id": "q3/0", "prompt": "Name it.", "response": "It is  日本 (naïve €5).\n\nSo \\boxed{日本}", "answer": "日本"},
    {"id": "q4/0", "prompt": "What is 4*4?", "response": "4*4 = 16.\n\\boxed{16}", "answer": "16"},
]


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory, tiny_dir: Path) -> Path:
    """TRACES scored by the real scorer (a tiny model with SmolLM2's tokenizer)."""
    tmp = tmp_path_factory.mktemp("view-cli")
    src = write_jsonl(tmp / "traces.jsonl", TRACES)
    out = tmp / "scored.jsonl"
    args = ["-q", "score", str(src), "--model", str(tiny_dir), "--trajectory", "--keep-input", "--out", str(out)]
    assert main(args) == 0
    return out


def test_the_scorer_writes_token_spans_that_cut_the_response_exactly(scored: Path, tokenizer: Any) -> None:
    for row in read_jsonl(scored):
        spans, response = row["token_spans"], row["response"]
        assert len(spans) == row["response_tokens"] and row["answer_end_token"] <= len(spans)
        tokens, tail = token_texts(response, spans)
        assert "".join(tokens) + tail == response and tail == ""
        ids = tokenizer(response, add_special_tokens=False)["input_ids"]
        if response.isascii():  # then every token decodes to exactly its piece of the text
            assert tokens == [tokenizer.decode([i]) for i in ids]
        else:  # a split character decodes to replacement marks: compare the bytes instead
            assert "".join(tokenizer.decode([i]) for i in ids) != response
            assert tokenizer.decode(ids) == response
        box = response.rindex("}") - 1
        x_t = tokens[row["answer_end_token"] - 1]
        start = sum(len(t) for t in tokens[: row["answer_end_token"] - 1])
        assert start <= box < start + len(x_t)  # x_T holds the last character of the boxed answer


def test_one_trace_two_side_by_side_and_every_row(scored: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rows = {r["id"]: r for r in read_jsonl(scored)}
    one = tmp_path / "q17.html"
    assert main(["view", str(scored), "--id", "q17/0", "--out", str(one)]) == 0
    assert f"{one}: 1 trace," in capsys.readouterr().out
    page = one.read_text(encoding="utf-8")
    data = trace_data(page)
    assert "".join(data["tok"]) == TRACES[0]["response"] and data["T"] == rows["q17/0"]["answer_end_token"]
    assert data["H"] == [round(h, 4) for h in rows["q17/0"]["trajectory"]]
    assert "<title>EAS view: q17/0</title>" in page
    both = tmp_path / "compare.html"
    assert main(["view", str(scored), "--id", "q4/0", "--id", "q3/0", "--out", str(both), "--model-name", "m1"]) == 0
    page = both.read_text(encoding="utf-8")
    assert 'class="panels n2"' in page and "<dd>m1</dd>" in page
    assert re.findall(r'<h2 class="tid">([^<]+)</h2>', page) == ["q4/0", "q3/0"]  # in the order asked
    assert "".join(trace_data(page, 1)["tok"]) == TRACES[1]["response"]
    every = tmp_path / "all.html"
    assert main(["view", str(scored), "--out", str(every), "--layout", "list"]) == 0
    assert every.read_text(encoding="utf-8").count('<details class="item"') == 3


def test_a_study_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    study = tmp_path / "study"
    study.mkdir()
    table = [synthetic_row(60, seed=s, row_id=f"q{s}") | {"answer_entropy": 0.5 * s} for s in range(4)]
    for row in table:
        row["sample0_answer"], row["sample0_correct"] = "42", True
    table.append({"id": "q9", "eas": None, "trajectory": None, "token_spans": None, "score_error": "no \\boxed{}"})
    write_jsonl(study / "per_question.jsonl", table)
    (study / "settings.json").write_text(json.dumps({"model": {"model": "tiny-llama"}}))
    out = study / "traces.html"
    assert main(["view", str(study), "--out", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert "<title>study: 5 questions, sample 0 of each, sorted by EAS</title>" in page
    order = re.findall(r'<details class="item" data-i="\d+"><summary><span>#\d+</span><span>([^<]+)</span>', page)
    assert order == [r["id"] for r in sorted(table[:4], key=lambda r: -r["eas"])] + ["q9"]
    assert "<dd>tiny-llama</dd>" in page and "sample 0 was not scored" in page and "H_ans 1.50" in page


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--id", "q17"], "no row with id 'q17' (did you mean 'q17/0'?); ids in the file: q17/0, q3/0, q4/0 (3 rows)"),
        (["--id", "zzz"], "no row with id 'zzz'; ids in the file"),
        (["--out", "page.png"], "the page is HTML; name it .html"),
        (["--out", "missing/page.html"], "output folder does not exist"),
        (["--response-field", "completion"], "has no 'completion' field: rescore with"),
        (["--vmax", "0"], "--vmax must be a finite number of bits > 0, not 0"),
        (["--vmax", "inf"], "--vmax must be a finite number of bits > 0, not inf"),
        (["--vmax", "nan"], "--vmax must be a finite number of bits > 0, not nan"),
        (["--vmax", "-1.5"], "--vmax must be a finite number of bits > 0, not -1.5"),
    ],
)
def test_usage_errors(
    scored: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, args, message
) -> None:
    monkeypatch.chdir(tmp_path)
    out = [] if "--out" in args else ["--out", "page.html"]
    assert main(["view", str(scored), *out, *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("eas view: error: ") and message in err, err
    assert err.count("\n") == 1  # one line, no traceback
    assert not (tmp_path / "page.html").exists()


def test_files_without_what_the_page_needs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    row = synthetic_row(20, row_id="a")
    cases = [
        ({k: v for k, v in row.items() if k != "token_spans"}, "has no token_spans", "--trajectory --keep-input"),
        ({k: v for k, v in row.items() if k != "response"}, "has no 'response' field", "--keep-input"),
        ({**row, "token_spans": [[0, 999]]}, "token_spans[0] = [0, 999] lies outside the response", ""),
    ]
    for i, (bad, message, fix) in enumerate(cases):
        src = write_jsonl(tmp_path / f"bad{i}.jsonl", [bad])
        assert main(["view", str(src), "--out", str(tmp_path / "x.html")]) == 2
        err = capsys.readouterr().err
        assert message in err and fix in err, err
    assert main(["view", str(tmp_path), "--out", str(tmp_path / "x.html")]) == 2
    assert "no per_question.jsonl here" in capsys.readouterr().err
    assert main(["view", str(tmp_path / "nothing.jsonl"), "--out", str(tmp_path / "x.html")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists()


def test_help_explains(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["view", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for text in ("--trajectory --keep-input", "--id q17/0 --id q3/0", "eas view study/", "x_T", "offline", "#id="):
        assert text in out
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "view" in capsys.readouterr().out
