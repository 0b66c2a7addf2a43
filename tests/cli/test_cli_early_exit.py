"""``eas early-exit`` through ``main([...])``: the files, the printed table, bad options."""

import csv

from support import read_jsonl, write_jsonl

from eas.cli import main

QUESTIONS = [
    {"id": "q1", "question": "What is 7 + 5?", "answer": "12"},
    {"id": "q2", "question": "What is 9 - 4?", "answer": "5"},
]


COMMON = ["-n", "2", "--max-new-tokens", "8", "--temperature", "1.0", "--no-fewshot", "--answer-tokens", "3"]


def test_early_exit_writes_the_report_and_prints_the_table(tmp_path, tiny_dir, tokenizer, capsys):
    q = write_jsonl(tmp_path / "q.jsonl", QUESTIONS)
    out = tmp_path / "ee"
    argv = [
        "-q",
        "early-exit",
        str(q),
        "--out",
        str(out),
        "--model",
        str(tiny_dir),
        *COMMON,
        "--rule",
        "budget",
        "--sweep",
        "3,6",
        "--rule",
        "plateau:w=2,min_tokens=0",
        "--sweep",
        "h=30",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| budget | n=3 | 100.0 % |" in printed and "| budget | n=6 | 100.0 % |" in printed
    assert "| plateau | h=30.0 | 100.0 % |" in printed and "report:" in printed
    for name in ("runs.jsonl", "summary.csv", "pareto.png", "report.md", "report.html"):
        assert (out / name).stat().st_size > 0
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [r["arm"] for r in rows] == [
        "full",
        "budget:n=3",
        "budget:n=6",
        "plateau:h=30.0,w=2,min_tokens=0,mean=False",
    ]
    exits = [r["exits"][0] for r in read_jsonl(out / "runs.jsonl")]
    s = len(tokenizer("\\boxed{", add_special_tokens=False)["input_ids"])  # the forced trigger
    assert all(e["stopped_at"] == 3 and 3 + s < e["tokens"] <= 3 + s + 3 for e in exits)  # + the answer, <= 3
    assert float(rows[1]["tokens"]) == sum(e["tokens"] for e in exits) / len(exits)
    # the same command again: already complete, the same table
    assert main(argv) == 0 and capsys.readouterr().out == printed
    # other arms into the same folder: refused, naming what differs
    assert main([*argv[:-4]]) == 2
    assert "arms" in capsys.readouterr().err


def test_bad_rules_and_sweeps_are_usage_errors(tmp_path, tiny_dir, capsys):
    q = write_jsonl(tmp_path / "q.jsonl", QUESTIONS)
    base = ["-q", "early-exit", str(q), "--out", str(tmp_path / "ee"), "--model", str(tiny_dir), *COMMON]
    for extra, message in [
        ([], "--rule: give at least one stop rule"),
        (["--rule", "nope"], "unknown stop rule 'nope'"),
        (["--rule", "eat", "--sweep", "x=1"], "has no setting 'x'"),
        (["--rule", "budget", "--sweep", "0,5"], "n must be >= 1"),
        (["--rule", "budget", "--sweep", "3", "--sweep", "4"], "one per --rule"),
        (["--rule", "budget", "--rule", "budget:n=512"], "given twice"),
    ]:
        assert main([*base, *extra]) == 2, extra
        assert message in capsys.readouterr().err, extra
    assert not (tmp_path / "ee").exists()  # nothing made
