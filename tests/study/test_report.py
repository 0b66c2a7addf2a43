"""Model and dataset text is escaped in both reports."""

import math
import re

from eas.study.report import render_html, render_markdown

EVIL = [
    '<script>alert("x")</script>',
    '" onmouseover="alert(1)',
    "</td><img src=x onerror=alert(2)>",
    "a|b",
    "![x](http://host/p.png)",
    "[click](javascript:alert(1)) **bold** `code` $x$ ~~gone~~ <http://host/auto>",
]


def _inputs(tmp_path):
    from matplotlib.figure import Figure

    fig = Figure()
    fig.add_subplot().plot([0, 1])
    png = tmp_path / "fig.png"
    fig.savefig(png)
    table = [
        {
            "id": f"q{i}{evil}",
            "question": evil,
            "answer": evil,
            "answer_entropy": float(i),
            "pass_rate": 0.5,
            "eas": 1.0,
            "answer_counts": {evil: 3, "<no answer>": 1},
            "sample0_correct": True,
        }
        for i, evil in enumerate(EVIL)
    ]
    corr = [
        {
            "label": EVIL[1],
            "reference": "answer_entropy",
            "metric": "eas",
            "n": 4,
            "pearson_r": 0.5,
            "pearson_p": 0.1,
            "ci_low": math.nan,
            "ci_high": 0.9,
            "spearman_rho": 0.4,
            "auroc": 0.6,
            "prr": 0.2,
        }
    ]
    settings = {"model": {"model": EVIL[0]}, "dataset": EVIL[1]}
    return settings, table, corr, {"trajectory": png}


def test_html_escapes_model_text(tmp_path):
    page = render_html(*_inputs(tmp_path))
    assert "<script>" not in page
    assert 'onmouseover="alert' not in page and '" onmouseover' not in page
    assert "<img src=x" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "&quot; onmouseover=&quot;alert(1)" in page
    assert page.count("<img ") == 1 and "data:image/png;base64," in page  # only our figure


def test_markdown_escapes_model_text(tmp_path):
    md = render_markdown(*_inputs(tmp_path))
    assert "<script>" not in md and "<img src=x" not in md
    assert "&lt;script&gt;" in md
    assert "a\\|b" in md  # a pipe cannot break the table
    assert "![trajectory](fig.png)" in md


def test_markdown_cells_stay_text_in_a_markdown_viewer(tmp_path):
    """Rendered as a viewer renders it (CommonMark + tables): the only image is our figure,
    the only links are ours, and the model's markup is shown as the characters it wrote."""
    from markdown_it import MarkdownIt

    settings, table, corr, figures = _inputs(tmp_path)
    corr = [{**corr[0], "label": EVIL[4]}, {**corr[0], "label": EVIL[5], "metric": "ppl"}]
    md = render_markdown(settings, table, corr, figures, traces="traces.html")
    page = MarkdownIt("commonmark").enable("table").render(md)
    assert re.findall(r"<img [^>]*>", page) == ['<img src="fig.png" alt="trajectory" />']
    assert set(re.findall(r'href="([^"#]*)', page)) == {"traces.html"}
    for markup in ("<strong>bold", "<code>", "<em>", "<s>", "<del>", "<script", "<http"):
        assert markup not in page
    assert "![x](http://host/p.png)" in page and "**bold** `code` $x$ ~~gone~~" in page  # as text
    assert "<td>a|b</td>" in page  # the pipe stays inside its cell


def test_the_extreme_questions_link_to_their_trace(tmp_path):
    from urllib.parse import unquote

    settings, table, corr, figures = _inputs(tmp_path)
    page = render_html(settings, table, corr, figures, traces="traces.html")
    assert '<a href="traces.html">traces.html</a>' in page
    hrefs = re.findall(r'<a href="traces\.html#id=([^"]*)">', page)
    assert len(hrefs) == 2 * 5 and len(table) <= 2 * 5  # the 5 most and the 5 least uncertain: every question
    assert {unquote(h) for h in hrefs} == {r["id"] for r in table}  # the page's own id, quoted
    assert all(re.fullmatch(r"[A-Za-z0-9_.~%-]+", h) for h in hrefs)  # nothing left to break the attribute
    assert "<script>" not in page and "<img src=x" not in page
    md = render_markdown(settings, table, corr, figures, traces="traces.html")
    assert "[traces.html](traces.html)" in md
    assert re.search(r"\| \[q0&lt;script&gt;alert\\\(\"x\"\\\)&lt;/script&gt;\]\(traces\.html#id=q0%3Cscript%3E", md)
    assert "traces.html" not in render_html(settings, table, corr, figures)  # no link without a page
