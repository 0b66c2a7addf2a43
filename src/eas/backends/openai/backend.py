"""OpenAI-compatible completions backend (vLLM, SGLang, llama.cpp): top-K entropies.

Each probe t is one completion of ``prompt + x_1..x_t + suffix`` with one token at
``temperature=0`` and its top-K log-probs. The server returns the K most likely next
tokens with their log-probabilities; ``H_t`` is reported as the entropy of those K
tokens as returned (not renormalised) together with the truncation bound of
docs/method.md, so the exact entropy lies in ``[H_t, H_t + bound_t]``.

Prompts are built with the model's own HF tokenizer. What the server accepts (token-id
prompts or text, its cap on K, the answer shape, the route: ``/completions`` or SGLang's
``/generate``) is detected once per run (``eas.backends.openai.detect``) and recorded in
the run's manifest through ``describe()``. The answer shapes are parsed in
``eas.backends.openai.shapes``, keyed by token id wherever the server gives one. An
answer whose log-probs are null or NaN is asked again, then the record fails: such a
probe never gets a value or a bound.

The response tokens' own log-probabilities (PPL, max sequence log-prob) come from one
``echo=True`` request per record, used only if a one-time check shows that the server's
echoed log-probs agree with its completion log-probs (llama-cpp-python 0.3 fails it: its
echoed values are shifted by one position; llama-server ignores ``echo``). Otherwise
those columns are None. The response tokens' entropies (mean token entropy, HES) are
not measured by this backend.

The server controller of online EAS (``eas sample --backend openai --monitor``,
``eas.sampling.online.server``) uses ``stream_completion`` (a streamed generation,
``eas.backends.openai.stream``) and ``probe_ids`` (one probe request, with its bound).

Deliberate simplifications: a thread pool of blocking httpx calls (``concurrency``
threads); probes are submitted in order of (record, t) so that a server's prefix cache
sees each trace grow token by token.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from eas.backends.base import EncodedRecord, Measurement
from eas.backends.openai.client import ServerClient, ServerError
from eas.backends.openai.detect import ServerProfile, detect_profile, fetch_top, probe_request
from eas.backends.openai.shapes import Key, TopLogprobs, echo_logprobs
from eas.backends.openai.stream import CompletionStream
from eas.backends.watch import Probe
from eas.config import SamplingConfig, ServerConfig
from eas.maths.entropy import topk_entropy_bits, topk_mass, topk_truncation_bound

log = logging.getLogger(__name__)

__all__ = ["OpenAIBackend", "ServerError", "probe_positions", "sample_seed"]


def probe_positions(batch: Sequence[EncodedRecord]) -> list[tuple[EncodedRecord, int]]:
    """Every (record, t) a batch probes, in order of (record, t): the one place the list is built."""
    return [(e, t) for e in batch for t in e.probe_positions]


def sample_seed(config: SamplingConfig, question: int, k: int) -> int:
    """The server seed of sample ``k`` of question number ``question`` (0-based over the run):
    ``eas sample`` and the server controller ask for the same samples."""
    return config.seed * 1_000_003 + question * config.n + k


class OpenAIBackend:
    """Measures records through an OpenAI-compatible ``/completions`` endpoint."""

    def __init__(self, model: str, tokenizer: Any, server: ServerConfig | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.server = server or ServerConfig()
        self.max_context: int | None = None
        self.vocab_size = len(tokenizer)
        self.client = ServerClient(self.server)
        self.stats = self.client.stats
        self._pool = ThreadPoolExecutor(max_workers=self.server.concurrency, thread_name_prefix="eas-openai")
        self.profile: ServerProfile | None = None
        self.echo_ok: bool | None = None

    @property
    def prompt_mode(self) -> str | None:
        return self.profile.prompt_mode if self.profile else None

    @classmethod
    def connect(cls, model: str, tokenizer: Any, server: ServerConfig | None = None) -> OpenAIBackend:
        """A backend for ``model`` on the server, with the model's HF ``tokenizer``;
        raises ``ConnectionError`` if the server does not answer."""
        backend = cls(model, tokenizer, server)
        backend.client.check_reachable()
        return backend

    def describe(self) -> dict[str, Any]:
        return {
            "backend": "openai",
            "model": self.model,
            "base_url": self.server.base_url,
            "top_k": self.server.top_k,
            "vocab_size": self.vocab_size,
            "server": self.profile.describe() if self.profile else None,
            "echo_logprobs": self.echo_ok,
        }

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()

    def __enter__(self) -> OpenAIBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests -----------------------------------------------------------------------

    def _text(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def _prompt(self, ids: list[int]) -> list[int] | str:
        return ids if self.prompt_mode == "ids" else self._text(ids)

    def _top(self, ids: list[int]) -> tuple[TopLogprobs, Any]:
        """The top-K log-probs after ``ids`` (and the raw answer), by the detected route."""
        if self.profile is None:
            raise RuntimeError("the server profile is not detected yet")
        path, payload = probe_request(self.profile, self.model, self._prompt(ids), self.profile.top_k)
        return fetch_top(self.client, self.profile.route, path, payload)

    def _key(self, token_id: int) -> Key:
        """How the server's answers key ``token_id``."""
        if self.profile is not None and self.profile.keyed_by == "id":
            return token_id
        return self._text([token_id])

    # -- one-time detection -------------------------------------------------------------

    def _detect_profile(self, ids: list[int]) -> None:
        """What the server accepts (``self.profile``), found with a first probe after ``ids``."""
        if self.profile is None:
            self.profile = detect_profile(self.client, self.model, ids, self._text(ids), self.server.top_k)

    def _detect(self, ids: list[int]) -> None:
        """What the server accepts (``self.profile``), and whether its echo is usable."""
        self._detect_profile(ids)
        if self.echo_ok is None:
            self.echo_ok = self.profile.route == "completions" and self._echo_consistent(ids)
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
            top = self._top(ids[:j])[0].values
            key = self._key(ids[j])
            if key in top:
                return bool(abs(top[key] - echoed[j]) < 0.05)
        return False

    def _echo_logprobs(self, ids: list[int]) -> np.ndarray | None:
        """``(len(ids),)`` echoed log P(x_j | x_<j) (entry 0 NaN), or None if the server does
        not echo or counts the prompt otherwise; an echo with null or NaN log-probs is asked
        again, then ``ServerError``."""
        payload = {"model": self.model, "prompt": self._prompt(ids), "max_tokens": 1, "temperature": 0}
        retries = self.server.max_retries
        for attempt in range(retries + 1):
            parsed = echo_logprobs(self.client.post("/completions", {**payload, "logprobs": 1, "echo": True}))
            if parsed is None:
                return None
            values, n_prompt = parsed
            if n_prompt != len(ids) or len(values) < n_prompt - 1:
                return None  # the server tokenized the prompt differently, or did not echo: no alignment
            values = values[:n_prompt] if len(values) >= n_prompt else [None, *values[: n_prompt - 1]]
            if all(v is not None for v in values[1:]):
                return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
            self.client.count("bad_answers")
            if attempt < retries:
                self.client.backoff(attempt)
        raise ServerError(f"echoed log-probs null or NaN in {retries + 1} answers", 200)

    # -- probes -------------------------------------------------------------------------

    def probe(self, enc: EncodedRecord, t: int) -> np.ndarray:
        """Top-K natural-log probabilities after probe context t, ``(K',)``, K' <= K (+1)."""
        return self.top_logprobs(enc.probe_context(t))

    def top_logprobs(self, ids: list[int]) -> np.ndarray:
        """Top-K natural-log probabilities after ``ids``, most likely first, ``(K',)``: one request."""
        top, body = self._top(ids)
        n_server = (body.get("usage") or {}).get("prompt_tokens") if isinstance(body, dict) else None
        if isinstance(n_server, int) and n_server != len(ids):
            self.client.count("retokenized_probes")
        return np.sort(np.asarray(list(top.values.values()), dtype=np.float64))[::-1]

    # -- the server controller (``eas.backends.watch.StreamedBackend``) -------------------

    def probe_ids(self, ids: Sequence[int]) -> Probe:
        """The forced-answer probe after ``ids``: one request, the top-K entropy and its bound."""
        self._detect_profile(list(ids))
        lp = self.top_logprobs(list(ids))
        return Probe(
            float(topk_entropy_bits(lp)),
            float(np.exp(lp[0])),
            bound=float(topk_truncation_bound(lp, self.vocab_size)),
            topk_mass=float(topk_mass(lp)),
        )

    def stream_completion(
        self, prompt_ids: Sequence[int], max_tokens: int, config: SamplingConfig | None, seed: int | None
    ) -> CompletionStream:
        """A streamed generation after ``prompt_ids`` (token ids), sampled by ``config`` or greedy."""
        ids = list(prompt_ids)
        # Detected on the first token alone: a server that caches prompts (llama-server) then
        # evaluates this prompt whole, as for an unmonitored request, not from a cached prefix
        # (which rounds differently and can change the sample).
        self._detect_profile(ids[:1])
        profile = self.profile
        if profile is None or profile.prompt_mode != "ids" or profile.route != "completions":
            why = "takes no token-id prompts" if profile and profile.prompt_mode != "ids" else "answers on /generate"
            raise ValueError(
                f"the server controller needs token-id prompts on /completions (a probe must see exactly the "
                f"tokens generated), and this server {why}: use llama-server or vLLM"
            )
        payload: dict[str, Any] = {"model": self.model, "prompt": ids, "max_tokens": max_tokens, "stream": True}
        payload |= {"logprobs": 1, "temperature": 0}
        if config is not None:
            payload |= {"temperature": config.temperature, "top_p": config.top_p}
        if seed is not None:
            payload["seed"] = seed
        if profile.token_id_keys:
            payload["return_tokens_as_token_ids"] = True
        return CompletionStream(self.client, "/completions", payload)

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
                "seed": sample_seed(config, first_question + i, k),
            }
            body = self.client.post("/completions", payload)
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
        probes = probe_positions(batch)  # in order of t: prefix cache
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
