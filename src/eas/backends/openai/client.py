"""HTTP for the openai backend: one httpx client, retries with backoff, error bodies.

``ServerClient.post`` retries timeouts, connection errors, garbled bodies and the
statuses in ``RETRY_STATUS`` with exponential backoff (or the server's ``Retry-After``),
and raises ``ServerError`` with the server's own message (read from its error body,
in the OpenAI, vLLM, llama-server or SGLang form) when it gives up or gets another status.

Requests are logged at DEBUG level only; httpx's own per-request INFO lines are silenced
by the CLI unless ``--verbose``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import threading
import time
from collections.abc import Iterator
from typing import Any

from eas.backends.openai.shapes import error_message
from eas.config import ServerConfig

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
MAX_BACKOFF_S = 30.0


class ServerError(RuntimeError):
    """A request failed for good (after retries, or with a non-retryable status).

    ``status`` is the last HTTP status, None when the last attempt got no answer;
    ``message`` the server's own error message, when it sent one.
    """

    def __init__(self, message: str, status: int | None = None, server_message: str = ""):
        super().__init__(message)
        self.status = status
        self.server_message = server_message

    @property
    def retryable(self) -> bool:
        """Another run may pass: no answer, a transient status, or answers without usable log-probs (200)."""
        return self.status is None or self.status == 200 or self.status in RETRY_STATUS


def require_httpx() -> Any:
    try:
        import httpx
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the openai backend needs httpx: pip install 'eas[server]'") from exc
    return httpx


def api_root(base_url: str) -> str:
    """The server's root (``base_url`` without a trailing ``/v1``), where SGLang serves ``/generate``."""
    url = base_url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


class ServerClient:
    """A pool of keep-alive connections to one server, with the retry policy of ``ServerConfig``."""

    def __init__(self, server: ServerConfig):
        httpx = require_httpx()
        self.server = server
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(server.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        # One connection more than the request threads: a streamed generation (the online
        # controller) holds one while its probes are sent beside it.
        n = server.concurrency + 1
        limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
        self._client = httpx.Client(
            base_url=server.base_url.rstrip("/"), headers=headers, timeout=server.timeout_s, limits=limits
        )
        self._lock = threading.Lock()
        # retokenized_probes: text prompts the server counted as a different number of tokens;
        # bad_answers: 200 answers without usable log-probs (null, NaN, missing), retried.
        self.stats = {"requests": 0, "retries": 0, "retokenized_probes": 0, "bad_answers": 0}

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.stats[name] += n

    def backoff(self, attempt: int, retry_after: float | None = None) -> None:
        """Sleep before retry ``attempt`` (0-based): the server's Retry-After, else exponential."""
        delay = self.server.backoff_s * 2**attempt * (1 + 0.1 * random.random())
        time.sleep(min(MAX_BACKOFF_S, retry_after if retry_after is not None else delay))

    def check_reachable(self) -> None:
        """GET /models once (with the retry policy); ConnectionError if nobody answers."""
        httpx = require_httpx()
        for attempt in range(self.server.max_retries + 1):
            try:
                self._client.get("/models")
                return
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                if attempt == self.server.max_retries:
                    raise ConnectionError(f"no server answers at {self.server.base_url} ({exc})") from None
                self.backoff(attempt)

    def post(self, path: str, payload: dict[str, Any], retries: int | None = None) -> Any:
        """POST ``path`` (relative to ``base_url``, or an absolute URL); the parsed JSON."""
        httpx = require_httpx()
        retries = self.server.max_retries if retries is None else retries
        for attempt in range(retries + 1):
            status: int | None = None
            retry_after: float | None = None
            message = ""
            self.count("requests")
            try:
                resp = self._client.post(path, json=payload)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                why = f"{type(exc).__name__}: {exc}"
            else:
                status = resp.status_code
                if status == 200:
                    try:
                        return resp.json()
                    except ValueError:  # a cut or garbled body: worth another try
                        why = "HTTP 200 with a body that is not JSON"
                else:
                    message = error_message(resp.text)
                    why = f"HTTP {status}: {message}"
                    if status not in RETRY_STATUS:
                        raise ServerError(why, status, message)
                try:
                    retry_after = float(resp.headers.get("retry-after", ""))
                except ValueError:
                    retry_after = None
            if attempt == retries:
                raise ServerError(f"gave up after {retries + 1} attempts; last: {why}", status, message)
            self.count("retries")
            log.debug("POST %s failed (%s); retry %d", path, why, attempt + 1)
            self.backoff(attempt, retry_after)
        raise AssertionError("unreachable")  # pragma: no cover

    @contextlib.contextmanager
    def stream_lines(self, path: str, payload: dict[str, Any]) -> Iterator[Iterator[str]]:
        """POST ``path`` and yield the answer's lines as they come (server-sent events).

        Opening the stream is retried like ``post`` (no answer, a transient status); a
        refusal raises ``ServerError`` with the server's message, and so does a stream that
        breaks once lines were read (it is never resumed: the caller decides). Leaving the
        block closes the connection, which tells the server to stop generating.
        """
        httpx = require_httpx()
        for attempt in range(self.server.max_retries + 1):
            self.count("requests")
            status: int | None = None
            opened = False
            try:
                with self._client.stream("POST", path, json=payload) as resp:
                    status = resp.status_code
                    if status == 200:
                        opened = True
                        yield _lines(resp, httpx)
                        return
                    message = error_message(resp.read().decode(errors="replace"))
                    why = f"HTTP {status}: {message}"
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                if opened:  # the caller's own fault inside the block, or closing: not a retry
                    raise
                why, message = f"{type(exc).__name__}: {exc}", ""
            if status is not None and status not in RETRY_STATUS:
                raise ServerError(why, status, message)
            if attempt == self.server.max_retries:
                raise ServerError(f"gave up after {attempt + 1} attempts; last: {why}", status, message)
            self.count("retries")
            self.backoff(attempt)

    def close(self) -> None:
        self._client.close()


def _lines(resp: Any, httpx: Any) -> Iterator[str]:
    """The lines of a streamed answer; a transport fault mid-stream is a ``ServerError``."""
    try:
        yield from resp.iter_lines()
    except (httpx.TimeoutException, httpx.TransportError) as exc:
        raise ServerError(f"the stream broke: {type(exc).__name__}: {exc}") from None
