"""Strided and amortised rows in ``eas view`` and ``eas plot trajectory``: each shown as what it is.

The rows are written by the real scorer (a tiny seeded model with SmolLM2's tokenizer):
``--probe-stride 4`` rows hold H_t at ``trajectory_t`` only and an estimated ``eas``;
``--amortised HEAD`` rows hold predicted H_t. The expected page data and figure are
derived here from the rows themselves, independently of ``eas.view.rows``.
"""

from __future__ import annotations

import doctest
import html
import json
import re
from pathlib import Path
from typing import Any

import pytest
from support import arithmetic_records, read_jsonl, write_jsonl
from support.view_rows import synthetic_row, trace_data

from eas.cli import main
from eas.view import rows as view_rows
from eas.view.rows import RowCurve, ViewError, manifest_model, pick_rows, row_curve

# Long enough responses that a stride of 4 leaves most positions unprobed.
TRACES = [
    {
        "id": "long-1",
        "prompt": "What is 17 + 25?",
        "response": "We add the tens and the ones. " * 4 + "So \\boxed{42}.",
    },
    {
        "id": "long-2",
        "prompt": "What is 9 * 9?",
        "response": "Nine nines: 9, 18, 27, 36, 45, 54, 63, 72, 81. \\boxed{81}",
    },
]


def _dense(row: dict[str, Any]) -> list[float | None]:
    """H_1 .. H_{T-1} of a strided row, None where not probed (the test's own derivation)."""
    out: list[float | None] = [None] * (row["answer_end_token"] - 1)
    for t, h in zip(row["trajectory_t"], row["trajectory"], strict=True):
        out[t - 1] = round(h, 4)
    return out


