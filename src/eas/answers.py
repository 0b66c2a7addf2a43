"""Final answers of model text and their equivalence classes.

* Extraction: the last ``\\boxed{...}`` with balanced braces (nested braces allowed,
  escaped ``\\{``/``\\}`` ignored for the balance), else configurable fallbacks (the
  last number, the last option letter); multiple-choice answers become option letters.
* Equivalence: math-verify (``1/2`` = ``0.5`` = ``\\frac{1}{2}``) with a time limit per
  comparison (``AnswerMatcher``); answers are grouped into equivalence classes.
* Answer entropy, correctness entropy and pass rate of the classes: ``eas.maths.reference``.

No model here; math-verify is imported only when two answers differ as strings.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

log = logging.getLogger(__name__)

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


# --- extraction modes --------------------------------------------------------------------

ExtractMode = Literal["boxed", "last-number", "choice"]
EXTRACT_MODES: tuple[str, ...] = ("boxed", "last-number", "choice")
NO_ANSWER = "<no answer>"


def check_extract_modes(modes: Sequence[str]) -> tuple[str, ...]:
    """``modes`` as a tuple; ``ValueError`` naming the unknown ones (or none given)."""
    if isinstance(modes, str):
        raise ValueError(f"extract must be a sequence of modes, not the string {modes!r}")
    bad = [m for m in modes if m not in EXTRACT_MODES]
    if bad or not modes:
        raise ValueError(f"extract: unknown mode {', '.join(bad) or '(none)'} (use {', '.join(EXTRACT_MODES)})")
    return tuple(modes)


# A number as people write it: sign, thousands separators, decimals, a simple fraction.
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:,\d{3})*(?:\.\d+)?(?:\s*/\s*\d+)?")
# A choice letter standing alone: "B", "(B)", "B)", "B." at a word boundary.
_LETTER = re.compile(r"(?<![A-Za-z])\(?([A-Z])\)?(?![A-Za-z])")


def extract_last_number(text: str) -> str | None:
    """The last number in ``text`` (thousands separators dropped), or ``None``.

    Example:
        >>> extract_last_number("3 boxes of 1,200 pens make 3,600 pens.")
        '3600'
    """
    found = _NUMBER.findall(text)
    if not found:
        return None
    return re.sub(r"\s+", "", found[-1]).replace(",", "")


def extract_choice(text: str, letters: str = "ABCD") -> str | None:
    """The last stand-alone option letter of ``letters`` in ``text`` (e.g. ``(B)``), or ``None``.

    Example:
        >>> extract_choice("Not A. The answer is (C).")
        'C'
    """
    hits = [m.group(1) for m in _LETTER.finditer(text) if m.group(1) in letters]
    return hits[-1] if hits else None


def choice_letter(answer: str, choices: Sequence[str] | None, letters: str) -> str | None:
    """Map an extracted answer onto an option letter: ``B``, ``(B)``, ``B) 42`` or an option's text.

    Returns ``None`` when the answer names no option.

    Example:
        >>> choice_letter("(b) 12", ["10", "12", "14", "16"], "ABCD")
        'B'
        >>> choice_letter("14", ["10", "12", "14", "16"], "ABCD")
        'C'
    """
    s = answer.strip()
    # "B", "B.", "B) 12", "(b)", "(b) 12"; a lower-case letter only in parentheses.
    m = re.fullmatch(r"(?:\(([A-Za-z])\)|([A-Z]))(?:[.):]?\s.*|[.):]?)", s, flags=re.DOTALL)
    if m and (m.group(1) or m.group(2)).upper() in letters:
        return (m.group(1) or m.group(2)).upper()
    if choices:
        norm = _normalize(s)
        for letter, text in zip(letters, choices, strict=False):
            if norm == _normalize(str(text)):
                return letter
    return None


def extract_answer(
    text: str,
    modes: Sequence[ExtractMode] = ("boxed",),
    choices: Sequence[str] | None = None,
) -> str | None:
    """The final answer of a response: the first of ``modes`` that finds one, else ``None``.

    Modes: ``boxed`` (last ``\\boxed{...}``), ``last-number`` (last number in the text),
    ``choice`` (last stand-alone option letter). With ``choices`` (a multiple-choice
    question) every answer is mapped onto its letter (``\\boxed{B}``, ``\\boxed{(b)}`` and
    the option's own text all give ``B``); an answer naming no option counts as none.

    Example:
        >>> extract_answer(r"so \\boxed{1/2}")
        '1/2'
        >>> extract_answer("about 12 or 13", ["boxed", "last-number"])
        '13'
        >>> extract_answer(r"it must be \\boxed{(c)}", choices=["1", "2", "3", "4"])
        'C'
    """
    letters = "ABCDEFGHIJ"[: len(choices)] if choices else "ABCD"
    for mode in modes:
        if mode == "boxed":
            found = extract_boxed(text)
        elif mode == "last-number":
            found = extract_last_number(text)
        elif mode == "choice":
            found = extract_choice(text, letters)
        else:
            raise ValueError(f"unknown extraction mode {mode!r} (use one of {', '.join(EXTRACT_MODES)})")
        if found is None or not found.strip():
            continue
        if choices:
            letter = choice_letter(found, choices, letters)
            if letter is not None:
                return letter
            continue
        return found.strip()
    return None


# --- equivalence -------------------------------------------------------------------------


def _normalize(answer: str) -> str:
    """Cheap canonical form for the exact-match fast path: no spaces, ``$``, final period."""
    s = answer.strip().strip("$").strip()
    s = re.sub(r"\\[,;! ]|\s+", "", s)
    return s.rstrip(".").lower()


class AnswerMatcher:
    """Decides whether two answers are equivalent, with math-verify and a time limit.

    Identical normalised strings match at once; otherwise both are parsed by
    math-verify (as if boxed, so ``\\frac12``, ``1/2`` and ``0.5`` are all 1/2) and
    compared with ``verify``. Parses are cached. Each parse/comparison is limited to
    ``timeout_s`` seconds; math-verify enforces this with ``signal.alarm``, which works
    only in the main thread of a POSIX process, so elsewhere (another thread, Windows)
    the limit is dropped with a one-time warning rather than failing. A comparison that
    times out or errors counts as "not equivalent".

    Args:
        timeout_s: whole seconds per parse and per comparison (math-verify's unit).
    """

    def __init__(self, timeout_s: int = 5):
        self.timeout_s = max(1, int(timeout_s))
        self._parsed: dict[str, Any] = {}
        self._warned = False

    def _limit(self) -> int | None:
        if os.name == "posix" and threading.current_thread() is threading.main_thread():
            return self.timeout_s
        if not self._warned:
            log.warning("math-verify's time limit needs the main thread on POSIX; comparing without it")
            self._warned = True
        return None

    def parse(self, answer: str) -> Any:
        """math-verify's parse of ``answer`` (a list, empty when nothing parsed), cached."""
        if answer not in self._parsed:
            from math_verify import parse

            limit = self._limit()
            try:
                parsed = parse("\\boxed{" + answer + "}", parsing_timeout=limit)
                if not parsed:
                    parsed = parse(answer, parsing_timeout=limit)
            except Exception as exc:  # math-verify raises on timeouts and odd input alike
                log.debug("math-verify could not parse %r: %s", answer, exc)
                parsed = []
            self._parsed[answer] = parsed
        return self._parsed[answer]

    def equivalent(self, a: str | None, b: str | None) -> bool:
        """Whether ``a`` and ``b`` are the same answer; ``None`` (no answer) matches nothing.

        Example:
            >>> AnswerMatcher().equivalent("1/2", "0.5")
            True
        """
        if a is None or b is None:
            return False
        if _normalize(a) == _normalize(b):
            return True
        pa, pb = self.parse(a), self.parse(b)
        if not pa or not pb:
            return False
        from math_verify import verify

        try:
            return bool(verify(pa, pb, timeout_seconds=self._limit()))
        except Exception as exc:
            log.debug("math-verify could not compare %r and %r: %s", a, b, exc)
            return False


def group_answers(answers: Sequence[str | None], matcher: AnswerMatcher | None = None) -> list[int]:
    """Equivalence class of each answer, numbered in order of first appearance.

    Each answer joins the first earlier class whose first member it is equivalent to;
    every ``None`` (no extractable answer) joins one shared "no answer" class.

    Example:
        >>> group_answers(["1/2", "0.5", "3", None, None])
        [0, 0, 1, 2, 2]
    """
    matcher = matcher or AnswerMatcher()
    labels: list[int] = []
    heads: list[str | None] = []  # first member of each class
    for answer in answers:
        for k, head in enumerate(heads):
            if (answer is None and head is None) or matcher.equivalent(head, answer):
                labels.append(k)
                break
        else:
            heads.append(answer)
            labels.append(len(heads) - 1)
    return labels


def answer_counts(answers: Sequence[str | None], labels: Sequence[int]) -> dict[str, int]:
    """Class sizes keyed by each class's first member (``NO_ANSWER`` for none), largest first."""
    heads: dict[int, str] = {}
    counts: dict[int, int] = {}
    for a, k in zip(answers, labels, strict=True):
        heads.setdefault(k, NO_ANSWER if a is None else a)
        counts[k] = counts.get(k, 0) + 1
    return {heads[k]: c for k, c in sorted(counts.items(), key=lambda kc: (-kc[1], kc[0]))}
