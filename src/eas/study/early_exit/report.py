"""The early-exit report: ``summary.csv``, ``pareto.png``, ``report.md`` and ``report.html``.

The table is ``eas.study.early_exit.summary``'s; the figure puts every arm at (mean tokens,
accuracy), one line per rule through its thresholds, the full run as a star, and rings
the arms on the Pareto front. Rule specs and settings are escaped as in the study report.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from eas.study.early_exit.summary import COLUMNS, FULL, pareto_front
from eas.study.plots import new_figure, save
from eas.study.report import esc, figure_html, html_page, html_table, md_cell, settings_lines

TITLE = "Early exit on the online EAS curve"
FIGURE = "pareto.png"
HEAD = ("rule", "setting", "stopped", "accuracy", "Δ accuracy [CI]", "tokens", "saved", "Pareto")


def _pct(v: Any) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{100 * v:.1f} %"


def _diff(r: Mapping[str, Any]) -> str:
    if r["arm"] == FULL:
        return ""
    lo, hi = r["difference_low"], r["difference_high"]
    ci = "n/a" if lo is None or not math.isfinite(lo) else f"[{100 * lo:+.1f}, {100 * hi:+.1f}]"
    return f"{100 * r['difference']:+.1f} pp {ci}"


def table_cells(rows: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    """The report table's cells, one list per row (``HEAD``)."""
    front = pareto_front(rows)
    cells = []
    for r, on_front in zip(rows, front, strict=True):
        setting = "" if r["arm"] == FULL else f"{r['setting']}={r['value']}"
        saved = "" if r["arm"] == FULL else f"{r['saved']:.1f} ({r['saved_pct']:.1f} %)"
        cells.append(
            [
                r["rule"],
                setting,
                _pct(r["stopped"]),
                _pct(r["accuracy"]),
                _diff(r),
                f"{r['tokens']:.1f}",
                saved,
                "yes" if on_front else "",
            ]
        )
    return cells


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The table as markdown (what ``eas early-exit`` prints; the cells are rule names and numbers)."""
    out = ["| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in table_cells(rows)]
    return "\n".join(out)


def pareto_figure(rows: Sequence[Mapping[str, Any]]) -> Any:
    """Mean tokens against accuracy: a line per rule through its thresholds, the full run a star,
    the Pareto front ringed."""
    fig, axes = new_figure(1, 1, 6.4, 4.4)
    ax = axes[0, 0]
    full = next(r for r in rows if r["arm"] == FULL)
    ax.scatter([full["tokens"]], [100 * full["accuracy"]], marker="*", s=180, color="black", label="full", zorder=3)
    for rule in dict.fromkeys(r["rule"] for r in rows if r["arm"] != FULL):
        arm = sorted((r for r in rows if r["rule"] == rule), key=lambda r: r["tokens"])
        x, y = [r["tokens"] for r in arm], [100 * r["accuracy"] for r in arm]
        ax.plot(x, y, marker="o", label=f"{rule} ({arm[0]['setting']})")
        for r in arm:
            if r["stopped"] == 0:  # never fired: the full run's point, unlabelled
                continue
            ax.annotate(
                str(r["value"]),
                (r["tokens"], 100 * r["accuracy"]),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=8,
            )
    front = [r for r, on in zip(rows, pareto_front(rows), strict=True) if on]
    ax.scatter(
        [r["tokens"] for r in front],
        [100 * r["accuracy"] for r in front],
        s=160,
        facecolors="none",
        edgecolors="tab:red",
        linewidths=1.5,
        label="Pareto front",
        zorder=4,
    )
    ax.set_xlabel("mean tokens per sample (forced answer included)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"{full['questions']} questions, {full['samples']} samples")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def _notes(rows: Sequence[Mapping[str, Any]], settings: Mapping[str, Any]) -> list[str]:
    full = rows[0]
    boot = settings.get("bootstrap", {})
    return [
        f"{full['questions']} questions x {full['samples'] // max(1, full['questions'])} samples; every arm replays its "
        "rule on the same full generations, so each exit is paired with the run it cuts short.",
        f"Δ accuracy: exit minus full, in percentage points, with the {boot.get('confidence', 0.95):.0%} paired "
        f"bootstrap interval over questions ({boot.get('resamples', '?')} draws).",
        "tokens: mean tokens generated per sample, the exit's forced end of thinking, trigger and answer included; "
        "saved: the full run's mean minus it (the share of all tokens in brackets).",
    ]


def render_markdown(rows: Sequence[Mapping[str, Any]], settings: Mapping[str, Any]) -> str:
    out = [f"# {TITLE}", "", markdown_table(rows), ""]
    out += [f"- {md_cell(n, 400)}" for n in _notes(rows, settings)]
    out += ["", f"![tokens against accuracy]({FIGURE})", "", "## Settings", ""]
    out += [f"- **{md_cell(k)}**: {md_cell(v, 400)}" for k, v in settings_lines(settings)]
    return "\n".join(out) + "\n"


def render_html(rows: Sequence[Mapping[str, Any]], settings: Mapping[str, Any], figure: Path) -> str:
    parts = [f"<h1>{TITLE}</h1>", html_table(HEAD, table_cells(rows))]
    parts += ["<ul>" + "".join(f"<li>{esc(n)}</li>" for n in _notes(rows, settings)) + "</ul>"]
    parts += [figure_html("tokens against accuracy (Pareto front ringed)", figure)]
    parts += ["<h2>Settings</h2>", html_table(["setting", "value"], settings_lines(settings))]
    return html_page(TITLE, parts)


def write_report(
    out_dir: str | Path, rows: Sequence[Mapping[str, Any]], settings: Mapping[str, Any]
) -> dict[str, Path]:
    """Write the table (CSV), the figure and both reports into ``out_dir``; their paths."""
    out = Path(out_dir)
    paths = {"csv": out / "summary.csv", "figure": out / FIGURE, "md": out / "report.md", "html": out / "report.html"}
    with paths["csv"].open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    save(pareto_figure(rows), paths["figure"])
    paths["md"].write_text(render_markdown(rows, settings), encoding="utf-8")
    paths["html"].write_text(render_html(rows, settings, paths["figure"]), encoding="utf-8")
    return paths
