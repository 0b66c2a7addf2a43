"""The study's report: ``report.md`` and a self-contained ``report.html``.

Everything that comes from the model or the dataset (questions, answers, sampled text,
ids, the model name, the labels) is escaped: HTML-escaped with quotes in the HTML report;
in the markdown report ``<``, ``>`` and ``&`` become entities (viewers render inline HTML)
and the punctuation of links, images, emphasis, code, math and table pipes is
backslash-escaped in every cell (``eas.study.tables.md_escape``), so a model's
``![x](http://host/p.png)`` stays text instead of becoming a remote image. Figures are embedded in the HTML as base64 PNG data URIs, so the file stands
alone. With ``traces`` (the study's ``traces.html``, ``eas.view.page``) both reports
link to it, and the ids of the most and least uncertain questions open their own trace.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eas.maths.metrics import metric_label
from eas.storage.jsontext import dumps
from eas.study.tables import ci_text, detail_table, markdown_table, md_escape
from eas.view.trace import trace_anchor

N_EXTREMES = 5
FIGURE_TITLES = {
    "trajectory": "Fig. 1: entropy trajectory of sample 0, least and most uncertain question",
    "metrics_vs_answer_entropy": "Fig. 2: z-scored metrics vs answer entropy",
    "options": "Fig. 3: option probabilities per answer-entropy bucket (multiple choice)",
}


@dataclass(frozen=True)
class Link:
    """A table cell that links ``text`` to ``href`` (both escaped when written)."""

    text: Any
    href: str


def _id_cell(row_id: Any, traces: str | None) -> Any:
    return row_id if traces is None else Link(row_id, traces + trace_anchor(row_id))


def esc(text: Any) -> str:
    """HTML-escape any value (quotes included), so it is safe in text and attributes."""
    return html.escape(str(text), quote=True)


def md_cell(text: Any, limit: int = 160) -> str:
    """A value made safe for one markdown table cell: one line, shortened to ``limit``
    characters, markdown and HTML escaped (``eas.study.tables.md_escape``)."""
    s = " ".join(str(text).split())
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return md_escape(s)


def _num(v: Any, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{v:.{digits}f}"


def extremes(table: Sequence[Mapping[str, Any]], n: int = N_EXTREMES) -> tuple[list[Any], list[Any]]:
    """The ``n`` most and ``n`` least uncertain questions by answer entropy (ties by id)."""
    rows = sorted(table, key=lambda r: (-r["answer_entropy"], str(r["id"])))
    least = sorted(table, key=lambda r: (r["answer_entropy"], str(r["id"])))
    return rows[:n], least[:n]


def _counts(row: Mapping[str, Any]) -> str:
    return ", ".join(f"{a} ×{c}" for a, c in row.get("answer_counts", {}).items())


def _summary(table: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    n = len(table)
    scored = sum(1 for r in table if r.get("eas") is not None)
    mean = lambda key: sum(r[key] for r in table) / n if n else float("nan")  # noqa: E731
    return {
        "questions": str(n),
        "questions with a scored response": str(scored),
        "questions that drop out (no scoreable sample)": str(n - scored),
        "mean pass rate": _num(mean("pass_rate")),
        "mean answer entropy (bits)": _num(mean("answer_entropy")),
        "sample 0 correct": f"{sum(1 for r in table if r.get('sample0_correct'))} / {n}",
    }


def settings_lines(settings: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [(k, v if isinstance(v, str) else dumps(v, default=str)) for k, v in settings.items()]


def render_markdown(
    settings: Mapping[str, Any],
    table: Sequence[Mapping[str, Any]],
    correlations: Sequence[Mapping[str, Any]],
    figures: Mapping[str, Path],
    traces: str | None = None,
) -> str:
    """The markdown report (figures linked by file name; ids linked to ``traces``)."""
    out = ["# EAS uncertainty study", ""]
    if traces is not None:
        out += [f"Every question token by token, sorted by EAS: [{md_cell(traces)}]({traces})", ""]
    out += ["## Settings", ""]
    out += [f"- **{md_cell(k)}**: {md_cell(v, 400)}" for k, v in settings_lines(settings)]
    out += ["", "## Summary", ""] + [f"- {k}: {v}" for k, v in _summary(table).items()]
    out += ["", "## Correlations", ""]
    for ref in ("answer_entropy", "correctness_entropy"):
        if any(r["reference"] == ref for r in correlations):
            out += [markdown_table(list(correlations), ref), ""]
    out += ["All columns (AUROC and PRR: the metric predicting a wrong sample-0 answer):", ""]
    out += [detail_table(list(correlations)), "", "## Figures", ""]
    for name, path in figures.items():
        out += [f"### {FIGURE_TITLES.get(name, name)}", "", f"![{esc(name)}]({Path(path).name})", ""]
    most, least = extremes(table)
    for title, rows in (("most", most), ("least", least)):
        out += [f"## The {len(rows)} {title} uncertain questions", ""]
        out += ["| id | question | truth | H_ans | pass | EAS | answers |", "|---|---|---|---|---|---|---|"]
        for r in rows:
            rid = md_cell(r["id"]) if traces is None else f"[{md_cell(r['id'])}]({traces}{trace_anchor(r['id'])})"
            out.append(
                f"| {rid} | {md_cell(r['question'])} | {md_cell(r.get('answer'))} | "
                f"{_num(r['answer_entropy'])} | {_num(r['pass_rate'])} | {_num(r.get('eas'), 1)} | {md_cell(_counts(r), 300)} |"
            )
        out.append("")
    return "\n".join(out)


def _cell(c: Any) -> str:
    return f'<a href="{esc(c.href)}">{esc(c.text)}</a>' if isinstance(c, Link) else esc(c)


def html_table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    th = "".join(f"<th>{esc(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{_cell(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _corr_html(correlations: Sequence[Mapping[str, Any]]) -> str:
    rows = [
        [
            r["label"],
            r["reference"],
            metric_label(r["metric"]),
            r["n"],
            _num(r["pearson_r"], 3),
            "n/a" if not math.isfinite(r["pearson_p"]) else f"{r['pearson_p']:.1e}",
            ci_text(r),
            _num(r["spearman_rho"], 3),
            _num(r["auroc"], 3),
            _num(r["prr"], 3),
        ]
        for r in correlations
    ]
    head = ["label", "reference", "metric", "n", "Pearson r", "p", "95 % CI", "Spearman rho", "AUROC", "PRR"]
    return html_table(head, rows)


def render_html(
    settings: Mapping[str, Any],
    table: Sequence[Mapping[str, Any]],
    correlations: Sequence[Mapping[str, Any]],
    figures: Mapping[str, Path],
    traces: str | None = None,
) -> str:
    """The self-contained HTML report (figures inlined as base64; ids linked to ``traces``)."""
    parts = ["<h1>EAS uncertainty study</h1>"]
    if traces is not None:
        parts.append(f'<p>Every question token by token, sorted by EAS: <a href="{esc(traces)}">{esc(traces)}</a></p>')
    parts += [
        "<h2>Settings</h2>",
        html_table(["setting", "value"], settings_lines(settings)),
    ]
    parts += ["<h2>Summary</h2>", html_table(["", ""], list(_summary(table).items()))]
    parts += ["<h2>Correlations</h2>", "<p>AUROC and PRR: the metric predicting a wrong sample-0 answer.</p>"]
    parts.append(_corr_html(correlations))
    parts.append("<h2>Figures</h2>")
    for name, path in figures.items():
        parts.append(figure_html(FIGURE_TITLES.get(name, name), path))
    most, least = extremes(table)
    for title, rows in (("most", most), ("least", least)):
        parts.append(f"<h2>The {len(rows)} {title} uncertain questions</h2>")
        body = [
            [
                _id_cell(r["id"], traces),
                r["question"],
                r.get("answer"),
                _num(r["answer_entropy"]),
                _num(r["pass_rate"]),
                _num(r.get("eas"), 1),
                _counts(r),
            ]
            for r in rows
        ]
        parts.append(html_table(["id", "question", "truth", "H_ans", "pass rate", "EAS", "sampled answers"], body))
    return html_page("EAS uncertainty study", parts)


STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
    "table{border-collapse:collapse;margin:1em 0;font-size:14px}td,th{border:1px solid #ccc;padding:3px 8px;"
    "text-align:left;vertical-align:top}img{max-width:100%}figure{margin:1em 0}"
)


def html_page(title: str, parts: Sequence[str]) -> str:
    """A self-contained HTML page: ``title`` (escaped) and the body ``parts`` (HTML, already escaped)."""
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
        f"<style>{STYLE}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n"
    )


def figure_html(title: str, path: str | Path) -> str:
    """A PNG figure inlined as a base64 data URI, with its caption."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<figure><img alt="{esc(title)}" src="data:image/png;base64,{data}"><figcaption>{esc(title)}</figcaption></figure>'


def write_report(
    out_dir: str | Path,
    settings: Mapping[str, Any],
    table: Sequence[Mapping[str, Any]],
    correlations: Sequence[Mapping[str, Any]],
    figures: Mapping[str, Path],
    traces: str | None = None,
) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into ``out_dir``; returns both paths.

    ``traces``: the view page beside them (``traces.html``) to link to, if any.
    """
    out = Path(out_dir)
    md = out / "report.md"
    md.write_text(render_markdown(settings, table, correlations, figures, traces), encoding="utf-8")
    page = out / "report.html"
    page.write_text(render_html(settings, table, correlations, figures, traces), encoding="utf-8")
    return md, page
