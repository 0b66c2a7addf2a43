"""A scripted OpenAI-compatible completions server on loopback (stdlib only), for tests.

Its "model" gives every next token the same distribution: ``top`` (token id -> prob,
the rest of the mass spread over other tokens). With ``echo``, each prompt token j gets
``log top[x_j]`` (or ``log TAIL_P``) and entry 0 is null, as the OpenAI API does;
``shift_echo`` shifts those values by one position (the llama-cpp-python 0.3 behaviour).
``fail`` lists statuses to answer before answering normally (e.g. [500, 429]).
"""

from __future__ import annotations

import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TAIL_P = 1e-3


class Stub:
    def __init__(self, tokenizer: Any, top: dict[int, float], *, accept_ids: bool = True, shift_echo: bool = False):
        self.tokenizer = tokenizer
        self.top = top
        self.accept_ids = accept_ids
        self.shift_echo = shift_echo
        self.fail: list[int] = []
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with stub.lock:
                    stub.requests.append(body)
                    stub.headers.append(dict(self.headers))
                    status = stub.fail.pop(0) if stub.fail else 200
                if status == 200 and isinstance(body["prompt"], list) and not stub.accept_ids:
                    status = 500
                answer = stub.answer(body) if status == 200 else {"error": "scripted failure"}
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _ids(self, prompt: list[int] | str) -> list[int]:
        if isinstance(prompt, list):
            return prompt
        return list(self.tokenizer(prompt, add_special_tokens=False)["input_ids"])

    def _top(self) -> dict[str, float]:
        return {self.tokenizer.decode([i]): math.log(p) for i, p in self.top.items()}

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        ids = self._ids(body["prompt"])
        logprobs: dict[str, Any] = {"tokens": ["x"], "token_logprobs": [0.0], "top_logprobs": [self._top()]}
        if body.get("echo"):
            values = [math.log(self.top.get(i, TAIL_P)) for i in ids]
            if self.shift_echo:
                values = [*values[1:], 0.0]
            logprobs = {"tokens": [self.tokenizer.decode([i]) for i in ids], "token_logprobs": [None, *values[1:]]}
            logprobs["top_logprobs"] = [None] + [self._top()] * (len(ids) - 1)
        return {
            "choices": [{"text": "x", "index": 0, "logprobs": logprobs, "finish_reason": "length"}],
            "usage": {"prompt_tokens": len(ids), "completion_tokens": 1, "total_tokens": len(ids) + 1},
        }

    def __enter__(self) -> Stub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
