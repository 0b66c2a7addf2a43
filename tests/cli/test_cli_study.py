"""The study's commands, in-process through ``main([...])``."""

import csv

import pytest
from support import read_jsonl, write_jsonl

from eas.cli import main

QUESTIONS = [
    {"id": "q1", "question": "What is 7 + 5?", "answer": "12"},
    {"id": "q2", "question": "What is 9 - 4?", "answer": "5"},
    {"id": "m1", "question": "How many legs does a spider have?", "choices": ["6", "10", "8", "4"], "answer": "C"},
]


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["sample", "--help"], ["--fewshot", "--extract", "--temperature", "--seed"]),
        (["study", "--help"], ["--score-samples", "per_question.jsonl", "report.html", "--alpha", "--probe-stride"]),
        (["correlate", "--help"], ["--reference", "--label", "Table 2"]),
        (["plot", "trajectory", "--help"], ["--id", "--out", "EAS"]),
        (["demo", "--help"], ["--quick", "n = 8", "--probe-stride"]),
    ],
)
def test_help(capsys, argv, words):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    for w in words:
        assert w in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["study", "MISSING.jsonl", "--out", "o"], "no such file"),
        (["study", "Q.jsonl", "--out", "o", "--extract", "boxed,guess"], "unknown mode guess"),
        (["study", "Q.jsonl", "--out", "o", "-n", "2", "--score-samples", "3"], "--score-samples must be in 1..n"),
        (["study", "Q.jsonl", "--out", "o", "--top-p", "0"], "--top-p must be in (0, 1]"),
        (["study", "Q.jsonl", "--out", "o", "--probe-stride", "0"], "--probe-stride must be an integer >= 1"),
        (["study", "Q.jsonl", "--out", "o", "--fewshot", "NOPE.jsonl"], "no such file"),
        (["sample", "Q.jsonl", "--out", "s.csv"], "must be a .jsonl"),
        (["correlate", "PQ.jsonl", "--label", "a", "--label", "b"], "1 files but 2 --label"),
        (["correlate", "Q.jsonl"], "no column answer_entropy"),
        (["correlate", "PQ.jsonl", "--out", "Q.jsonl"], "exists and is not a folder"),
        (["plot", "trajectory", "PQ.jsonl", "--id", "zz", "--out", "f.png"], "no row with id 'zz'"),
        (["plot", "trajectory", "PQ.jsonl", "--id", "a", "--out", "f.jpg"], "must be a .png"),
    ],
)
def test_usage_errors_exit_2(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "Q.jsonl", QUESTIONS)
    write_jsonl(tmp_path / "PQ.jsonl", _per_question(1.0))
    assert main(["-q", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def _per_question(scale):
    ref = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    eas = [1.0, 3.0, 2.0, 5.0, 4.0, 7.0, 6.5]
    return [
        {
            "id": chr(97 + i),
            "answer_entropy": h,
            "correctness_entropy": h / 3,
            "sample0_correct": h < 1.2,
            "eas": scale * e,
            "ppl": 1 + h * h,
            "trajectory": [e / 2, e / 2],
        }
        for i, (h, e) in enumerate(zip(ref, eas, strict=True))
    ]


def test_correlate_creates_its_output_folder(tmp_path):
    pq = write_jsonl(tmp_path / "PQ.jsonl", _per_question(1.0))
    out = tmp_path / "not" / "yet"
    assert main(["-q", "correlate", str(pq), "--out", str(out)]) == 0
    assert (out / "correlations.csv").is_file() and (out / "correlations.md").is_file()


def test_correlate_two_files_into_one_table(tmp_path, capsys):
    from scipy import stats

    a = write_jsonl(tmp_path / "a.jsonl", _per_question(1.0))
    b = write_jsonl(tmp_path / "b.jsonl", _per_question(-1.0))
    argv = ["-q", "correlate", str(a), str(b), "--label", "model A", "--label", "model B", "--out", str(tmp_path)]
    assert main(argv) == 0
    with (tmp_path / "correlations.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["label"], r["metric"]) for r in rows] == [
        ("model A", "eas"),
        ("model A", "ppl"),
        ("model B", "eas"),
        ("model B", "ppl"),
    ]
    r = stats.pearsonr([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0], [1.0, 3.0, 2.0, 5.0, 4.0, 7.0, 6.5]).statistic
    assert float(rows[0]["pearson_r"]) == pytest.approx(r)
    assert float(rows[2]["pearson_r"]) == pytest.approx(-r)
    assert float(rows[0]["auroc"]) == 1.0  # the 4 wrong answers have the 4 highest EAS
    md = (tmp_path / "correlations.md").read_text()
    assert "| metric | model A | model B |" in md
    assert f"| EAS | {r:.3f} [" in md
    assert "| metric | model A | model B |" in capsys.readouterr().out


def test_plot_trajectory(tmp_path):
    pq = write_jsonl(tmp_path / "pq.jsonl", _per_question(1.0))
    out = tmp_path / "fig1.png"
    assert main(["-q", "plot", "trajectory", str(pq), "--id", "b", "--id", "c", "--out", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_sample_and_study_with_the_embedded_model(tmp_path, capsys, embedded_dir):
    q = write_jsonl(tmp_path / "q.jsonl", QUESTIONS)
    common = ["-n", "2", "--max-new-tokens", "40", "--seed", "1"]
    s = tmp_path / "samples.jsonl"
    assert main(["-q", "sample", str(q), "--out", str(s), *common]) == 0
    rows = read_jsonl(s)
    assert [r["id"] for r in rows] == ["q1/0", "q1/1", "q2/0", "q2/1", "m1/0", "m1/1"]
    assert all(r["extracted"] is None or isinstance(r["extracted"], str) for r in rows)
    out = tmp_path / "study"
    assert main(["-q", "study", str(q), "--out", str(out), *common, "--label", "smol"]) == 0
    assert [r["response"] for r in read_jsonl(out / "samples.jsonl")] == [
        r["response"] for r in rows
    ]  # same seed, same samples
    pq = read_jsonl(out / "per_question.jsonl")
    assert [r["id"] for r in pq] == ["q1", "q2", "m1"]
    assert (out / "report.html").is_file() and (out / "correlations.csv").is_file()
    printed = capsys.readouterr().out
    assert "| metric | smol |" in printed and "report:" in printed and "wall time:" in printed


@pytest.mark.slow
def test_demo_quick(tmp_path, capsys, embedded_dir):
    out = tmp_path / "demo"
    assert main(["-q", "demo", "--quick", "--out", str(out)]) == 0
    pq = read_jsonl(out / "per_question.jsonl")
    assert len(pq) == 16 and sum(r["kind"] == "choice" for r in pq) == 4
    assert all(r["n_samples"] == 4 for r in pq)
    with (out / "correlations.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 16
    assert "EAS" in capsys.readouterr().out


def test_missing_study_extra_names_the_pip_line(tmp_path, monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "scipy" else real(name, *a))
    pq = write_jsonl(tmp_path / "pq.jsonl", _per_question(1.0))
    assert main(["-q", "correlate", str(pq), "--out", str(tmp_path)]) == 2
    assert "pip install 'eas[study]'" in capsys.readouterr().err
