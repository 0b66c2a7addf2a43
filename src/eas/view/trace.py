"""What ``eas view`` draws of one scored row: its response cut into tokens, checked (pure).

Which token gets which entropy (docs/method.md section 1): probe ``t`` sees the prompt and
``x_1 .. x_t``, so ``H_t`` is the forced-answer entropy *after* response token ``x_t``.
With 0-based ``token_spans``, ``H_t`` (``trajectory[t-1]``) shades token index ``t-1``,
for t = 1 .. T-1. Token ``x_T`` (index ``T-1``, the last token of the final answer) and
every later token have no ``H``: they are drawn unshaded, ``x_T`` outlined, and the
tokens that overlap the content of the last ``\\boxed{...}`` underlined. A strided row
(``--probe-stride k``) has ``H_t`` only at its probed positions ``trajectory_t``: the other
tokens are drawn as not probed; an amortised row's ``H_t`` are predictions
(``eas.view.rows``).

Cutting the text: ``token_spans[i] = [start, end)`` are the character offsets of token
``i`` in the response (the tokenizer's offset mapping, written by ``eas score
--trajectory``). Offsets may leave gaps (a leading space outside the span) or overlap (a
character split across byte-level tokens), so the page cuts at token ends: token ``i``
shows ``response[c_{i-1}:c_i]`` with ``c_i = max(end_i, c_{i-1})`` and ``c_{-1} = 0``;
text after the last token is shown unshaded. The pieces always join back to the exact
response.

Escaping: model and dataset text never reaches the page as markup. ``script_json``
writes data for a ``<script type="application/json">`` block with ``<``, ``>`` and ``&``
as ``\\u003c`` etc.; the page's script inserts token text with ``textContent`` only.
"""

from __future__ import annotations

import bisect
import math
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eas.answers import last_boxed_span
from eas.storage.jsontext import dumps
from eas.view.rows import RowCurve, ViewError, row_curve

__all__ = ["Trace", "ViewError", "finite", "percentile", "prepare", "script_json", "token_texts", "trace_anchor"]


@dataclass(frozen=True)
class Trace:
    """One row, checked and cut into what the page draws.

    Attributes:
        index: the row's position in the page's input.
        row: the row itself (header figures come from it).
        tokens: the response cut into one string per token (see the module docstring).
        tail: response text after the last token (unshaded).
        entropies: ``H_1 .. H_{T-1}`` in bits; ``None`` where not finite or not probed.
        answer_end: T, the 1-based index of ``x_T``; ``None`` when unknown.
        answer_tokens: 0-based ``[first, stop)`` tokens overlapping the boxed answer.
        model_answer: the row's final answer (``model_answer``, else the boxed content).
        curve: what the entropies are (``eas.view.rows.RowCurve``: exact, strided with
            the probed positions, or amortised predictions); ``None`` without a trajectory.
    """

    index: int
    row: Mapping[str, Any]
    tokens: list[str]
    tail: str
    entropies: list[float | None]
    answer_end: int | None
    answer_tokens: tuple[int, int] | None
    model_answer: str | None
    curve: RowCurve | None = None


def finite(x: Any) -> float | None:
    """``x`` as a float, or ``None`` when it is missing, not a number or not finite."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def boxed_span(text: str) -> tuple[int, int] | None:
    """Character span ``[start, end)`` of the content of the last closed ``\\boxed{...}``.

    Example:
        >>> boxed_span("so \\\\boxed{42}.")
        (10, 12)
    """
    try:
        span = last_boxed_span(text)
    except ValueError:  # the last \boxed{ is never closed
        return None
    return (span.start, span.end) if span else None


def token_texts(response: str, spans: Sequence[Sequence[int]]) -> tuple[list[str], str]:
    """Cut ``response`` into one string per token, plus the unshaded tail.

    Args:
        response: the response text the spans index into.
        spans: ``[start, end)`` character offsets of each response token.

    Returns:
        ``(tokens, tail)`` with ``"".join(tokens) + tail == response``.

    Raises:
        ViewError: a span is not two integers with ``0 <= start <= end <= len(response)``.

    Example:
        >>> token_texts("Hi there!", [[0, 2], [3, 8]])
        (['Hi', ' there'], '!')
    """
    n = len(response)
    tokens: list[str] = []
    cut = 0
    for i, span in enumerate(spans):
        if len(span) != 2 or not all(isinstance(x, int) and not isinstance(x, bool) for x in span):
            raise ViewError(f"token_spans[{i}] is not a pair of integers: {span!r}")
        start, end = span
        if not 0 <= start <= end <= n:
            raise ViewError(f"token_spans[{i}] = [{start}, {end}] lies outside the response ({n} characters)")
        stop = max(end, cut)
        tokens.append(response[cut:stop])
        cut = stop
    return tokens, response[cut:]


def _answer_tokens(tokens: Sequence[str], box: tuple[int, int]) -> tuple[int, int]:
    """0-based ``[first, stop)`` of the tokens that overlap the character span ``box``."""
    cuts = [0]
    for t in tokens:
        cuts.append(cuts[-1] + len(t))
    first = max(0, bisect.bisect_right(cuts, box[0]) - 1)
    stop = bisect.bisect_left(cuts, box[1])
    return first, min(len(tokens), max(stop, first + 1))


def prepare(row: Mapping[str, Any], index: int = 0) -> Trace:
    """Check one row and cut it into tokens.

    Raises:
        ViewError: naming the row's id, when its spans do not fit its response, or its
            trajectory, ``answer_end_token`` and spans disagree about where ``x_T`` is.
    """
    rid = row.get("id", index)
    response = row.get("response")
    response = response if isinstance(response, str) else ""
    curve = row_curve(row) if row.get("trajectory") else None
    entropies = curve.dense() if curve else []
    spans = row.get("token_spans")
    try:
        tokens, tail = token_texts(response, spans) if spans is not None else ([], response)
    except ViewError as exc:
        raise ViewError(f"row {rid!r}: {exc}") from None
    end = row.get("answer_end_token")
    if isinstance(end, int) and not isinstance(end, bool):
        answer_end: int | None = end
    else:
        answer_end = len(entropies) + 1 if curve else None
    if spans is not None and answer_end is not None and answer_end > len(tokens):
        raise ViewError(f"row {rid!r}: x_T is token {answer_end} but token_spans has {len(tokens)} tokens")
    box = boxed_span(response)
    answer_tokens = _answer_tokens(tokens, box) if box and tokens else None
    model_answer = row.get("model_answer", response[box[0] : box[1]] if box else None)
    return Trace(index, row, tokens, tail, entropies, answer_end, answer_tokens, model_answer, curve)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of non-empty ``values`` (``q`` in 0..100).

    Example:
        >>> percentile([3.0, 1.0, 2.0, 4.0], 50)
        2.0
    """
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q / 100 * len(s)) - 1))]


def script_json(data: Any) -> str:
    """JSON safe inside ``<script type="application/json">``: no ``<``, ``>``, ``&`` left.

    Example:
        >>> script_json({"t": "</script>"})
        '{"t":"\\\\u003c/script\\\\u003e"}'
    """
    text = dumps(data, ensure_ascii=False, separators=(",", ":"))
    for c, code in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(c, code)
    return text


def trace_anchor(trace_id: Any) -> str:
    """Fragment that opens one trace of a page, e.g. ``traces.html#id=q17`` from a report.

    Example:
        >>> trace_anchor("q 1/0")
        '#id=q%201%2F0'
    """
    return "#id=" + urllib.parse.quote(str(trace_id), safe="")
