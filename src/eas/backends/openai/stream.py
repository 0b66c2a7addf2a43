"""A streamed ``/completions`` generation, token by token (the server controller's stream).

The request carries ``stream: true`` and ``logprobs: 1``, so that every chunk of the
answer's server-sent events names its tokens by id: llama-server's chunks hold
``choices[0].logprobs.content`` (``{id, token, logprob, top_logprobs}`` per token; one
token a chunk, recorded against b11434), vLLM's the legacy ``tokens`` list, keyed
``token_id:<id>`` when ``return_tokens_as_token_ids`` is sent. A chunk with text but no
token ids is an error: the controller probes the exact tokens generated, never a
re-tokenized text.

Errors: a refusal before the stream starts is the server's message (``ServerError``);
an ``error`` event or ``{"error": ...}`` chunk mid-stream, a chunk that is not JSON, and
a stream that ends without a ``finish_reason`` all raise ``ServerError`` too, so a sample
is never written from half a generation. ``close()`` (or leaving the ``with`` block)
drops the connection, which makes llama-server and vLLM stop generating.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from typing import Any

from eas.backends.openai.client import ServerClient, ServerError
from eas.backends.openai.shapes import BadAnswer, logprob_value
from eas.backends.watch import StreamToken

_TOKEN_ID = re.compile(r"^token_id:(\d+)$")


def _logprob(value: Any) -> float | None:
    try:
        return logprob_value(value)
    except BadAnswer:
        return None  # a null or NaN log-prob: the token stands, its log-prob is unknown


def _error(chunk: Any) -> str | None:
    err = chunk.get("error") if isinstance(chunk, dict) else None
    if err is None:
        return None
    return str(err.get("message", err)) if isinstance(err, dict) else str(err)


def parse_chunk(chunk: Any) -> tuple[list[StreamToken], str | None]:
    """The tokens of one streamed chunk and its ``finish_reason`` (None while it goes on).

    Example:
        >>> entry = {"id": 253, "token": " a", "logprob": -0.5}
        >>> parse_chunk({"choices": [{"text": " a", "logprobs": {"content": [entry]}, "finish_reason": None}]})
        ([StreamToken(token=253, text=' a', logprob=-0.5)], None)
    """
    message = _error(chunk)
    if message is not None:
        raise ServerError(f"the server stopped the stream with an error: {message}", 200, message)
    try:
        choice = chunk["choices"][0]
    except (KeyError, IndexError, TypeError):
        raise ServerError("a streamed chunk has no choices[0]", 200) from None
    finish = choice.get("finish_reason")
    text = choice.get("text") or ""
    logprobs = choice.get("logprobs")
    tokens: list[StreamToken] = []
    if isinstance(logprobs, dict) and isinstance(logprobs.get("content"), list):
        for e in logprobs["content"]:
            token = e.get("id") if isinstance(e, dict) else None
            if not isinstance(token, int) or isinstance(token, bool):
                match = _TOKEN_ID.match(str(e.get("token", ""))) if isinstance(e, dict) else None
                token = int(match.group(1)) if match else None
            if token is None:
                tokens = []
                break
            tokens.append(StreamToken(token, str(e.get("token", "")), _logprob(e.get("logprob"))))
    elif isinstance(logprobs, dict) and isinstance(logprobs.get("tokens"), list):
        values = logprobs.get("token_logprobs") or [None] * len(logprobs["tokens"])
        for name, value in zip(logprobs["tokens"], values, strict=False):
            match = _TOKEN_ID.match(str(name))
            if match is None:
                tokens = []
                break
            tokens.append(StreamToken(int(match.group(1)), "", _logprob(value)))
    if text and not tokens:
        raise ServerError(
            "the server's stream names no token ids (the controller probes the exact tokens generated): "
            "use a server whose streamed log-probs carry ids (llama-server, vLLM)",
            200,
        )
    return tokens, finish


class CompletionStream:
    """One streamed generation: iterate for its ``StreamToken``s; ``finish_reason`` at the end."""

    def __init__(self, client: ServerClient, path: str, payload: dict[str, Any]):
        self.finish_reason: str | None = None
        self.tokens = 0
        self._stack = contextlib.ExitStack()
        self._lines = self._stack.enter_context(client.stream_lines(path, payload))

    def __iter__(self) -> Iterator[StreamToken]:
        try:
            for line in self._lines:
                if line.startswith("error:"):
                    message = line[len("error:") :].strip()
                    raise ServerError(f"the server stopped the stream with an error: {message}", 200, message)
                if not line.startswith("data:"):
                    continue  # blank separators, comments, event names
                data = line[len("data:") :].strip()
                if data == "[DONE]":
                    break
                try:
                    chunk = json.loads(data)
                except ValueError:
                    raise ServerError(f"a streamed chunk is not JSON: {data[:120]!r}", 200) from None
                tokens, finish = parse_chunk(chunk)
                for tok in tokens:
                    self.tokens += 1
                    yield tok
                if finish is not None:
                    self.finish_reason = finish
            if self.finish_reason is None:
                raise ServerError(f"the stream ended after {self.tokens} tokens without a finish_reason", 200)
        finally:
            self.close()

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> CompletionStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