@pytest.fixture(scope="module")
def strided(tmp_path_factory: pytest.TempPathFactory, tiny_dir: Path) -> Path:
    tmp = tmp_path_factory.mktemp("strided")
    src = write_jsonl(tmp / "traces.jsonl", TRACES)
    out = tmp / "scored.jsonl"
    args = ["-q", "score", str(src), "--model", str(tiny_dir), "--trajectory", "--keep-input", "--probe-stride", "4"]
    assert main([*args, "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def amortised(tmp_path_factory: pytest.TempPathFactory, tiny_dir: Path) -> Path:
    tmp = tmp_path_factory.mktemp("amortised")
    calib = write_jsonl(tmp / "calib.jsonl", arithmetic_records(10))
    head = tmp / "head.safetensors"
    assert main(["-q", "calibrate", str(calib), "--model", str(tiny_dir), "--out", str(head)]) == 0
    src = write_jsonl(tmp / "pool.jsonl", TRACES)
    out = tmp / "predicted.jsonl"
    args = ["-q", "score", str(src), "--model", str(tiny_dir), "--amortised", str(head), "--trajectory"]
    assert main([*args, "--keep-input", "--out", str(out)]) == 0
    return out


def test_the_view_shows_strided_rows_at_their_probed_positions(strided: Path, tmp_path: Path, tiny_dir: Path) -> None:
    rows = read_jsonl(strided)
    page_path = tmp_path / "page.html"
    assert main(["view", str(strided), "--out", str(page_path)]) == 0
    page = page_path.read_text(encoding="utf-8")
    for i, row in enumerate(rows):
        assert row["probe_stride"] == 4 and len(row["trajectory_t"]) < row["answer_end_token"] - 1
        data = trace_data(page, i)
        assert data["kind"] == "strided" and data["probed"] == row["trajectory_t"]
        assert data["H"] == _dense(row)  # the probed values where they are, None (not probed) elsewhere
        assert data["what"] == f"stride 4, {len(row['trajectory_t'])} of {row['answer_end_token'] - 1} probed"
        assert f"<dd>{row['eas']:.2f} ± {row['eas_se']:.2f} bits</dd>" in page  # the row's own estimate
    assert "<dt>EAS (estimate)</dt>" in page and "not probed" in page
    # The model comes from the scored file's manifest (the rows carry none).
    assert f"<dd>{html.escape(str(tiny_dir))}</dd>" in page and "<dd>n/a</dd>" not in page.split("<dt>EAS")[0]


def test_the_view_labels_amortised_rows_as_predicted(amortised: Path, tmp_path: Path) -> None:
    rows = read_jsonl(amortised)
    page_path = tmp_path / "page.html"
    assert main(["view", str(amortised), "--id", "long-2", "--out", str(page_path)]) == 0
    page = page_path.read_text(encoding="utf-8")
    row = next(r for r in rows if r["id"] == "long-2")
    assert row["eas_method"] == "amortised" and row["n_probes_run"] == 0
    data = trace_data(page)
    assert data["kind"] == "amortised" and data["probed"] is None and data["what"] == "predicted"
    assert data["H"] == [round(h, 4) for h in row["trajectory"]] and len(data["H"]) == row["answer_end_token"] - 1
    assert "".join(data["tok"]) == row["response"]
    assert "<dt>EAS (predicted)</dt>" in page and f"<dd>{row['eas']:.2f} bits</dd>" in page
    assert "predicted by a head from one forward pass; no probe was run" in page


def test_plot_trajectory_draws_what_each_row_is(strided: Path, amortised: Path, tmp_path: Path) -> None:
    from eas.study.plots import trajectory_figure

    row = read_jsonl(strided)[0]
    pred = read_jsonl(amortised)[0]
    fig = trajectory_figure([("s", row_curve(row)), ("a", row_curve(pred))])
    ax_s, ax_a = fig.axes
    n = row["answer_end_token"] - 1
    assert ax_s.get_title() == f"s: EAS = {row['eas']:.2f} bits (stride 4, {len(row['trajectory_t'])} of {n} probed)"
    assert abs(row["eas"] - sum(row["trajectory"])) > 1  # the title is not the sum of the probed values
    (line,) = ax_s.get_lines()
    assert list(line.get_xdata()) == row["trajectory_t"] and list(line.get_ydata()) == row["trajectory"]
    assert ax_a.get_title() == f"a: EAS = {pred['eas']:.2f} bits (predicted)" and "probes" not in ax_a.get_title()
    assert ax_a.get_ylabel() == "predicted H_t (bits)"
    out = tmp_path / "fig.png"
    assert main(["-q", "plot", "trajectory", str(strided), "--id", "long-1", "--out", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_row_curve_refuses_rows_that_disagree_with_themselves() -> None:
    base = {"id": "x", "trajectory": [1.0, 2.0], "trajectory_t": [2, 4], "answer_end_token": 5, "probe_stride": 2}
    assert row_curve(base).dense() == [None, 1.0, None, 2.0]
    for change, message in [
        ({"trajectory_t": [2]}, "2 trajectory values but 1 positions"),
        ({"trajectory_t": [4, 2]}, "increasing"),
        ({"trajectory_t": [2, 9]}, "beyond T-1 = 4"),
        ({"trajectory_t": "2,4"}, "not a list of positions"),
    ]:
        with pytest.raises(ViewError, match=re.escape(message)):
            row_curve({**base, **change})
    exact = {"id": "e", "trajectory": [1.0, 2.0, 3.0], "answer_end_token": 4, "eas": 6.0}
    assert row_curve(exact) == RowCurve("exact", (1, 2, 3), (1.0, 2.0, 3.0), 3, None, 6.0)
    assert row_curve({**exact, "eas_method": "amortised"}).describe() == "predicted"
    assert row_curve({**exact, "eas_method": "exact"}).kind == "exact"  # auto's calibration rows
    with pytest.raises(ViewError, match="answer_end_token 9 but 3 trajectory values"):
        row_curve({**exact, "answer_end_token": 9})
    assert doctest.testmod(view_rows).failed == 0


def test_one_picker_and_the_model_from_the_manifest(tmp_path: Path) -> None:
    from eas.records import InputError

    rows = [synthetic_row(20, row_id=f"q{i}/0") for i in range(7)]
    assert [r["id"] for r in pick_rows(rows, ["q3/0", "q1/0"], "f")] == ["q3/0", "q1/0"]
    with pytest.raises(InputError, match=r"no row with id 'q3' \(did you mean 'q3/0'"):
        pick_rows(rows, ["q3"], "f")
    out = tmp_path / "s.jsonl"
    assert manifest_model(out) is None  # no manifest
    (tmp_path / "s.jsonl.manifest.json").write_text(json.dumps({"settings": {"model": "embedded", "dtype": "auto"}}))
    assert manifest_model(out) == "embedded"
    described = {"backend": {"model": "/m/SmolLM2"}, "settings": {"model": "embedded"}}
    (tmp_path / "s.jsonl.manifest.json").write_text(json.dumps(described))
    assert manifest_model(out) == "/m/SmolLM2"  # what the backend loaded comes first
    nested = {"settings": {"backend": {"kind": "hf", "model": "embedded"}}}
    (tmp_path / "s.jsonl.manifest.json").write_text(json.dumps(nested))
    assert manifest_model(out) == "embedded"


def test_a_study_question_that_was_not_scored_is_shown_as_text(tmp_path: Path) -> None:
    study = tmp_path / "study"
    study.mkdir()
    scored = synthetic_row(30, row_id="q1") | {"answer_entropy": 0.5, "scored_samples": 1}
    unscored = {"id": "q2", "eas": None, "trajectory": None, "token_spans": None, "scored_samples": 0}
    unscored |= {"prompt": "What is 56 / 8?", "response": "Dividing gives seven.", "answer_entropy": 0.0}
    write_jsonl(study / "per_question.jsonl", [scored, unscored])
    out = study / "traces.html"
    assert main(["view", str(study), "--out", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert "no sample of this question has a boxed answer, so none was scored" in page
    assert "".join(trace_data(page, 1)["tok"]) == "" and trace_data(page, 1)["tail"] == "Dividing gives seven."
    # A study written before rows carried token_spans is still refused, with the fix.
    write_jsonl(study / "per_question.jsonl", [{k: v for k, v in scored.items() if k != "token_spans"}])
    assert main(["view", str(study), "--out", str(out)]) == 2
