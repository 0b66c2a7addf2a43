"""The answer shapes of OpenAI-compatible servers, parsed into top-K log-probs (pure).

Three shapes carry the top-K log-probabilities of the first generated token:

- ``legacy``: the OpenAI completions shape, ``choices[0].logprobs.top_logprobs[0]``, a
  dict ``{token_text: logprob}`` (vLLM, SGLang's OpenAI adapter, llama-cpp-python).
  vLLM with ``return_tokens_as_token_ids: true`` keys it ``"token_id:<id>"``.
- ``content``: the chat shape, ``choices[0].logprobs.content[0].top_logprobs``, a list of
  ``{id?, token, logprob}``. llama.cpp's ``llama-server`` answers ``/v1/completions`` in
  this shape, with ids (b11434, recorded in tests/backends/recorded); vLLM's chat
  endpoint gives it without ids.
- ``sglang``: SGLang's native ``/generate``, ``meta_info.output_top_logprobs[0]``, a list
  of ``[logprob, token_id, text_or_null]`` triples.

Entries are keyed by token id wherever the server gives one (int keys), else by the
token's text (str keys): text keys merge two ids that decode to the same text, which
loses probability mass from the top K (the truncation bound stays valid, H_topK drops).
On a key collision the first entry (the most likely) is kept.

A ``null``, NaN or positive-infinity log-prob, or one above 0, is ``BadLogprobs``: the
caller retries the request and then fails the record; it never becomes a probability.
A log-prob of ``-inf`` (or vLLM's floor of -9999) is a probability of 0 and is kept.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

Shape = Literal["legacy", "content", "sglang"]
Key = int | str

#: log-probs above this are not log-probabilities (rounding of log 1 may give a hair above 0).
MAX_LOGPROB = 1e-4
_TOKEN_ID_KEY = re.compile(r"^token_id:(\d+)$")
# vLLM: "Requested sample logprobs of 21, which is greater than max allowed: 20"
# (SamplingParams._validate_logprobs); other servers word it "... <= 20" / "at most 20".
_CAP_PATTERNS = (
    re.compile(r"max(?:imum)? allowed:?\s*(\d+)", re.IGNORECASE),
    re.compile(r"logprobs[^.]*?(?:<=|at most|less than or equal to)\s*(\d+)", re.IGNORECASE),
)


class BadAnswer(ValueError):
    """An answer that does not hold top-K log-probs in any known shape."""


class BadLogprobs(BadAnswer):
    """An answer whose log-probs are null, NaN, +inf or positive."""


@dataclass(frozen=True)
class TopLogprobs:
    """The top-K log-probs of one position.

    Attributes:
        values: ``{token id or text: natural-log probability}``, most likely first.
        shape: the answer's shape (``legacy``, ``content``, ``sglang``).
        keyed_by: ``"id"`` when every key is a token id, else ``"text"``.
    """

    values: dict[Key, float]
    shape: Shape
    keyed_by: Literal["id", "text"]


def logprob_value(value: Any) -> float:
    """A checked log-prob: a finite number <= 0, or -inf; else BadLogprobs/BadAnswer."""
    if value is None:
        raise BadLogprobs("a null log-prob")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadAnswer(f"a log-prob that is not a number: {value!r}")
    x = float(value)
    if math.isnan(x):
        raise BadLogprobs("a NaN log-prob")
    if x > MAX_LOGPROB:
        raise BadLogprobs(f"a log-prob above 0: {x!r}")
    return x


def _key(token: Any, token_id: Any) -> Key:
    """The token id where the server gives one (also as ``"token_id:<id>"``), else the text."""
    if isinstance(token_id, int) and not isinstance(token_id, bool):
        return token_id
    match = _TOKEN_ID_KEY.match(str(token))
    return int(match.group(1)) if match else str(token)


def _top(entries: list[tuple[Key, Any]], shape: Shape) -> TopLogprobs:
    values: dict[Key, float] = {}
    for key, value in entries:
        lp = logprob_value(value)
        values.setdefault(key, lp)
    if not values:
        raise BadAnswer("the answer has an empty list of top log-probs")
    keyed_by: Literal["id", "text"] = "id" if all(isinstance(k, int) for k in values) else "text"
    return TopLogprobs(values, shape, keyed_by)


def parse_completion(body: Any) -> TopLogprobs:
    """The first generated token's top log-probs from a ``/completions`` answer."""
    try:
        logprobs = body["choices"][0]["logprobs"]
    except (KeyError, IndexError, TypeError):
        raise BadAnswer("the answer has no choices[0].logprobs") from None
    if not isinstance(logprobs, dict):
        raise BadAnswer("the answer's choices[0].logprobs is null: the server returned no log-probs")
    if "content" in logprobs:
        try:
            top = logprobs["content"][0]["top_logprobs"]
            entries = [(_key(e.get("token"), e.get("id")), e.get("logprob")) for e in top]
        except (KeyError, IndexError, TypeError, AttributeError):
            raise BadAnswer("the answer has no choices[0].logprobs.content[0].top_logprobs list") from None
        return _top(entries, "content")
    try:
        top = logprobs["top_logprobs"][0]
    except (KeyError, IndexError, TypeError):
        raise BadAnswer("the answer has no choices[0].logprobs.top_logprobs (nor .content)") from None
    if not isinstance(top, dict):
        raise BadAnswer("choices[0].logprobs.top_logprobs[0] is not an object")
    return _top([(_key(k, None), v) for k, v in top.items()], "legacy")


def parse_generate(body: Any) -> TopLogprobs:
    """The first generated token's top log-probs from SGLang's native ``/generate``."""
    try:
        top = body["meta_info"]["output_top_logprobs"][0]
        entries = [(_key(e[2], e[1]), e[0]) for e in top]
    except (KeyError, IndexError, TypeError):
        raise BadAnswer("the answer has no meta_info.output_top_logprobs[0] list of [logprob, id, text]") from None
    return _top(entries, "sglang")


def echo_logprobs(body: Any) -> tuple[list[float | None], int] | None:
    """(echoed ``token_logprobs``, ``usage.prompt_tokens``) of a legacy echo answer, or None.

    None when the answer has no legacy ``token_logprobs`` list (llama-server ignores
    ``echo`` and answers in the content shape) or no prompt token count. Entries that
    are not usable log-probs (the first is null by design) come back as None.
    """
    try:
        values = body["choices"][0]["logprobs"]["token_logprobs"]
        n_prompt = int(body["usage"]["prompt_tokens"])
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    if not isinstance(values, list):
        return None
    out: list[float | None] = []
    for v in values:
        try:
            out.append(logprob_value(v))
        except BadAnswer:
            out.append(None)
    return out, n_prompt


def error_message(text: str) -> str:
    """The message of an error body: ``{"error": {"message"}}`` (OpenAI, vLLM, llama-server),
    ``{"message"}`` (SGLang's adapter, flat), ``{"error": "..."}`` or ``{"detail": ...}``;
    else the text itself, cut to 300 characters."""
    try:
        body = json.loads(text)
    except ValueError:
        return text[:300]
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:300]
        for value in (err, body.get("message"), body.get("detail")):
            if isinstance(value, str) and value:
                return value[:300]
    return text[:300]


def logprobs_cap(message: str) -> int | None:
    """The largest ``logprobs`` a server allows, read from its refusal message, or None."""
    if "logprob" not in message.lower():
        return None
    for pattern in _CAP_PATTERNS:
        match = pattern.search(message)
        if match and int(match.group(1)) >= 1:
            return int(match.group(1))
    return None
