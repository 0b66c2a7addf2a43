"""The command line, in-process through ``main([...])``."""

import csv

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support import read_jsonl, write_jsonl

from eas.cli import main

GOOD = [
    {"id": "a", "prompt": "What is 2+3?", "response": r"2+3=5, so \boxed{5}.", "answer": "5"},
    {"id": "b", "prompt": "What is 4*4?", "response": r"4*4 = 16. \boxed{16}", "answer": 16},
]
BAD = [
    {"id": "no-box", "prompt": "q", "response": "the answer is 5"},
    {"id": "empty", "prompt": "q", "response": "  "},
    {"id": "typed", "prompt": "q", "response": ["not", "text"]},
    {"prompt": "q", "response": r"\boxed{1}", "id": None},
]


def test_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "score" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["score", "--help"])
    out = capsys.readouterr().out
    assert "--trajectory" in out and "--chunk-size" in out and "exit status" in out


def test_score_jsonl_all_good(tmp_path, embedded_dir):
    src = write_jsonl(tmp_path / "in.jsonl", GOOD)
    out = tmp_path / "scored.jsonl"
    assert main(["-q", "score", str(src), "--out", str(out), "--trajectory"]) == 0
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == ["a", "b"]
    assert all(len(r["trajectory"]) == r["n_probes"] == r["answer_end_token"] - 1 for r in rows)
    assert rows[0]["eas"] == pytest.approx(sum(rows[0]["trajectory"]), rel=1e-9)
    assert not (tmp_path / "scored.errors.jsonl").exists()  # written only when some record failed


def test_bad_records_go_to_the_errors_file(tmp_path, embedded_dir):
    src = write_jsonl(tmp_path / "in.jsonl", [GOOD[0], *BAD, GOOD[1]])
    with src.open("a") as f:
        f.write("{not json\n")
    out = tmp_path / "scored.jsonl"
    assert main(["-q", "score", str(src), "--out", str(out)]) == 3
    assert [r["id"] for r in read_jsonl(out)] == ["a", 4, "b"]  # the null id falls back to the row index
    errors = {e["id"]: e["error"] for e in read_jsonl(tmp_path / "scored.errors.jsonl")}
    assert set(errors) == {"no-box", "empty", "typed", 6}
    assert "no \\boxed" in errors["no-box"]
    assert errors["empty"] == "empty response"
    assert "expected a string" in errors["typed"]
    assert "not valid JSON" in errors[6]


def test_end_response_scores_unboxed_traces(tmp_path, embedded_dir):
    src = write_jsonl(tmp_path / "in.jsonl", [BAD[0]])
    out = tmp_path / "s.jsonl"
    assert main(["-q", "score", str(src), "--out", str(out), "--end", "response"]) == 0
    (row,) = read_jsonl(out)
    assert row["answer_end_token"] == row["response_tokens"]


def test_parquet_and_csv_with_field_mapping(tmp_path, embedded_dir):
    rows = [{"qid": r["id"], "question": r["prompt"], "solution": r["response"]} for r in GOOD]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "in.parquet")
    with (tmp_path / "in.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, ["qid", "question", "solution"])
        w.writeheader()
        w.writerows(rows)
    mapping = ["--id-field", "qid", "--prompt-field", "question", "--response-field", "solution"]
    out_pq = tmp_path / "s.parquet"
    assert main(["-q", "score", str(tmp_path / "in.parquet"), "--out", str(out_pq), *mapping]) == 0
    out_csv = tmp_path / "s.jsonl"
    assert main(["-q", "score", str(tmp_path / "in.csv"), "--out", str(out_csv), *mapping]) == 0
    from_pq = pq.read_table(out_pq).to_pylist()
    from_csv = read_jsonl(out_csv)
    assert [r["id"] for r in from_pq] == ["a", "b"]
    for a, b in zip(from_pq, from_csv, strict=True):
        assert a["eas"] == pytest.approx(b["eas"], rel=1e-6)


def test_keep_input_feeds_select_and_train(tmp_path, embedded_dir, capsys):
    rows = [{"qid": r["id"], "question": r["prompt"], "solution": r["response"], "answer": r["answer"]} for r in GOOD]
    rows[0]["topic"] = "addition"
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    mapping = ["--id-field", "qid", "--prompt-field", "question", "--response-field", "solution"]
    plain, kept = tmp_path / "plain.jsonl", tmp_path / "kept.jsonl"
    assert main(["-q", "score", str(src), "--out", str(plain), *mapping]) == 0
    assert main(["-q", "score", str(src), "--out", str(kept), "--keep-input", *mapping]) == 0
    for p, k, r in zip(read_jsonl(plain), read_jsonl(kept), rows, strict=True):
        # every input field under its own name (the answer as read: text), then the same results
        assert k == {**r, "answer": str(r["answer"]), **p}
    assert list(read_jsonl(kept)[0])[:5] == ["qid", "question", "solution", "answer", "topic"]

    picked = tmp_path / "picked.jsonl"
    select = ["-q", "select", "--strategy", "eas", "--budget", "1", "--out", str(picked), *mapping]
    assert main([*select[:2], str(kept), *select[2:]]) == 0
    (row,) = read_jsonl(picked)
    best = max(read_jsonl(plain), key=lambda r: r["eas"])
    assert row["qid"] == best["id"] and row["solution"] == {r["qid"]: r for r in rows}[best["id"]]["solution"]
    assert row["selection_score"] == best["eas"]

    capsys.readouterr()
    picked.unlink()
    assert main([*select[:2], str(plain), *select[2:]]) == 2  # scores only: told how to get the traces in
    err = capsys.readouterr().err
    assert "--keep-input" in err and f"--scores {plain}" in err
    assert not picked.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["score", "MISSING.jsonl", "--out", "OUT.jsonl"], "no such file"),
        (["score", "IN.jsonl", "--out", "OUT.jsonl", "--prompt-field", "question"], "no field 'question'"),
        (["score", "IN.jsonl", "--out", "OUT.jsonl", "--id-field", "qid"], "no field 'qid'"),
        (["score", "IN.txt", "--out", "OUT.jsonl"], "unknown input format"),
        (["score", "IN.jsonl", "--out", "OUT.csv"], "unknown output format"),
        (["score", "IN.jsonl", "--out", "nowhere/OUT.jsonl"], "output folder does not exist"),
        (["score", "IN.jsonl", "--out", "OUT.jsonl", "--chunk-size", "0"], "--chunk-size must be >= 1"),
        (["score", "IN.jsonl", "--out", "OUT.jsonl", "--model", "no/such/model"], "cannot load model"),
    ],
)
def test_usage_errors_exit_2_with_a_message(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "IN.jsonl", GOOD)
    (tmp_path / "IN.txt").write_text("x")
    assert main(["-q", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
