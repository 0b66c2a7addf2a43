"""OpenAI-compatible completions backend (vLLM, SGLang, llama.cpp): top-K entropies.

Each probe t is one completion of ``prompt + x_1..x_t + suffix`` with ``max_tokens=1``,
``temperature=0`` and ``logprobs=K``. The server returns the K most likely next tokens
with their log-probabilities; ``H_t`` is reported as the entropy of those K tokens as
returned (not renormalised) together with the truncation bound of docs/method.md, so the
exact entropy lies in ``[H_t, H_t + bound_t]``.

Prompts are built with the model's own HF tokenizer and sent as token ids where the
server accepts them (detected once); otherwise as the decoded text, with a warning,
since the server may re-tokenize text differently (llama-cpp-python accepts only text).

The response tokens' own log-probabilities (PPL, max sequence log-prob) come from one
``echo=True`` request per record, used only if a one-time check shows that the server's
echoed log-probs agree with its completion log-probs (llama-cpp-python 0.3 fails it: its
echoed values are shifted by one position). Otherwise those columns are None. The
response tokens' entropies (mean token entropy, HES) are not measured by this backend.

Deliberate simplifications: a thread pool of blocking httpx calls (``concurrency``
threads); probes are submitted in order of (record, t) so that a server's prefix cache
sees each trace grow token by token.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import numpy as np

from eas.backends.base import EncodedRecord, Measurement
from eas.config import ServerConfig
from eas.maths.entropy import topk_entropy_bits, topk_mass, topk_truncation_bound

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
MAX_BACKOFF_S = 30.0
PromptMode = Literal["ids", "text"]


class ServerError(RuntimeError):
    """A request failed for good (after retries, or with a non-retryable status).

    ``status`` is the last HTTP status, None when the last attempt got no answer.
    """

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def _require_httpx() -> Any:
    try:
        import httpx
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the openai backend needs httpx: pip install 'eas[server]'") from exc
    return httpx


class OpenAIBackend:
    """Measures records through an OpenAI-compatible ``/completions`` endpoint."""

    def __init__(self, model: str, tokenizer: Any, server: ServerConfig | None = None):
        httpx = _require_httpx()
        self.model = model
        self.tokenizer = tokenizer
        self.server = server or ServerConfig()
        self.max_context: int | None = None
        self.vocab_size = len(tokenizer)
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.server.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        limits = httpx.Limits(
            max_connections=self.server.concurrency, max_keepalive_connections=self.server.concurrency
        )
        self._client = httpx.Client(
            base_url=self.server.base_url.rstrip("/"), headers=headers, timeout=self.server.timeout_s, limits=limits
        )
        self._pool = ThreadPoolExecutor(max_workers=self.server.concurrency, thread_name_prefix="eas-openai")
        self._lock = threading.Lock()
        self.prompt_mode: PromptMode | None = None
        self.echo_ok: bool | None = None
        # retokenized_probes: text prompts the server counted as a different number of tokens.
        self.stats = {"requests": 0, "retries": 0, "retokenized_probes": 0}

    @classmethod
    def connect(cls, model: str, tokenizer: Any, server: ServerConfig | None = None) -> OpenAIBackend:
        """A backend for ``model`` on the server, with the model's HF ``tokenizer``;
        raises ``ConnectionError`` if the server does not answer."""
        backend = cls(model, tokenizer, server)
        backend.check_reachable()
        return backend

    def check_reachable(self) -> None:
        """GET /models once (with the retry policy); ConnectionError if nobody answers."""
        httpx = _require_httpx()
        for attempt in range(self.server.max_retries + 1):
            try:
                self._client.get("/models")
                return
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                if attempt == self.server.max_retries:
                    raise ConnectionError(f"no server answers at {self.server.base_url} ({exc})") from None
                time.sleep(min(MAX_BACKOFF_S, self.server.backoff_s * 2**attempt))

    def describe(self) -> dict[str, Any]:
        return {
            "backend": "openai",
            "model": self.model,
            "base_url": self.server.base_url,
            "top_k": self.server.top_k,
            "vocab_size": self.vocab_size,
            "prompt_mode": self.prompt_mode,
            "echo_logprobs": self.echo_ok,
        }

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    # -- HTTP ---------------------------------------------------------------------------

    def _post(self, payload: dict[str, Any], retries: int | None = None) -> dict[str, Any]:
        """POST /completions with retries and exponential backoff; the parsed JSON."""
        httpx = _require_httpx()
        retries = self.server.max_retries if retries is None else retries
        delay = self.server.backoff_s
        for attempt in range(retries + 1):
            why: str
            status: int | None = None
            retry_after: float | None = None
            try:
                with self._lock:
                    self.stats["requests"] += 1
                resp = self._client.post("/completions", json=payload)
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
                    why = f"HTTP {status}: {resp.text[:200]!r}"
                    if status not in RETRY_STATUS:
                        raise ServerError(why, status)
                try:
                    retry_after = float(resp.headers.get("retry-after", ""))
                except ValueError:
                    retry_after = None
            if attempt == retries:
                raise ServerError(f"gave up after {retries + 1} attempts; last: {why}", status)
            with self._lock:
                self.stats["retries"] += 1
            wait = min(MAX_BACKOFF_S, retry_after if retry_after is not None else delay * (1 + 0.1 * random.random()))
            log.debug("request failed (%s); retry %d in %.2f s", why, attempt + 1, wait)
            time.sleep(wait)
            delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    def _prompt(self, ids: list[int]) -> list[int] | str:
        if self.prompt_mode == "ids":
            return ids
        return self.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def _complete(self, ids: list[int], *, logprobs: int, echo: bool = False) -> dict[str, Any]:
        payload = {
            "model": self.model,
            "prompt": self._prompt(ids),
            "max_tokens": 1,
            "temperature": 0,
            "logprobs": logprobs,
        }
        if echo:
            payload["echo"] = True
        return self._post(payload)

    # -- one-time detection -------------------------------------------------------------

    def _detect(self, ids: list[int]) -> None:
        """Whether the server takes token-id prompts, and whether its echo is usable."""
        if self.prompt_mode is None:
            try:
                self._post({"model": self.model, "prompt": ids, "max_tokens": 1, "temperature": 0}, retries=0)
                self.prompt_mode = "ids"
            except ServerError as exc:
                if exc.status is None:
                    raise  # the server is unreachable or timed out: not a question of prompt form
                self.prompt_mode = "text"
                log.warning(
                    "the server does not accept token-id prompts (%s); sending decoded text, which the server "
                    "may tokenize differently from the model's tokenizer",
                    str(exc)[:120],
                )
        if self.echo_ok is None:
            self.echo_ok = self._echo_consistent(ids)
            if not self.echo_ok:
                log.warning(
                    "the server's echoed prompt log-probs are missing or disagree with its completion log-probs; "
                    "ppl and max_seq_logprob are left empty"
                )

    def _echo_consistent(self, ids: list[int]) -> bool:
        """Echoed log P(x_j | x_<j) must equal the completion log-prob of x_j after x_<j."""
        try:
            echoed = self._echo_logprobs(ids)
        except ServerError as exc:
            log.info("echo request failed: %s", exc)
            return False
        if echoed is None:
            return False
        for j in range(len(ids) - 1, max(0, len(ids) - 8), -1):
            top = _top_logprobs(self._complete(ids[:j], logprobs=self.server.top_k))
            key = self.tokenizer.decode([ids[j]], skip_special_tokens=False, clean_up_tokenization_spaces=False)
            if key in top:
                return bool(abs(top[key] - echoed[j]) < 0.05)
        return False

    def _echo_logprobs(self, ids: list[int]) -> np.ndarray | None:
        """``(len(ids),)`` echoed log P(x_j | x_<j) (entry 0 NaN), or None if unusable."""
        body = self._complete(ids, logprobs=1, echo=True)
        try:
            values = body["choices"][0]["logprobs"]["token_logprobs"]
            n_prompt = int(body["usage"]["prompt_tokens"])
        except (KeyError, IndexError, TypeError, ValueError):
            return None
        if n_prompt != len(ids) or len(values) < n_prompt - 1:
            return None  # the server tokenized the prompt differently: no alignment
        values = values[:n_prompt] if len(values) >= n_prompt else [None, *values[: n_prompt - 1]]
        return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)

    # -- probes -------------------------------------------------------------------------

    def probe(self, enc: EncodedRecord, t: int) -> np.ndarray:
        """Top-K natural-log probabilities after probe context t, ``(K',)``, K' <= K."""
        ids = enc.probe_context(t)
        body = self._complete(ids, logprobs=self.server.top_k)
        values = list(_top_logprobs(body).values())
        n_server = (body.get("usage") or {}).get("prompt_tokens")
        if isinstance(n_server, int) and n_server != len(ids):
            with self._lock:
                self.stats["retokenized_probes"] += 1
        if not values:
            raise ServerError("the server returned no top log-probabilities")
        return np.sort(np.asarray(values, dtype=np.float64))[::-1]

    def measure_probes(self, probes: Sequence[tuple[EncodedRecord, int]]) -> list[np.ndarray]:
        """Top-K log-probs of each (record, t), submitted to the pool in the given order."""
        if probes:
            self._detect(probes[0][0].prompt_ids)
        futures = [self._pool.submit(self.probe, enc, t) for enc, t in probes]
        try:
            return [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            raise

    def sample(
        self, prompts: Sequence[str], config: Any, *, progress: bool = False, first_batch: int = 0
    ) -> list[list[str]]:
        """``config.n`` sampled completions of each prompt text (``eas sample``).

        One request per sample, each with its own seed (``config.seed``, the question's
        index and the sample's), so a rerun, or a resumed run, asks for the same samples;
        servers that honour ``seed`` return the same texts.
        """
        first_question = first_batch * max(1, config.batch_size // config.n)

        def one(i: int, k: int) -> str:
            payload = {
                "model": self.model,
                "prompt": prompts[i],
                "max_tokens": config.max_new_tokens,
                "temperature": config.temperature,
                "top_p": config.top_p,
                "seed": config.seed * 1_000_003 + (first_question + i) * config.n + k,
            }
            body = self._post(payload)
            try:
                return str(body["choices"][0]["text"]).strip()
            except (KeyError, IndexError, TypeError):
                raise ServerError("the server's answer has no choices[0].text") from None

        futures = [[self._pool.submit(one, i, k) for k in range(config.n)] for i in range(len(prompts))]
        return [[f.result() for f in row] for row in futures]

    def measure(self, batch: Sequence[EncodedRecord]) -> list[Measurement]:
        batch = list(batch)
        if batch:
            self._detect(batch[0].prompt_ids)
        echo = [self._pool.submit(self._response_logprobs, e) for e in batch] if self.echo_ok else None
        probes = [(e, t) for e in batch for t in e.probe_positions]  # in order of t: prefix cache
        drifted = self.stats["retokenized_probes"]
        tops = iter(self.measure_probes(probes))
        drifted = self.stats["retokenized_probes"] - drifted
        if drifted:
            log.info(
                "%d of %d probe prompts were tokenized by the server into a different number of tokens (text mode)",
                drifted,
                len(probes),
            )
        out = []
        for k, e in enumerate(batch):
            rows = [next(tops) for _ in e.probe_positions]
            h = np.array([topk_entropy_bits(r) for r in rows], dtype=np.float64)
            mass = np.array([topk_mass(r) for r in rows], dtype=np.float64)
            bound = np.array([topk_truncation_bound(r, self.vocab_size) for r in rows], dtype=np.float64)
            token_lp = echo[k].result() if echo is not None else None
            out.append(Measurement(h, token_lp, None, probe_bounds=bound, probe_topk_mass=mass))
        return out

    def _response_logprobs(self, enc: EncodedRecord) -> np.ndarray | None:
        values = self._echo_logprobs(enc.prompt_ids + enc.response_ids)
        if values is None:
            log.warning("record %r: echoed log-probs do not align with the prompt; ppl left empty", enc.record.id)
            return None
        return values[len(enc.prompt_ids) :]


def _top_logprobs(body: dict[str, Any]) -> dict[str, float]:
    """The first generated token's top log-probs, ``{token_text: logprob}``."""
    try:
        top = body["choices"][0]["logprobs"]["top_logprobs"][0]
    except (KeyError, IndexError, TypeError):
        raise ServerError("the server's answer has no choices[0].logprobs.top_logprobs") from None
    if not isinstance(top, dict):
        raise ServerError("top_logprobs[0] is not an object")
    return {str(k): float(v) for k, v in top.items()}
