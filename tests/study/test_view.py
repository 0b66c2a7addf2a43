"""The token-level view's page (``eas.view.page``): token cutting, structure, escaping."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from support.view_rows import HOSTILE, row_for, synthetic_row, trace_data

import eas
from eas import view
from eas.view.trace import ViewError, token_texts


def test_tokens_join_back_to_the_response_with_gaps_and_overlaps() -> None:
    text = "ab cd€ef"
    # gap (the space outside token 2), overlap (a character split across two tokens), tail
    tokens, tail = token_texts(text, [[0, 2], [3, 5], [4, 6], [6, 7]])
    assert tokens == ["ab", " cd", "€", "e"] and tail == "f"
    assert "".join(tokens) + tail == text
    row = synthetic_row(500)
    tokens, tail = token_texts(row["response"], row["token_spans"])
    assert "".join(tokens) + tail == row["response"] and len(tokens) == 500


@pytest.mark.parametrize(
    ("spans", "message"), [([[0, 99]], "outside the response"), ([[1]], "pair of integers"), ([[3, 2]], "outside")]
)
def test_bad_spans_are_refused_with_the_row_id(spans: list[list[int]], message: str) -> None:
    with pytest.raises(ViewError, match=message):
        token_texts("hello", spans)
    with pytest.raises(ViewError, match="row 'x'"):
        view.render([{"id": "x", "response": "hello", "token_spans": spans}])


def test_trajectory_and_x_t_must_agree() -> None:
    row = row_for("so \\boxed{42}.")
    with pytest.raises(ViewError, match="answer_end_token"):
        view.render([{**row, "answer_end_token": row["answer_end_token"] + 1}])
    with pytest.raises(ViewError, match="x_T is token"):
        view.render([{**row, "token_spans": row["token_spans"][:1], "trajectory": [1.0, 2.0], "answer_end_token": 3}])
    with pytest.raises(ViewError, match="no rows"):
        view.render([])
    with pytest.raises(ViewError, match="layout must be one of"):
        view.render([row], layout="grid")  # type: ignore[arg-type]
    for bad in (float("inf"), float("nan"), -1.0, 0.0):
        with pytest.raises(ViewError, match="vmax must be a finite number of bits > 0"):
            view.render([row], vmax=bad)


def test_page_structure_and_which_token_gets_which_h() -> None:
    row = row_for("First 6 x 7 = 42 so \\boxed{42}.", option_probs={"A": [0.5, 0.25], "B": [0.5, 0.75]})
    row["trajectory"][2] = float("nan")
    page = view.render([row], model="tiny-model")
    assert page.startswith("<!DOCTYPE html>") and page.count("<section") == 1
    assert not re.search(r"(src|href)=\"?(https?:)?//", page), "the page must not load anything"
    data = trace_data(page)
    tokens = [row["response"][a:b] for a, b in row["token_spans"]]
    assert data["tok"] == tokens and data["tail"] == ""
    t_end = row["answer_end_token"]
    assert data["T"] == t_end and tokens[t_end - 1] == "\\boxed{42}."  # x_T: the token holding the last "2"
    assert len(data["H"]) == t_end - 1  # H_t is on token index t-1 for t = 1..T-1; x_T has none
    assert data["H"][0] == 0.25 and data["H"][2] is None  # NaN -> null (drawn hatched)
    assert data["ans"] == [t_end - 1, t_end]
    assert data["opt"] == {"A": [0.5, 0.25], "B": [0.5, 0.75]}
    meta = json.loads(page.split('id="eas-meta">', 1)[1].split("</script>", 1)[0])
    assert meta["layout"] == "single" and meta["vmax"] == pytest.approx(max(h for h in data["H"] if h is not None))
    for text in ("tiny-model", "EAS", "mean EAS", "final entropy", "correct", "truth", "prompt ("):
        assert text in page
    assert "<dt>answer entropy</dt>" not in page  # only when the row has one (a study)


def test_the_colour_scale_is_the_99th_percentile_unless_given() -> None:
    rows = [synthetic_row(300, seed=s, row_id=f"q{s}") for s in range(2)]
    values = sorted(h for r in rows for h in r["trajectory"])
    rank = -(-99 * len(values) // 100)  # nearest rank, 1-based
    meta = json.loads(view.render(rows).split('id="eas-meta">', 1)[1].split("</script>", 1)[0])
    assert meta["vmax"] == values[rank - 1] and meta["hmax"] == values[-1]
    meta = json.loads(view.render(rows, vmax=2.5).split('id="eas-meta">', 1)[1].split("</script>", 1)[0])
    assert meta["vmax"] == 2.5
    assert "values above 2.50 (given)" in view.render(rows, vmax=2.5)
    assert f"values above {values[rank - 1]:.2f} (the page's 99th percentile)" in view.render(rows)


def test_model_text_is_escaped_everywhere() -> None:
    row = row_for(HOSTILE, row_id="<script>window.pwned=4</script>")
    page = view.render([row], title="<i>t</i>")
    assert "window.pwned" in page  # the text is there...
    assert "<script>window.pwned" not in page and "<img" not in page and "<i>t" not in page  # ...never as markup
    assert page.count("</script>") == page.count("<script") == 3  # meta, one trace, the view's own code
    assert "".join(trace_data(page)["tok"]) == HOSTILE  # JSON round-trip is exact


def test_layouts_and_study_rows() -> None:
    rows = [synthetic_row(300, seed=s, row_id=f"q{s}") for s in range(5)]
    assert 'class="panels n2"' in view.render(rows[:2])
    page = view.render(rows)
    ids = re.findall(r'<details class="item" data-i="\d+"><summary><span>#\d+</span><span>([^<]+)</span>', page)
    by_eas = [r["id"] for r in sorted(rows, key=lambda r: -r["eas"])]
    assert ids == by_eas and page.count("<svg") == 5  # sparklines, curves are drawn when opened
    per_q: list[dict[str, Any]] = [
        {"id": "q1", "eas": 3.0, "answer": "7", "sample0_answer": "8", "sample0_correct": False, "answer_entropy": 1.5}
    ]
    samples = [{"id": "q1/0", "prompt": "p", "response": "r \\boxed{8}"}, {"id": "q1/1", "response": "x"}]
    (row,) = view.study_rows(per_q, samples)
    assert row["response"] == "r \\boxed{8}" and row["model_answer"] == "8" and row["correct"] is False
    page = view.render([row])
    assert "<dt>answer entropy</dt>" in page and "no token_spans" in page and "no trajectory" in page
    (row,) = view.study_rows([{**per_q[0], "score_error": "no \\boxed{...}", "scored_samples": 0}])
    assert "sample 0 was not scored: no \\boxed{...}" in view.render([row])
    (row,) = view.study_rows([{**per_q[0], "scored_samples": 4}])
    assert "the mean over 4 scored samples" in view.render([row])


def test_trace_anchor_quotes_ids_and_the_api_is_public() -> None:
    assert view.trace_anchor("q 1/0") == "#id=q%201%2F0"
    assert eas.view.render is view.render and "view" in eas.__all__
