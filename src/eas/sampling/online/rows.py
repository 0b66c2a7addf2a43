"""A finished monitored sample -> its output row: x_T located, the figures, the curve.

x_T is located as ``eas score`` locates it (``eas.scoring.probes``): the token whose
character span holds the last character of the last ``\\boxed{...}``'s content (or of
the response, with ``end="response"``), spans taken from the tokenizer's offset mapping
of the response when the response re-tokenizes to the generated ids (``retokenizes``),
else from the generated tokens' own text pieces. When it does not re-tokenize the same,
``eas score`` of the text would probe other tokens; the online curve is the model's own.

A sample stopped by a rule covers t = 1 .. t_stop (the reasoning up to the stop: the
area so far); its answer is the forced one.

A server's sample (``topk``: top-K probes) also gets the columns of ``eas score --backend
openai``: ``eas`` is then the top-K lower value and the exact EAS lies in ``[eas, eas +
eas_bound]`` (``min_topk_mass``; with the curve ``trajectory_bound`` and
``trajectory_topk_mass``); the token figures a server cannot give (the entropies of the
response tokens: ``mean_token_entropy``, ``hes``) are None.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from eas.answers import last_boxed_span
from eas.backends.watch import Probe
from eas.maths.metrics import record_figures, topk_figures
from eas.maths.stratified import ProbePlan
from eas.sampling.online.text import IncrementalText

if TYPE_CHECKING:
    from eas.sampling.online.setup import OnlineSetup


@dataclass
class OnlineSample:
    """What the monitor measured on one finished row (the reasoning part unless said)."""

    row: int
    reasoning: IncrementalText
    all_ids: list[int]
    logprobs: list[float]
    entropies: list[float]
    probes: dict[int, Probe]
    area: float
    stop_t: int | None = None
    stop_reason: str | None = None
    answer_ids: list[int] = field(default_factory=list)
    answer_text: str | None = None
    plan: ProbePlan | None = None
    located: dict[str, Any] = field(default_factory=dict)
    topk: bool = False  # probes are top-K (a server): the row gets the bound columns


FIGURES = ("eas", "eas_se", "mean_eas", "n_probes", "n_probes_run", "final_entropy")
TOPK_FIGURES = ("eas_bound", "min_topk_mass")


def _known(values: list[float | None]) -> np.ndarray | None:
    """The values as an array, or None when the runtime did not give every one (a server)."""
    return None if any(v is None for v in values) else np.asarray(values, dtype=np.float64)


def _end_char(response: str, end: str) -> int:
    """Character index of x_T's last character; ``ValueError`` with the reason it has none."""
    if not response.strip():
        raise ValueError("empty response")
    if end == "response":
        return len(response.rstrip()) - 1
    span = last_boxed_span(response)  # ValueError when the last \boxed{ is never closed
    if span is None:
        raise ValueError("no \\boxed{...} final answer in the response")
    if span.end == span.start:
        raise ValueError("the last \\boxed{} is empty")
    return span.end - 1


def _token_at(spans: list[tuple[int, int]], char: int) -> int:
    """0-based index of the token holding ``char`` (else the first ending after it), as ``eas score``."""
    for i, (a, b) in enumerate(spans):
        if a <= char < b:
            return i
    for i, (_, b) in enumerate(spans):
        if b > char:
            return i
    raise ValueError(f"no token holds character {char} of the response; x_T cannot be located")


