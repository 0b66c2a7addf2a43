"""What a server accepts, detected once per run: prompt form, K cap, answer shape, route.

``detect_profile`` sends the first probe of a run a few ways and keeps the best that
works, in this order:

1. ``/completions`` with a token-id prompt (vLLM, SGLang, llama.cpp ``llama-server``),
   sent with the retry policy of every request, so a transient fault (a 503 "Loading
   model", a timeout) is waited out rather than taken for an answer; only a definite
   refusal of the token ids (a status other than the transient ones, whose message names
   the prompt: llama-cpp-python 0.3's validation error, TGI's or Ollama's "prompt ...
   expected a string") selects the decoded text, and the refusal is logged and recorded
   in the profile (``text_reason``);
2. a refusal that names the server's largest ``logprobs`` (vLLM's ``max_logprobs``,
   20 by default: "... greater than max allowed: 20") lowers K to that cap, with a
   warning, and the request is sent again; a refusal about ``logprobs`` without a cap
   fails the run with the server's message;
3. an answer keyed by token text (the legacy shape of vLLM and SGLang's adapter) is
   asked again with vLLM's ``return_tokens_as_token_ids: true``, then through SGLang's
   native ``/generate`` (``input_ids``, ``top_logprobs_num``), and the first route that
   keys by token id is kept; otherwise text keys, with a warning.

The result, a ``ServerProfile``, goes into the run's manifest (``describe()``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from eas.backends.openai.client import ServerClient, ServerError, api_root
from eas.backends.openai.shapes import (
    BadAnswer,
    Shape,
    TopLogprobs,
    logprobs_cap,
    parse_completion,
    parse_generate,
)

log = logging.getLogger(__name__)

PromptMode = Literal["ids", "text"]
Route = Literal["completions", "generate"]


@dataclass(frozen=True)
class ServerProfile:
    """How this run talks to the server.

    Attributes:
        prompt_mode: prompts sent as token ids, or as decoded text.
        route: ``completions`` (``{base_url}/completions``) or ``generate`` (SGLang's
            ``{root}/generate``).
        top_k: log-probs asked for per probe (``--top-k``, lowered to the server's cap).
        top_k_cap: the cap the server named when it refused ``--top-k``, else None.
        top_k_returned: entries in the first answer (a server may return fewer, or K+1).
        shape: the answer shape (``legacy``, ``content``, ``sglang``).
        keyed_by: ``id`` or ``text`` (text keys merge ids with the same text).
        token_id_keys: vLLM's ``return_tokens_as_token_ids`` is sent.
        text_reason: with text prompts, the server's refusal of token ids that chose them.
    """

    prompt_mode: PromptMode
    route: Route
    top_k: int
    top_k_cap: int | None
    top_k_returned: int
    shape: Shape
    keyed_by: Literal["id", "text"]
    token_id_keys: bool = False
    text_reason: str | None = None

    def describe(self) -> dict[str, Any]:
        return asdict(self)


def probe_request(
    profile_or_route: ServerProfile | Route, model: str, prompt: list[int] | str, k: int, token_id_keys: bool = False
) -> tuple[str, dict[str, Any]]:
    """(path, payload) of one probe: one token at temperature 0 with its top-``k`` log-probs."""
    if isinstance(profile_or_route, ServerProfile):
        route, token_id_keys = profile_or_route.route, profile_or_route.token_id_keys
    else:
        route = profile_or_route
    if route == "generate":
        payload = {
            "input_ids": prompt,
            "sampling_params": {"max_new_tokens": 1, "temperature": 0},
            "return_logprob": True,
            "top_logprobs_num": k,
            "logprob_start_len": -1,
        }
        return "generate", payload
    payload = {"model": model, "prompt": prompt, "max_tokens": 1, "temperature": 0, "logprobs": k}
    if token_id_keys:
        payload["return_tokens_as_token_ids"] = True
    return "/completions", payload


def parser(route: Route) -> Callable[[Any], TopLogprobs]:
    return parse_generate if route == "generate" else parse_completion


def fetch_top(
    client: ServerClient,
    route: Route,
    path: str,
    payload: dict[str, Any],
    http_retries: int | None = None,
    answer_retries: int | None = None,
) -> tuple[TopLogprobs, Any]:
    """POST a probe and parse it; an answer without usable log-probs (null, NaN, missing)
    is asked again (``max_retries`` times, with backoff), then ``ServerError``."""
    url = f"{api_root(client.server.base_url)}/generate" if path == "generate" else path
    retries = client.server.max_retries if answer_retries is None else answer_retries
    for attempt in range(retries + 1):
        body = client.post(url, payload, retries=http_retries)
        try:
            return parser(route)(body), body
        except BadAnswer as exc:
            client.count("bad_answers")
            if attempt == retries:
                raise ServerError(f"no usable log-probs after {retries + 1} answers; last: {exc}", 200) from None
            log.debug("unusable answer (%s); retry %d", exc, attempt + 1)
            client.backoff(attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def _first_answer(client: ServerClient, path: str, payload: dict[str, Any], ids: bool) -> TopLogprobs:
    """The first probe, answered. With token ids every attempt is read before any retry:
    an answer about the request (a refusal of token ids, a logprobs cap, a bad key) ends
    the attempts at once, a fault (no answer, a transient status) is retried with the
    policy of every request (``--max-retries``, backoff)."""
    if not ids:
        return fetch_top(client, "completions", path, payload)[0]
    retries = client.server.max_retries
    for attempt in range(retries + 1):
        try:
            return fetch_top(client, "completions", path, payload, http_retries=0)[0]
        except ServerError as exc:
            if not exc.retryable or refuses_token_ids(exc) or attempt == retries:
                raise
            client.count("retries")
            log.info("the first probe failed (%s); retry %d before choosing a prompt form", exc, attempt + 1)
            client.backoff(attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def _try(client: ServerClient, route: Route, path: str, payload: dict[str, Any]) -> TopLogprobs | None:
    """One attempt at another route; None if the server refuses it or answers otherwise."""
    try:
        return fetch_top(client, route, path, payload, http_retries=0, answer_retries=0)[0]
    except ServerError as exc:
        if exc.status is None:
            raise
        return None


# Statuses that say "not now" rather than "not this request" (a server loading its model,
# overloaded, or a gateway timing out): never read as a refusal of token-id prompts.
TRANSIENT_STATUS = frozenset({408, 409, 425, 429, 502, 503, 504})


def refuses_token_ids(exc: ServerError) -> bool:
    """Whether a failed token-id probe is a definite refusal of token ids: a status that is
    not transient, with a message that names the prompt.

    Example:
        >>> refuses_token_ids(ServerError("x", 500, "1 validation error: prompt: Input should be a valid string"))
        True
        >>> refuses_token_ids(ServerError("x", 503, "Loading model")), refuses_token_ids(ServerError("x", 401, "bad key"))
        (False, False)
    """
    if exc.status is None or exc.status == 200 or exc.status in TRANSIENT_STATUS:
        return False
    return "prompt" in (exc.server_message or str(exc)).lower()


def detect_profile(client: ServerClient, model: str, ids: list[int], text: str, top_k: int) -> ServerProfile:
    """Probe the server with the first probe of a run (``ids``, or ``text`` decoded); see the module doc."""
    k, cap, mode, reason = top_k, None, "ids", None
    for _ in range(4):
        path, payload = probe_request("completions", model, ids if mode == "ids" else text, k)
        try:
            top = _first_answer(client, path, payload, ids=mode == "ids")
            break
        except ServerError as exc:
            if exc.status in (None, 200):
                raise  # unreachable, timed out, or no usable log-probs: not a question of prompt form
            message = exc.server_message or str(exc)
            new_cap = logprobs_cap(message)
            if new_cap is not None and new_cap < k:
                log.warning("the server allows at most %d log-probs per position: --top-k lowered to it", new_cap)
                k = cap = new_cap
                continue
            if "logprob" in message.lower():
                raise ServerError(f"the server refuses logprobs={k}: {message}; pass a smaller --top-k") from None
            if mode == "text" or not refuses_token_ids(exc):
                raise  # a fault or a refusal that is not about the prompt's form: text would not help
            mode, reason = "text", f"HTTP {exc.status}: {message[:200]}"
            log.warning(
                "the server refuses token-id prompts (%s); sending decoded text, which the server "
                "may tokenize differently from the model's tokenizer",
                reason,
            )
    else:
        raise ServerError("could not agree with the server on a probe request (see the warnings above)")
    route: Route = "completions"
    token_id_keys = False
    if top.keyed_by == "text" and mode == "ids":
        path, payload = probe_request("completions", model, ids, k, token_id_keys=True)
        again = _try(client, "completions", path, payload)
        if again is not None and again.keyed_by == "id":
            top, token_id_keys = again, True
        else:
            path, payload = probe_request("generate", model, ids, k)
            native = _try(client, "generate", path, payload)
            if native is not None and native.keyed_by == "id":
                top, route = native, "generate"
    if top.keyed_by == "text":
        log.warning(
            "the server keys its log-probs by token text: tokens with the same text merge, so the top-K "
            "entropy may be lower than it is (the bound stays valid)"
        )
    profile = ServerProfile(mode, route, k, cap, len(top.values), top.shape, top.keyed_by, token_id_keys, reason)
    log.info("server profile: %s", profile.describe())
    return profile
