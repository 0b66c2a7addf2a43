"""The token-level view in headless Chromium: it draws, hovers, and never runs model text.

Needs ``chromium`` (Debian: ``apt-get install chromium``; ``.ci/run`` installs it). Without
one these tests are skipped with that reason, except when ``EAS_REQUIRE_CHROMIUM=1``
(set by ``.ci/run``), where they fail: CI must run them. Each starts a fresh headless
browser (about 1.5-3 s on 2 cores).
"""

from __future__ import annotations

import html
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from support import chromium
from support.view_rows import HOSTILE, row_for, synthetic_row

from eas import view


@pytest.fixture(scope="module", autouse=True)
def _chromium() -> None:
    if chromium.find_chromium() is None:
        reason = "chromium not installed (apt-get install chromium, or set $CHROMIUM)"
        if os.environ.get("EAS_REQUIRE_CHROMIUM") == "1":
            pytest.fail(reason + "; EAS_REQUIRE_CHROMIUM=1 asks for the browser tests to run")
        pytest.skip(reason)


def page_state(dom: str) -> dict[str, Any]:
    """The view's own state (``window.easView.state``), as the script published it in the DOM."""
    text = dom.split('id="eas-state" hidden="">', 1)[1].split("</div>", 1)[0]
    return json.loads(html.unescape(text))


def test_browser_runs_the_view_hovers_and_never_runs_model_text(tmp_path: Path) -> None:
    row = row_for(HOSTILE, row_id="<script>window.pwned=4</script>", option_probs=None)
    path = tmp_path / "hostile.html"
    path.write_text(view.render([row]), encoding="utf-8")
    dom = chromium.dump_dom(chromium.page_url(path, "#hover=3"), budget_ms=500)  # let load/error events fire
    state = page_state(dom)
    assert state["ready"] is True and state["pwned"] == "undefined"  # none of the injected scripts ran
    assert state["lastHover"] == {"trace": 0, "t": 3, "H": 0.75, "token": "add"}
    tip = re.search(r'<div id="eas-tip"[^>]*>(.*?)</div>', dom, re.S)
    assert tip is not None
    assert html.unescape(tip.group(1)).splitlines() == ["t = 3", "H_3 = 0.750 bits", 'token "add"']
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in dom  # shown as text, in a token
    assert "<img" not in dom and "<script>window.pwned" not in dom
    assert dom.count('<span class="c') >= row["answer_end_token"] - 1  # one shaded span per H_t


def test_screenshot_is_not_blank(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    rows = [synthetic_row(1500, seed=1, row_id="q1/0", options=True), synthetic_row(900, seed=2, row_id="q2/0")]
    path.write_text(view.render(rows), encoding="utf-8")
    png = chromium.screenshot(chromium.page_url(path, "#hover=40"), tmp_path / "page.png", size=(1200, 900))
    width, height, channels, px = chromium.read_png(png)
    assert (width, height) == (1200, 900)
    colours, spread = chromium.colour_stats(png)
    assert colours > 50 and spread > 10, (colours, spread)
    shaded = sum(1 for i in range(0, width * height, 13) if px[i * channels] > 230 and px[i * channels + 2] < 160)
    assert shaded > 500  # yellow-to-red token backgrounds and the shaded area are on screen


def test_a_16k_token_trace_is_built_and_hovered(tmp_path: Path) -> None:
    path = tmp_path / "long.html"
    row = synthetic_row(16384, options=True)
    path.write_text(view.render([row]), encoding="utf-8")
    state = page_state(chromium.dump_dom(chromium.page_url(path, "#hover=16000")))
    assert state["ready"] and state["built"] == [0]
    expected = {"trace": 0, "t": 16000, "H": row["trajectory"][15999]}
    assert {k: state["lastHover"][k] for k in expected} == expected


def test_a_study_page_opens_the_trace_named_in_the_link(tmp_path: Path) -> None:
    rows = [synthetic_row(400, seed=s, row_id=f"q{s}") for s in range(6)]
    path = tmp_path / "traces.html"
    path.write_text(view.render(rows), encoding="utf-8")
    dom = chromium.dump_dom(chromium.page_url(path, view.trace_anchor("q4")))
    state = page_state(dom)
    assert state["built"] == [4]  # only the linked trace was drawn (list layout)
    assert re.search(r'<details class="item" data-i="4" open="">', dom)


def test_the_benchmark_runs_tiny(capsys: pytest.CaptureFixture) -> None:
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_view.py"
    spec = importlib.util.spec_from_file_location("bench_view", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    (result,) = bench.main(["--tiny"])
    assert result["tokens"] == 300 and result["html_kB"] > result["plain_kB"] > 0
    assert result["layout_ms"] > 0 and result["plain_layout_ms"] > 0 and result["hover_ms"] > 0
    assert json.loads(capsys.readouterr().out) == result  # what it prints is what it measured


def test_a_strided_row_marks_the_positions_not_probed(tmp_path: Path) -> None:
    row = synthetic_row(60, seed=3, row_id="s/0")
    n = row["answer_end_token"] - 1
    probed = [*range(4, n, 4), n]
    full = row["trajectory"]
    row |= {"trajectory": [full[t - 1] for t in probed], "trajectory_t": probed, "probe_stride": 4, "eas_se": 0.5}
    path = tmp_path / "strided.html"
    path.write_text(view.render([row]), encoding="utf-8")
    dom = chromium.dump_dom(chromium.page_url(path, "#hover=5"))
    assert page_state(dom)["lastHover"] == {"trace": 0, "t": 5, "H": None, "token": row_token(row, 5)}
    tip = html.unescape(re.search(r'<div id="eas-tip"[^>]*>(.*?)</div>', dom, re.S).group(1)).splitlines()
    assert tip[1] == f"not probed (stride 4, {len(probed)} of {n} probed)"
    assert dom.count('class="np') == n - len(probed)  # one "not probed" span per position without a probe
    assert dom.count('class="probe"') == len(probed)  # a marker on the curve per probe
    state = page_state(chromium.dump_dom(chromium.page_url(path, "#hover=8")))
    assert state["lastHover"]["H"] == full[7]


def row_token(row: dict[str, Any], t: int) -> str:
    start = row["token_spans"][t - 2][1] if t > 1 else 0
    return row["response"][start : row["token_spans"][t - 1][1]]