def answer_probes(tokenizer: Any, sample: OnlineSample, end: str) -> tuple[int | None, dict[str, Any]]:
    """``(T-1, details)``: how many positions the area covers, or ``(None, {"error": ...})``."""
    ids = sample.reasoning.ids
    if sample.stop_t is not None:
        return sample.stop_t, {"answer_end_token": None}
    response = sample.reasoning.text().strip()
    enc = tokenizer(response, add_special_tokens=False, return_offsets_mapping=True)
    retokenizes = list(enc["input_ids"]) == ids
    if retokenizes:
        spans = [(int(a), int(b)) for a, b in enc["offset_mapping"]]
    elif sample.reasoning.consistent:
        spans = sample.reasoning.spans()
    else:
        return None, {"error": "the generated tokens' text pieces do not join to the response", "retokenizes": False}
    try:
        t_end = _token_at(spans, _end_char(response, end)) + 1
    except ValueError as exc:
        return None, {"error": str(exc), "retokenizes": retokenizes, "spans": spans}
    return t_end - 1, {"answer_end_token": t_end, "retokenizes": retokenizes, "spans": spans}


def online_row(tokenizer: Any, sample: OnlineSample, setup: OnlineSetup) -> dict[str, Any]:
    """The row of one monitored sample: response, the figures of ``eas score``, online columns."""
    row: dict[str, Any] = {
        "response": tokenizer.decode(sample.all_ids, skip_special_tokens=True).strip(),
        "online": True,
        "tokens_generated": len(sample.all_ids),
        "reasoning_tokens": len(sample.reasoning.ids),
        "stopped_at": sample.stop_t,
        "stop_reason": sample.stop_reason,
        "area_at_stop": sample.area if sample.stop_t is not None else None,
        "final_answer": sample.answer_text,
        "retokenizes": sample.located.get("retokenizes"),
    }
    monitor, eas = setup.monitor, setup.eas
    lp, ent = _known(sample.logprobs), _known(sample.entropies)
    plan = sample.plan
    error = sample.located.get("error")
    h = np.asarray([sample.probes[t].entropy for t in plan.positions]) if plan is not None else np.zeros(0)
    if plan is not None and not np.all(np.isfinite(h)):
        error = f"non-finite logits at probe t={plan.positions[int(np.flatnonzero(~np.isfinite(h))[0])]}"
    weights = np.asarray(plan.weights) if plan is not None and monitor.probe_every > 1 else None
    figures = record_figures(h, lp, ent, eas.hes_fraction, probe_weights=weights)
    if sample.topk:
        probes = [sample.probes[t] for t in plan.positions] if plan is not None else []
        bounds = np.asarray([p.bound for p in probes], dtype=np.float64)
        masses = np.asarray([p.topk_mass for p in probes], dtype=np.float64)
        figures.update(topk_figures(bounds, masses, weights))
    if error is not None:
        figures.update(dict.fromkeys(FIGURES + (TOPK_FIGURES if sample.topk else ())))
        row["eas_error"] = error
    row.update(figures)
    row["probe_stride"] = monitor.probe_every
    row["answer_end_token"] = sample.located.get("answer_end_token")
    row["response_tokens"] = len(sample.reasoning.ids)
    if monitor.trajectory and error is None and plan is not None:
        row["trajectory"] = [float(x) for x in h]
        if monitor.probe_every > 1:
            row["trajectory_t"] = list(plan.positions)
        if sample.topk:
            row["trajectory_bound"] = [float(sample.probes[t].bound) for t in plan.positions]  # type: ignore[arg-type]
            row["trajectory_topk_mass"] = [float(sample.probes[t].topk_mass) for t in plan.positions]  # type: ignore[arg-type]
        row["token_spans"] = [list(s) for s in _spans(tokenizer, sample)]
    if eas.track_tokens and error is None and plan is not None:
        row["option_probs"] = {
            text: [float(sample.probes[t].tracked[j]) for t in plan.positions]
            for j, text in enumerate(eas.track_tokens)
        }
    return row


def _spans(tokenizer: Any, sample: OnlineSample) -> list[tuple[int, int]]:
    """Character spans of the row's response tokens (the answer's too after a stop)."""
    if sample.stop_t is None:
        return sample.located["spans"]
    text = IncrementalText(tokenizer)
    for i in sample.reasoning.ids + sample.answer_ids:
        text.push(i)
    return text.spans()
