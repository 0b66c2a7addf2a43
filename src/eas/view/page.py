"""Token-level view of scored traces: one self-contained HTML page (``eas view``).

Per trace the page shows the response cut into its tokens exactly as the model saw them
(``eas.view.trace``), each token's background shaded by ``H_t``; above it the
trajectory ``H_1 .. H_{T-1}`` as an inline SVG area (hover a token or the curve to see t,
H_t, the token and the option probabilities; click the curve to scroll to its token); a
header with the trace's figures; the prompt collapsed. One colour scale serves the whole
page. No model is needed: everything comes from the scored rows. The page loads nothing
(its CSS and script, ``view.css`` and ``view.js`` beside this module, are inlined) and
holds model text only as escaped JSON, inserted with ``textContent``.

Deliberate simplifications: the colour scale is linear from 0 to the 99th percentile of
the page's finite ``H`` values (higher values get the top colour); the curve of a trace
longer than the plot's width shows the per-column maximum (the area's upper envelope);
with many traces (list layout) each is drawn only when opened.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from eas.config import Layout, ViewConfig
from eas.records import InputError
from eas.storage.files import read_table
from eas.view.trace import Trace, ViewError, finite, percentile, prepare, script_json, trace_anchor

__all__ = ["Layout", "ViewError", "read_study", "render", "study_page", "study_rows", "trace_anchor"]

COLOR_BINS = 32
SPARK_POINTS = 120
DIGITS = 4
# Sequential colour map (ColorBrewer YlOrRd, 9 classes): low entropy light, high dark.
STOPS = ("#ffffcc", "#ffeda0", "#fed976", "#feb24c", "#fd8d3c", "#fc4e2a", "#e31a1c", "#bd0026", "#800026")


def _asset(name: str) -> str:
    return resources.files("eas.view").joinpath(name).read_text(encoding="utf-8")


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, DIGITS)


def _trace_data(tr: Trace) -> dict[str, Any]:
    probs = tr.row.get("option_probs")
    options = None
    if isinstance(probs, Mapping):
        options = {str(k): [_round(finite(p)) for p in v] for k, v in probs.items() if isinstance(v, Sequence)}
    curve = tr.curve
    if options and curve is not None and curve.kind == "strided":  # one value per probe run: spread like H
        options = {k: _spread(v, curve.t, curve.positions) for k, v in options.items()}
    return {
        "tok": tr.tokens,
        "tail": tr.tail,
        "H": [_round(h) for h in tr.entropies],
        "T": tr.answer_end,
        "ans": list(tr.answer_tokens) if tr.answer_tokens else None,
        "opt": options,
        "kind": curve.kind if curve else "exact",
        # strided: the probed positions t (1-based); the other positions were not probed
        "probed": list(curve.t) if curve and curve.kind == "strided" else None,
        "what": curve.describe() if curve else None,
    }


def _spread(values: Sequence[Any], ts: Sequence[int], positions: int) -> list[Any]:
    out: list[Any] = [None] * positions
    for t, v in zip(ts, values, strict=False):
        out[t - 1] = v
    return out


def _fmt(v: Any, digits: int = 3) -> str:
    f = finite(v)
    return "n/a" if f is None else f"{f:.{digits}f}"


def _notes(tr: Trace) -> list[str]:
    r = tr.row
    notes = []
    if r.get("score_error"):
        notes.append(f"sample 0 was not scored: {r['score_error']}")
    elif r.get("token_spans") is None and r.get("scored_samples") == 0:
        notes.append("no sample of this question has a boxed answer, so none was scored: sample 0's text is shown")
    elif r.get("token_spans") is None:
        notes.append(
            "no token_spans in this row (scored without --trajectory or under --probe-stride, or by an older eas): "
            "the text is not cut into tokens"
        )
    if not tr.entropies and not r.get("score_error"):
        notes.append("no trajectory in this row: score with --trajectory")
    curve = tr.curve
    if curve is not None and curve.kind == "strided":
        notes.append(
            f"probe stride {curve.stride}: H_t was measured at {curve.probed} of the {curve.positions} positions "
            "(the rest are marked not probed); EAS is the stratified estimate, eas_se its standard error"
        )
    elif curve is not None and curve.kind == "amortised":
        notes.append("amortised: every H_t, and EAS, is predicted by a head from one forward pass; no probe was run")
    k = r.get("scored_samples")
    if isinstance(k, int) and k > 1:
        notes.append(f"EAS, mean EAS and final entropy: the mean over {k} scored samples; text and curve: sample 0")
    return notes


def _header(tr: Trace, model: str | None) -> str:
    r = tr.row
    cells: list[tuple[str, str]] = [("model", str(r.get("model") or model or "n/a"))]
    kind = tr.curve.kind if tr.curve else "exact"
    eas = _fmt(r.get("eas"), 2)
    if kind == "strided" and finite(r.get("eas_se")) is not None:
        eas += f" ± {_fmt(r.get('eas_se'), 2)}"
    label = {"strided": " (estimate)", "amortised": " (predicted)"}.get(kind, "")
    cells += [("EAS" + label, eas + " bits"), ("mean EAS" + label, _fmt(r.get("mean_eas")) + " bits")]
    cells.append(("final entropy H_{T-1}" + label, _fmt(r.get("final_entropy")) + " bits"))
    if tr.curve is not None and kind != "exact":
        cells.append(("H_t", tr.curve.describe()))
    cells.append(("answer", "n/a" if tr.model_answer is None else str(tr.model_answer)))
    if r.get("answer") is not None:
        cells.append(("truth", str(r["answer"])))
    if isinstance(r.get("correct"), bool):
        cells.append(("correct", "yes" if r["correct"] else "no"))
    if r.get("answer_entropy") is not None:
        cells.append(("answer entropy", _fmt(r["answer_entropy"]) + " bits"))
    t = "n/a" if tr.answer_end is None else str(tr.answer_end)
    cells.append(("T / tokens", f"{t} / {len(tr.tokens) if tr.tokens else 'n/a'}"))
    dl = "".join(f"<div><dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd></div>" for k, v in cells)
    note = "".join(f'<p class="note">{html.escape(n)}</p>' for n in _notes(tr))
    return f'<h2 class="tid">{html.escape(str(r.get("id", tr.index)))}</h2><dl class="figs">{dl}</dl>{note}'


def _section(tr: Trace, model: str | None) -> str:
    prompt = tr.row.get("prompt")
    details = ""
    if isinstance(prompt, str) and prompt:
        details = (
            f'<details class="prompt"><summary>prompt ({len(prompt)} characters)</summary>'
            f"<pre>{html.escape(prompt)}</pre></details>"
        )
    return (
        f'<section class="trace" id="trace-{tr.index}" data-i="{tr.index}">{_header(tr, model)}{details}'
        '<div class="curve"></div><div class="text"></div></section>'
        f'<script type="application/json" id="eas-d{tr.index}">{script_json(_trace_data(tr))}</script>'
    )


def _spark(tr: Trace, hmax: float) -> str:
    """A small server-side SVG of the trajectory (list layout): at most SPARK_POINTS points,
    each the maximum of its column; positions without a value (not probed) are skipped."""
    n = len(tr.entropies)
    cols: dict[int, float] = {}
    for k, h in enumerate(tr.entropies):
        if h is not None:
            c = k * SPARK_POINTS // max(1, n)
            cols[c] = max(h, cols.get(c, h))
    if not cols:
        return ""
    last = max(1, min(n, SPARK_POINTS) - 1)
    coords = " ".join(f"{c * 120 / last:.1f},{20 - 20 * h / hmax:.1f}" for c, h in sorted(cols.items()))
    return f'<svg class="spark" viewBox="0 0 120 20" preserveAspectRatio="none"><polyline points="{coords}"/></svg>'


def _list_item(tr: Trace, rank: int, model: str | None, hmax: float) -> str:
    r = tr.row
    kind = {"strided": " (est.)", "amortised": " (pred.)"}.get(tr.curve.kind if tr.curve else "exact", "")
    bits = [f"#{rank}", str(r.get("id", tr.index)), f"EAS{kind} {_fmt(r.get('eas'), 1)}"]
    bits.append(f"mean {_fmt(r.get('mean_eas'), 3)}")
    if r.get("answer_entropy") is not None:
        bits.append(f"H_ans {_fmt(r['answer_entropy'], 2)}")
    if isinstance(r.get("correct"), bool):
        bits.append("correct" if r["correct"] else "wrong")
    label = "".join(f"<span>{html.escape(b)}</span>" for b in bits)
    return f'<details class="item" data-i="{tr.index}"><summary>{label}{_spark(tr, hmax)}</summary>{_section(tr, model)}</details>'


def _rgb(x: float) -> str:
    """The colour map at ``x`` in [0, 1], interpolated between the STOPS."""
    pos = x * (len(STOPS) - 1)
    i = min(len(STOPS) - 2, int(pos))
    a, b = STOPS[i], STOPS[i + 1]
    c = [round(int(a[k : k + 2], 16) + (pos - i) * (int(b[k : k + 2], 16) - int(a[k : k + 2], 16))) for k in (1, 3, 5)]
    return f"rgb({c[0]},{c[1]},{c[2]})"


def _css() -> str:
    bins = "".join(f".c{k}{{background:{_rgb((k + 0.5) / COLOR_BINS)}}}" for k in range(COLOR_BINS))
    gradient = f".grad{{background:linear-gradient(90deg,{','.join(STOPS)})}}"
    return _asset("view.css") + bins + gradient


def _legend(vmax: float, source: str, strided: bool) -> str:
    ticks = "".join(f"<span>{vmax * f:.2f}</span>" for f in (0, 0.5, 1))
    return (
        '<div class="legend"><span class="lab">H_t, forced-answer entropy after token t (bits):</span>'
        f'<span class="scale"><span class="grad"></span><span class="ticks">{ticks}</span></span>'
        f'<span class="lab">values above {vmax:.2f} ({source}) get the darkest colour;</span>'
        '<span class="sw nh">no H</span>'
        + ('<span class="sw np">not probed</span>' if strided else "")
        + '<span class="sw xT">x_T</span><span class="sw ans">boxed answer</span></div>'
    )


def _by_eas(tr: Trace) -> tuple[bool, float]:
    eas = finite(tr.row.get("eas"))
    return (eas is None, -(eas or 0.0))


def render(
    rows: Sequence[Mapping[str, Any]],
    *,
    title: str | None = None,
    model: str | None = None,
    layout: Layout = ViewConfig.layout,
    vmax: float | None = ViewConfig.vmax,
) -> str:
    """One self-contained HTML page showing ``rows`` token by token.

    Args:
        rows: scored rows (``eas score --trajectory --keep-input`` output, or
            ``study_rows``). Fields: ``id``, ``response``, ``token_spans``,
            ``trajectory``, ``eas``, ``mean_eas``, ``final_entropy``; optional ``prompt``,
            ``answer`` (the reference), ``model_answer``, ``correct``,
            ``answer_entropy``, ``model``, ``option_probs``, ``answer_end_token``.
        title: page title (default: the id for one trace, else a count).
        model: model name for rows without a ``model`` field.
        layout, vmax: see ``eas.config.ViewConfig`` (``auto``: single for 1 trace, side
            by side for 2-3, a list sorted by EAS for more; the colour scale tops at the
            page's 99th percentile of ``H_t`` unless ``vmax`` bits are given).

    Returns:
        The page as a string (UTF-8 text, no external resource).

    Raises:
        ViewError: no rows, an unknown layout or a bad ``vmax``, or a row whose spans,
            trajectory and x_T disagree.
    """
    if not rows:
        raise ViewError("no rows to show")
    try:
        config = ViewConfig(layout=layout, vmax=vmax)
    except ValueError as exc:
        raise ViewError(str(exc)) from None
    traces = [prepare(r, i) for i, r in enumerate(rows)]
    if layout == "auto":
        layout = "single" if len(traces) == 1 else "side" if len(traces) <= config.max_side_by_side else "list"
    values = [h for tr in traces for h in tr.entropies if h is not None]
    hmax = max(values, default=1.0) or 1.0
    scale = vmax if vmax is not None else (percentile(values, config.color_percentile) if values else 1.0)
    scale = max(scale, 1e-6)
    source = "given" if vmax is not None else f"the page's {config.color_percentile:g}th percentile"
    if title is None:
        title = f"EAS view: {traces[0].row.get('id', 0)}" if len(traces) == 1 else f"EAS view: {len(traces)} traces"
    if layout == "list":
        body = "".join(_list_item(tr, k + 1, model, hmax) for k, tr in enumerate(sorted(traces, key=_by_eas)))
        body = f'<p class="hint">{len(traces)} traces, sorted by EAS (highest first); open one to see its tokens.</p>{body}'
    else:
        body = f'<div class="panels n{len(traces)}">' + "".join(_section(tr, model) for tr in traces) + "</div>"
    strided = any(tr.curve is not None and tr.curve.kind == "strided" for tr in traces)
    meta = {"vmax": scale, "hmax": hmax, "bins": COLOR_BINS, "layout": layout, "n": len(traces)}
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_css()}</style></head>\n"
        f'<body class="{layout}"><h1>{html.escape(title)}</h1>{_legend(scale, source, strided)}{body}'
        '<div id="eas-tip" role="tooltip" hidden></div><div id="eas-state" hidden></div>'
        f'<script type="application/json" id="eas-meta">{script_json(meta)}</script>'
        f"<script>{_asset('view.js')}</script></body></html>\n"
    )


def study_rows(
    per_question: Sequence[Mapping[str, Any]], samples: Sequence[Mapping[str, Any]] = ()
) -> list[dict[str, Any]]:
    """View rows for a study: one per question, showing its scored sample.

    ``per_question`` rows (``per_question.jsonl``) carry the figures and the scored
    sample's (``scored_sample``: the first with a boxed answer, or sample 0)
    ``trajectory``, ``token_spans``, ``option_probs``, ``prompt`` and ``response``; a
    study written before they carried the text takes it from that sample in ``samples``
    (``samples.jsonl``).
    """
    by_id = {str(s.get("id")): s for s in samples}
    out = []
    for q in per_question:
        k = q.get("scored_sample")
        s = by_id.get(f"{q.get('id')}/{0 if k is None else k}", {})
        row = dict(q)
        for key in ("prompt", "response"):
            if row.get(key) is None:
                row[key] = s.get(key)
        if not k:  # sample 0 was scored
            row["model_answer"] = q.get("sample0_answer", s.get("extracted"))
        elif s:  # a later sample; without samples.jsonl the page reads its box itself
            row["model_answer"] = s.get("extracted")
        row["correct"] = q.get("scored_correct", q.get("sample0_correct", s.get("correct")))
        out.append(row)
    return out


def read_study(folder: str | Path) -> tuple[list[dict[str, Any]], str | None]:
    """The view rows of a study folder (``eas study``/``eas demo`` output) and its model name.

    Reads ``per_question.jsonl``, and ``samples.jsonl`` only when the rows lack the
    response text (a study written before they carried it); the model name comes from
    ``settings.json`` when there is one.

    Raises:
        InputError: the folder has no ``per_question.jsonl``.
    """
    folder = Path(folder)
    table = folder / "per_question.jsonl"
    if not table.is_file():
        raise InputError(f"{folder}: no per_question.jsonl here (give the --out folder of eas study or eas demo)")
    per_question = read_table(table)
    samples_file = folder / "samples.jsonl"
    lacking = any(r.get("response") is None for r in per_question)
    samples = read_table(samples_file) if lacking and samples_file.is_file() else []
    model = None
    settings = folder / "settings.json"
    if settings.is_file():
        described = json.loads(settings.read_text(encoding="utf-8")).get("model")
        model = described.get("model") if isinstance(described, dict) else None
    return study_rows(per_question, samples), None if model is None else str(model)


def study_page(table: Sequence[Mapping[str, Any]], label: str, model: str | None = None) -> str:
    """The page of every question of a study (sample 0 of each), sorted by EAS."""
    title = f"{label}: {len(table)} questions, sample 0 of each, sorted by EAS"
    return render(study_rows(table), title=title, model=model, layout="list")
