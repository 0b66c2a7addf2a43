"""Figures of a study: data in, a matplotlib ``Figure`` out (Agg backend, never shown).

1. ``trajectory_figure``: entropy trajectories H_1 .. H_{T-1} with the area (EAS) shaded
   and the row's EAS in each panel's title (paper Fig. 1); strided rows at their probed
   positions, amortised rows labelled predicted.
2. ``scatter_grid_figure``: z-scored metric vs answer entropy per metric, with the
   least-squares line and Pearson r and p in each panel (Fig. 2).
3. ``option_figure``: multiple-choice option probabilities along the trace, raw,
   cumulative and decayed cumulative, one column per answer-entropy bucket, with the
   bucket's mean entropy trajectory underneath (Fig. 3).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eas.maths.correlation import finite_pairs, pearson
from eas.maths.trajectories import cumulative, decayed_cumulative, mean_on_grid
from eas.view.rows import RowCurve


def new_figure(rows: int, cols: int, width: float, height: float) -> tuple[Any, np.ndarray]:
    # A bare Figure (no pyplot): no GUI backend, no global state, nothing to close.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False))
    return fig, axes


def save(fig: Any, path: str | Path, dpi: int = 110) -> Path:
    """Write ``fig`` as PNG (or the format of ``path``'s extension)."""
    path = Path(path)
    fig.savefig(path, dpi=dpi)
    return path


def exact_curve(trajectory: Sequence[float]) -> RowCurve:
    """The curve of ``H_1 .. H_{T-1}`` with every position probed; its EAS is their sum."""
    h = [float(x) for x in trajectory]
    return RowCurve("exact", tuple(range(1, len(h) + 1)), tuple(h), len(h), None, float(np.sum(h)))


def trajectory_figure(traces: Sequence[tuple[str, RowCurve]]) -> Any:
    """One panel per trace: H_t against t with the area under it shaded.

    The title's figure is the row's own EAS (``RowCurve.eas``): the stratified estimate
    of a strided row, the prediction of an amortised one. A strided row's points sit at
    their probed positions (markers, joined by a line; the other positions were not
    probed), an amortised row's curve is dashed and labelled predicted.

    Args:
        traces: ``(label, curve)`` pairs (``eas.view.rows.row_curve`` of each row, or
            ``exact_curve`` of a plain trajectory).
    """
    if not traces:
        raise ValueError("no trajectory to plot")
    fig, axes = new_figure(1, len(traces), 5.0, 3.2)
    for ax, (label, curve) in zip(axes[0], traces, strict=True):
        pairs = [(t, h) for t, h in zip(curve.t, curve.values, strict=True) if h is not None]
        t = np.asarray([p[0] for p in pairs], dtype=np.float64)
        h = np.asarray([p[1] for p in pairs], dtype=np.float64)
        strided = curve.kind == "strided"
        marker = "o" if strided or h.size < 40 else None
        style = "--" if curve.kind == "amortised" else "-"
        ax.plot(t, h, color="C0", lw=1.5, ls=style, marker=marker, ms=3)
        ax.fill_between(t, 0, h, color="C0", alpha=0.25)
        eas = "n/a" if curve.eas is None else f"{curve.eas:.2f}"
        what = "predicted" if curve.kind == "amortised" else curve.describe()
        ax.set_title(f"{label}: EAS = {eas} bits ({what})", fontsize=10)
        ax.set_xlabel("position t (response tokens)")
        ax.set_ylabel("predicted H_t (bits)" if curve.kind == "amortised" else "H_t (bits)")
        ax.set_xlim(0.5, max(1, curve.positions) + 0.5)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    return fig


def _z(v: np.ndarray) -> np.ndarray:
    sd = v.std()
    return (v - v.mean()) / sd if sd > 0 else v - v.mean()


def scatter_grid_figure(
    metrics: Mapping[str, Sequence[Any]], reference: Sequence[Any], reference_label: str = "answer entropy (bits)"
) -> Any:
    """Grid of z-scored metric (y) vs the reference (x), regression line, r and p per panel.

    Args:
        metrics: display name -> one value per question (None/NaN are dropped per panel).
        reference: the reference value of each question (e.g. answer entropy).
    """
    names = list(metrics)
    if not names:
        raise ValueError("no metric to plot")
    cols = min(4, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = new_figure(rows, cols, 3.2, 2.8)
    for ax, name in zip(axes.flat, names, strict=False):
        x, y = finite_pairs(reference, metrics[name])
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(reference_label, fontsize=8)
        ax.set_ylabel("z-score", fontsize=8)
        ax.grid(alpha=0.3)
        if x.size < 3:
            ax.text(0.5, 0.5, f"n = {x.size}: too few", ha="center", va="center", transform=ax.transAxes)
            continue
        z = _z(y)
        ax.scatter(x, z, s=12, alpha=0.7)
        r, p = pearson(x, y)
        if np.ptp(x) > 0:
            slope, intercept = np.polyfit(x, z, 1)
            xs = np.linspace(x.min(), x.max(), 20)
            ax.plot(xs, slope * xs + intercept, color="C3", lw=1.5)
        ax.text(
            0.03,
            0.97,
            f"r = {r:.2f}, p = {p:.1e}\nn = {x.size}",
            transform=ax.transAxes,
            va="top",
            fontsize=8,
            bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"},
        )
    for ax in list(axes.flat)[len(names) :]:
        ax.set_visible(False)
    return fig


@dataclass(frozen=True)
class OptionTrace:
    """One multiple-choice trace: option probabilities per probe and the entropies."""

    label: str
    option_probs: Mapping[str, Sequence[float]]  # letter -> P_t(letter), t = 1 .. T-1
    trajectory: Sequence[float]
    correct_letter: str | None = None


def option_figure(
    examples: Mapping[str, OptionTrace | None],
    bucket_trajectories: Mapping[str, Sequence[Sequence[float]]],
    alpha: float = 0.5,
) -> Any:
    """Fig. 3: option probabilities (raw, cumulative, decayed) per answer-entropy bucket.

    Args:
        examples: bucket name (``low``/``medium``/``high``) -> the trace shown for it, or
            None when the bucket has no multiple-choice question.
        bucket_trajectories: bucket name -> entropy trajectories of all its questions;
            their mean (on a relative-position grid) is drawn in the bottom row.
        alpha: decay exponent of the decayed cumulative probability.
    """
    buckets = list(examples)
    fig, axes = new_figure(4, len(buckets), 3.6, 2.3)
    rows = ("raw P_t(o)", "cumulative sum", f"decayed cumulative (alpha={alpha:g})")
    for j, bucket in enumerate(buckets):
        ex = examples[bucket]
        axes[0, j].set_title(f"{bucket} answer entropy" + (f"\n{ex.label}" if ex else ""), fontsize=9)
        if ex is None:
            for i in range(3):
                axes[i, j].text(0.5, 0.5, "no question", ha="center", va="center", transform=axes[i, j].transAxes)
        else:
            letters = sorted(ex.option_probs)
            p = np.array([ex.option_probs[o] for o in letters], dtype=np.float64).T  # (T-1, n_options)
            t = np.arange(1, p.shape[0] + 1)
            for i, values in enumerate((p, cumulative(p), decayed_cumulative(p, alpha))):
                ax = axes[i, j]
                for k, o in enumerate(letters):
                    mark = " (correct)" if o == ex.correct_letter else ""
                    ax.plot(t, values[:, k], lw=1.8 if mark else 1.0, label=o + mark)
                ax.set_ylabel(rows[i], fontsize=8)
                ax.grid(alpha=0.3)
            axes[0, j].legend(fontsize=7, loc="upper left")
        grid, mean = mean_on_grid(bucket_trajectories.get(bucket, []))
        ax = axes[3, j]
        ax.plot(grid, mean, color="k")
        ax.fill_between(grid, 0, np.nan_to_num(mean), color="k", alpha=0.15)
        ax.set_xlabel("relative position in the trace", fontsize=8)
        ax.set_ylabel("mean H_t (bits)", fontsize=8)
        ax.set_title(f"{len(bucket_trajectories.get(bucket, []))} questions", fontsize=8)
        ax.grid(alpha=0.3)
    return fig


def _valid(values: Any) -> bool:
    return values is not None and len(values) > 0


def draw_figures(table: Sequence[Mapping[str, Any]], out_dir: str | Path, alpha: float = 0.5) -> dict[str, Path]:
    """The study's figures from its per-question rows, saved as PNG in ``out_dir``.

    Fig. 1 shows sample 0 of the least and the most uncertain question (by answer
    entropy); Fig. 3 shows, per bucket, the multiple-choice question whose answer entropy
    is closest to the bucket's median, and is drawn only when the study has some.

    Returns:
        figure name -> path, for the figures that could be drawn.
    """
    from eas.maths.metrics import METRICS
    from eas.maths.trajectories import entropy_bucket

    out = Path(out_dir)
    paths: dict[str, Path] = {}
    traced = sorted(
        (r for r in table if _valid(r.get("trajectory"))), key=lambda r: (r["answer_entropy"], str(r["id"]))
    )
    if traced:
        picks = [traced[0]] if len(traced) == 1 else [traced[0], traced[-1]]
        traces = [(f"{r['id']} (H_ans={r['answer_entropy']:.2f})", exact_curve(r["trajectory"])) for r in picks]
        paths["trajectory"] = save(trajectory_figure(traces), out / "fig1_trajectory.png")
    metrics = {
        metric.label: [r.get(m) for r in table]
        for m, metric in METRICS.items()
        if any(r.get(m) is not None for r in table)
    }
    if metrics:
        fig = scatter_grid_figure(metrics, [r["answer_entropy"] for r in table])
        paths["metrics_vs_answer_entropy"] = save(fig, out / "fig2_metrics_vs_answer_entropy.png")
    choice = [r for r in table if _valid(r.get("option_probs")) and _valid(r.get("trajectory"))]
    if choice:
        examples: dict[str, OptionTrace | None] = {}
        bucket_traj: dict[str, list[Any]] = {}
        for bucket in ("low", "medium", "high"):
            rows = [r for r in choice if entropy_bucket(r["answer_entropy"]) == bucket]
            bucket_traj[bucket] = [r["trajectory"] for r in rows]
            if not rows:
                examples[bucket] = None
                continue
            median = float(np.median([r["answer_entropy"] for r in rows]))
            ex = min(rows, key=lambda r: (abs(r["answer_entropy"] - median), str(r["id"])))
            label = f"{ex['id']}: H_ans={ex['answer_entropy']:.2f}, EAS={sum(ex['trajectory']):.1f}"
            examples[bucket] = OptionTrace(label, ex["option_probs"], ex["trajectory"], ex.get("answer"))
        paths["options"] = save(option_figure(examples, bucket_traj, alpha), out / "fig3_option_probabilities.png")
    return paths


def selection_bars(rows: Sequence[Mapping[str, Any]], strategies: Sequence[str]) -> Any:
    """The selection experiment: each strategy's Avg Pass@1 difference to random, per
    checkpoint rank, with its 95 % interval (random's absolute level in the title)."""
    others = [s for s in strategies if s != "random"]
    fig, axes = new_figure(1, 1, 1 + 1.6 * max(1, len(others)), 3.4)
    ax = axes[0, 0]
    width = 0.8 / max(1, len(rows))
    x = np.arange(len(others))
    for i, row in enumerate(rows):
        means = [row[s] for s in others]
        errs = [0.0 if math.isnan(row[f"{s}_ci"]) else row[f"{s}_ci"] for s in others]  # one seed: no bar
        ax.bar(x + i * width, means, width, yerr=errs, capsize=3, label=f"checkpoint {row['checkpoint']}")
    ax.axhline(0.0, color="black", lw=0.8)
    ax.set_xticks(x + width * (len(rows) - 1) / 2, others)
    ax.set_ylabel("Avg Pass@1 minus random (points)")
    levels = ", ".join(f"{r['random']:.1f}" for r in rows)
    ax.set_title(f"Selection at equal budget (random: {levels})", fontsize=9)
    ax.legend(fontsize=7)
    return fig
