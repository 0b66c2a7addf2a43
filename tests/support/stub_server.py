"""A scripted OpenAI-compatible server on loopback (stdlib only), for tests.

Its "model" gives every next token the same distribution: ``top`` (token id -> prob,
the rest of the mass spread over other tokens). It answers in the shape of one engine
(``shape``), as recorded or as read in that engine's source (tests/backends/recorded/README.md
cites the files):

- ``legacy``: llama-cpp-python 0.3: ``top_logprobs[0]`` dict keyed by token text; with
  ``echo``, each prompt token j gets ``log top[x_j]`` (or ``log TAIL_P``), entry 0 null;
  ``shift_echo`` shifts those values by one position (llama-cpp-python 0.3's behaviour);
- ``vllm``: the legacy shape; ``return_tokens_as_token_ids`` keys it ``"token_id:<id>"``
  (vllm/entrypoints/openai/completion/serving.py ``_create_completion_logprobs``);
  ``logprobs`` above ``max_logprobs`` is refused with vLLM's 400 body
  (vllm/sampling_params.py ``_validate_logprobs``, entrypoints/openai/engine/protocol.py ErrorResponse);
- ``llama_server``: llama.cpp ``llama-server`` b11434 (recorded): ``logprobs.content[0].top_logprobs``
  as ``{id, token, bytes, logprob}``, ``echo`` ignored, errors ``{"error": {code, message, type}}``;
- ``sglang``: the OpenAI adapter's legacy shape with text keys (``text_offset`` -1) and the
  native ``/generate`` with ``meta_info.output_top_logprobs`` triples ``[logprob, id, text]``
  (python/sglang/srt/managers/io_struct.py, tokenizer_manager.py); flat error bodies.

``fail`` lists statuses to answer before answering normally (e.g. [500, 429]), with the
error message ``fail_message``; ``bad``
lists values (None, NaN) that replace the first top log-prob of the next answers (not echoes).
"""

from __future__ import annotations

import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TAIL_P = 1e-3
SHAPES = ("legacy", "vllm", "llama_server", "sglang")


class Stub:
    def __init__(
        self,
        tokenizer: Any,
        top: dict[int, float],
        *,
        accept_ids: bool = True,
        shift_echo: bool = False,
        shape: str = "legacy",
        max_logprobs: int | None = None,
    ):
        assert shape in SHAPES, shape
        self.tokenizer = tokenizer
        self.top = top
        self.accept_ids = accept_ids
        self.shift_echo = shift_echo
        self.shape = shape
        self.max_logprobs = max_logprobs
        self.fail: list[int] = []
        self.fail_message = "scripted failure"
        self.bad: list[Any] = []
        self.requests: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, answer: Any) -> None:
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._send(200, {"object": "list", "data": [{"id": "stub-model", "object": "model"}]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with stub.lock:
                    stub.requests.append(body)
                    stub.paths.append(self.path)
                    stub.headers.append(dict(self.headers))
                    status = stub.fail.pop(0) if stub.fail else 200
                    probe = status == 200 and not body.get("echo")
                    bad = stub.bad.pop(0) if stub.bad and probe else "none"
                self._send(*stub.route(self.path, body, status, bad))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # -- errors ------------------------------------------------------------------------

    def error(self, status: int, message: str, param: str | None = None) -> tuple[int, dict[str, Any]]:
        if self.shape == "sglang":
            return status, {
                "object": "error",
                "message": message,
                "type": "BadRequestError",
                "param": param,
                "code": status,
            }
        if self.shape == "llama_server":
            return status, {"error": {"code": status, "message": message, "type": "invalid_request_error"}}
        return status, {"error": {"message": message, "type": "BadRequestError", "param": param, "code": status}}

    def route(self, path: str, body: dict[str, Any], status: int, bad: Any) -> tuple[int, dict[str, Any]]:
        if status != 200:
            return self.error(status, self.fail_message)
        if path.rstrip("/").endswith("/generate"):
            if self.shape != "sglang":
                return self.error(404, "Not Found")
            return 200, self.generate(body, bad)
        prompt = body.get("prompt")
        if isinstance(prompt, list) and not self.accept_ids:
            return self.error(500, "prompt must be a string")
        k = body.get("logprobs")
        if self.max_logprobs is not None and isinstance(k, int) and k > self.max_logprobs:
            message = f"Requested sample logprobs of {k}, which is greater than max allowed: {self.max_logprobs}"
            return self.error(400, f"{message} (parameter=logprobs, value={k})", "logprobs")
        return 200, self.completion(body, bad)

    # -- answers -----------------------------------------------------------------------

    def _ids(self, prompt: list[int] | str) -> list[int]:
        if isinstance(prompt, list):
            return prompt
        return list(self.tokenizer(prompt, add_special_tokens=False)["input_ids"])

    def _entries(self, bad: Any) -> list[tuple[int, str, Any]]:
        """(id, text, logprob) of the top tokens, most likely first; ``bad`` replaces the first value."""
        items = sorted(self.top.items(), key=lambda kv: -kv[1])
        out = [(i, self.tokenizer.decode([i]), math.log(p)) for i, p in items]
        if bad != "none":
            out[0] = (out[0][0], out[0][1], bad)
        return out

    def _legacy_top(self, body: dict[str, Any], bad: Any) -> dict[str, Any]:
        as_ids = self.shape == "vllm" and body.get("return_tokens_as_token_ids")
        return {(f"token_id:{i}" if as_ids else text): lp for i, text, lp in self._entries(bad)}

    def completion(self, body: dict[str, Any], bad: Any) -> dict[str, Any]:
        ids = self._ids(body["prompt"])
        first = self._entries(bad)[0]
        if self.shape == "llama_server":
            top = [{"id": i, "token": t, "bytes": list(t.encode()), "logprob": lp} for i, t, lp in self._entries(bad)]
            logprobs: dict[str, Any] = {"content": [{**top[0], "top_logprobs": top}]}
        else:
            offset = -1 if self.shape == "sglang" else 0
            logprobs = {"text_offset": [offset], "tokens": [first[1]], "token_logprobs": [first[2]]}
            logprobs["top_logprobs"] = [self._legacy_top(body, bad)]
            if body.get("echo"):
                values = [math.log(self.top.get(i, TAIL_P)) for i in ids]
                if self.shift_echo:
                    values = [*values[1:], 0.0]
                logprobs = {"tokens": [self.tokenizer.decode([i]) for i in ids], "token_logprobs": [None, *values[1:]]}
                logprobs["top_logprobs"] = [None] + [self._legacy_top(body, "none")] * (len(ids) - 1)
        if body.get("logprobs") is None:
            logprobs = None
        return {
            "choices": [{"text": first[1], "index": 0, "logprobs": logprobs, "finish_reason": "length"}],
            "usage": {"prompt_tokens": len(ids), "completion_tokens": 1, "total_tokens": len(ids) + 1},
        }

    def generate(self, body: dict[str, Any], bad: Any) -> dict[str, Any]:
        ids = body["input_ids"]
        k = int(body.get("top_logprobs_num") or 0)
        triples = [[lp, i, t] for i, t, lp in self._entries(bad)][:k]
        return {
            "text": triples[0][2] if triples else "",
            "output_ids": [triples[0][1]] if triples else [],
            "meta_info": {
                "prompt_tokens": len(ids),
                "completion_tokens": 1,
                "output_token_logprobs": triples[:1],
                "output_top_logprobs": [triples],
            },
        }

    def __enter__(self) -> Stub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
