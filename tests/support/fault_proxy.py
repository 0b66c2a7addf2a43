"""A loopback HTTP proxy that injects server faults, for the openai backend's tests.

Each POST draws a fault from a seeded generator at the configured rates: HTTP 500 or
429, a hang past the client's timeout, a reset connection, a body cut short, or a 200
with malformed JSON; otherwise the request goes to the real server and its answer comes
back unchanged. GET requests (the backend's readiness check) always pass through.
Only 127.0.0.1 is used, and the proxy stops with its context manager.
"""

from __future__ import annotations

import random
import socket
import struct
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULTS = ("500", "429", "hang", "reset", "truncate", "badjson")


class FaultProxy:
    def __init__(self, upstream: str, rate: float, seed: int = 0, hang_s: float = 3.0):
        self.upstream = upstream.rstrip("/")
        self.rate = rate
        self.hang_s = hang_s
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.headers_seen: list[str] = []

    def draw(self) -> str:
        with self.lock:
            fault = self.rng.choice(FAULTS) if self.rng.random() < self.rate else "ok"
            self.counts[fault] += 1
            return fault


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        def _forward(self, body: bytes | None) -> tuple[int, bytes]:
            url = proxy.upstream + self.path.removeprefix("/v1")
            req = urllib.request.Request(url, data=body, method=self.command)
            req.add_header("Content-Type", "application/json")
            try:
                with urllib.request.urlopen(req, timeout=60) as resp:
                    return resp.status, resp.read()
            except urllib.error.HTTPError as exc:
                return exc.code, exc.read()

        def _send(self, status: int, body: bytes, length: int | None = None, extra: dict | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body) if length is None else length))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()

        def do_GET(self) -> None:
            self._send(*self._forward(None))

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with proxy.lock:
                proxy.headers_seen.append(self.headers.get("Authorization", ""))
            fault = proxy.draw()
            if fault == "500":
                self._send(500, b'{"error": "injected"}')
            elif fault == "429":
                self._send(429, b'{"error": "slow down"}', extra={"Retry-After": "0"})
            elif fault == "hang":
                time.sleep(proxy.hang_s)
                self.close_connection = True
            elif fault == "reset":
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
            elif fault == "badjson":
                self._send(200, b'{"choices": [{"logprobs": ')
            else:
                status, answer = self._forward(body)
                if fault == "truncate":
                    self._send(status, answer[: len(answer) // 2], length=len(answer))
                    self.close_connection = True
                else:
                    self._send(status, answer)

    return Handler


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):  # a client that gave up
            super().handle_error(request, client_address)


@contextmanager
def fault_proxy(upstream: str, rate: float, seed: int = 0, hang_s: float = 3.0):
    """Yields (base_url, proxy); the proxy listens on 127.0.0.1 at a free port."""
    proxy = FaultProxy(upstream, rate, seed, hang_s)
    server = _QuietServer(("127.0.0.1", 0), _handler(proxy))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", proxy
    finally:
        server.shutdown()
        server.server_close()
