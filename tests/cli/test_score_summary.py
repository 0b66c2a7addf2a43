"""What `eas score` tells a person: a summary on stdout, an empty input refused, no empty errors file."""

from __future__ import annotations

import statistics

from support import arithmetic_records, read_jsonl, write_jsonl

from eas.cli import main


def test_score_ends_with_a_summary_on_stdout(tmp_path, tiny_dir, capsys):
    rows = [*arithmetic_records(6), {"id": "bad", "prompt": "q", "response": "no final answer"}]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "s.jsonl"
    assert main(["-q", "score", str(src), "--out", str(out), "--model", str(tiny_dir)]) == 3
    printed = capsys.readouterr().out.splitlines()
    scored = read_jsonl(out)
    eas = {r["id"]: r["eas"] for r in scored}
    ranked = sorted(eas, key=eas.get)
    assert printed[0] == "6 rows, 1 errors"
    mean, sd, median = statistics.mean(eas.values()), statistics.stdev(eas.values()), statistics.median(eas.values())
    assert printed[1] == f"EAS (bits): mean {mean:.3f}, sd {sd:.3f}, median {median:.3f} over 6 rows"
    assert printed[2] == "most uncertain: " + ", ".join(f"{i} ({eas[i]:.3f})" for i in ranked[::-1][:3])
    assert printed[3] == "least uncertain: " + ", ".join(f"{i} ({eas[i]:.3f})" for i in ranked[:3])
    assert printed[4] == f"files: {out}, {tmp_path / 's.errors.jsonl'}, {tmp_path / 's.jsonl.manifest.json'}"
    # Run again: the same figures, said to be already complete.
    assert main(["-q", "score", str(src), "--out", str(out), "--model", str(tiny_dir)]) == 3
    again = capsys.readouterr().out.splitlines()
    assert again[0] == "6 rows, 1 errors (already complete)" and again[1:] == printed[1:]


def test_an_empty_input_is_refused_unless_allowed(tmp_path, tiny_dir, capsys):
    src = tmp_path / "empty.jsonl"
    src.write_text("\n")
    out = tmp_path / "s.jsonl"
    args = ["-q", "score", str(src), "--out", str(out), "--model", str(tiny_dir)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "no records to score" in err and "--allow-empty" in err, err
    assert not out.exists() and not (tmp_path / "s.jsonl.parts").exists()
    assert main([*args, "--allow-empty"]) == 0
    assert out.read_text() == "" and not (tmp_path / "s.errors.jsonl").exists()
    assert capsys.readouterr().out.splitlines()[0] == "0 rows, 0 errors"


def test_a_clean_run_writes_no_errors_file_and_removes_a_stale_one(tmp_path, tiny_dir):
    src = write_jsonl(tmp_path / "in.jsonl", [*arithmetic_records(3), {"id": "x", "prompt": "q", "response": ""}])
    out = tmp_path / "s.jsonl"
    errors = tmp_path / "s.errors.jsonl"
    assert main(["-q", "score", str(src), "--out", str(out), "--model", str(tiny_dir)]) == 3
    assert [e["id"] for e in read_jsonl(errors)] == ["x"]
    write_jsonl(src, arithmetic_records(3))
    assert main(["-q", "score", str(src), "--out", str(out), "--model", str(tiny_dir), "--overwrite"]) == 0
    assert not errors.exists() and len(out.read_text().splitlines()) == 3
