"""Final-answer extraction from model text.

For now: the last ``\\boxed{...}`` with balanced braces (nested braces allowed, escaped
``\\{``/``\\}`` ignored for the balance). The grouping of equivalent answers and the
answer/correctness entropies of the study build on this.
"""

from __future__ import annotations

from dataclasses import dataclass

BOXED = "\\boxed{"


@dataclass(frozen=True)
class BoxedSpan:
    """Character span ``[start, end)`` of the content of a ``\\boxed{...}``."""

    start: int
    end: int

    def content(self, text: str) -> str:
        return text[self.start : self.end]


def _closing_brace(text: str, open_index: int) -> int | None:
    """Index of the ``}`` that closes the ``{`` at ``open_index``, or ``None``."""
    depth = 0
    i = open_index
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n and text[i + 1] in "{}":
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def last_boxed_span(text: str) -> BoxedSpan | None:
    """Content span of the last ``\\boxed{...}`` in ``text``.

    Returns ``None`` when there is no ``\\boxed{``. Raises ``ValueError`` when the last
    one is never closed (a truncated answer is not a final answer).

    Example:
        >>> s = r"so \\boxed{\\frac{1}{2}}."
        >>> last_boxed_span(s).content(s)
        '\\\\frac{1}{2}'
    """
    open_at = text.rfind(BOXED)
    if open_at < 0:
        return None
    brace = open_at + len(BOXED) - 1
    close = _closing_brace(text, brace)
    if close is None:
        raise ValueError("the last \\boxed{ is never closed")
    return BoxedSpan(brace + 1, close)


def extract_boxed(text: str) -> str | None:
    """Content of the last closed ``\\boxed{...}``, or ``None``.

    Example:
        >>> extract_boxed(r"first \\boxed{1}, finally \\boxed{42}")
        '42'
    """
    try:
        span = last_boxed_span(text)
    except ValueError:
        return None
    return span.content(text) if span else None
