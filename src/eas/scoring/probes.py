"""Probe layout: the token ids of a record and where x_T is (``EncodedRecord``).

How a record becomes tokens (this decides the numbers):

* prompt ids: ``eas.backends.prompts.prompt_ids``, the same for every command: the
  tokenizer's chat template over one user message holding the prompt, with the
  generation prompt; with ``use_chat_template=False`` (or a tokenizer without a
  template) the raw prompt text; either way tokenized without special tokens and the
  tokenizer's BOS (if it adds one) put in front once;
* response ids: the response tokenized alone, without special tokens;
* the model sees prompt ids + response ids;
* suffix ids: the trigger tokenized alone, then the first L-1 tokens of the answer
  tokenized alone, both without special tokens.

x_T is the response token whose character span holds the last character of the content
of the last ``\\boxed{...}`` (offset mapping of the tokenizer). Probe t = 1 .. T-1 sees
the prompt and x_1 .. x_t, then the suffix. With ``probe_stride`` k > 1 only the
positions ``eas.maths.stratified.probe_plan`` draws for the record are probed.
"""

from __future__ import annotations

from typing import Any

from eas.answers import last_boxed_span
from eas.backends.base import EncodedRecord
from eas.backends.prompts import prompt_ids
from eas.config import EASConfig
from eas.maths.stratified import probe_plan, record_seed
from eas.records import Record, RecordError

# No tokenizer we know packs more characters than this into one token on average.
MAX_CHARS_PER_TOKEN = 32


def token_at_char(offsets: list[tuple[int, int]], char_index: int) -> int:
    """0-based index of the token whose span ``[start, end)`` holds ``char_index``.

    Byte-level tokenizers can leave a character between spans (or split one across
    tokens); then the first token ending after the character is taken.
    """
    for i, (start, end) in enumerate(offsets):
        if start <= char_index < end:
            return i
    for i, (_, end) in enumerate(offsets):
        if end > char_index:
            return i
    raise RecordError(
        f"the tokenizer's offset mapping does not reach character {char_index} of the response "
        "(unusual characters next to the final answer); x_T cannot be located"
    )


def answer_end_char(response: str, end: str) -> int:
    """Character index of the last character of the final answer (or of the response)."""
    if end == "response":
        stripped = response.rstrip()
        return len(stripped) - 1
    try:
        span = last_boxed_span(response)
    except ValueError as exc:
        raise RecordError(f"{exc} (use --end response for traces without a boxed answer)") from None
    if span is None:
        raise RecordError("no \\boxed{...} final answer in the response (use --end response to probe every position)")
    if span.end == span.start:
        raise RecordError("the last \\boxed{} is empty")
    return span.end - 1


def prompt_token_ids(tokenizer: Any, prompt: str, use_chat_template: bool) -> list[int]:
    """Prompt ids as the model sees them before the response (``eas.backends.prompts``)."""
    return prompt_ids(tokenizer, prompt, use_chat_template)


def encode_record(tokenizer: Any, record: Record, config: EASConfig, max_context: int | None = None) -> EncodedRecord:
    """Tokenize a record and locate x_T; raises ``RecordError`` with a one-line reason."""
    if not record.response.strip():
        raise RecordError("empty response")
    chars = len(record.prompt) + len(record.response)
    if max_context is not None and chars > max_context * MAX_CHARS_PER_TOKEN:
        # Reject before tokenizing: megabytes of text would take seconds to tokenize.
        raise RecordError(
            f"prompt + response hold {chars} characters, far more than the model's context of {max_context} tokens"
        )
    end_char = answer_end_char(record.response, config.end)

    enc = tokenizer(record.response, add_special_tokens=False, return_offsets_mapping=True)
    response_ids = list(enc["input_ids"])
    offsets = [(int(a), int(b)) for a, b in enc["offset_mapping"]]
    answer_end = token_at_char(offsets, end_char) + 1

    prompt_ids = prompt_token_ids(tokenizer, record.prompt, config.use_chat_template)
    if not prompt_ids:
        bos = getattr(tokenizer, "bos_token_id", None)
        if bos is None:
            raise RecordError("empty prompt and the tokenizer has no BOS token to start from")
        prompt_ids = [bos]

    suffix_ids = list(tokenizer(config.trigger, add_special_tokens=False)["input_ids"])
    if config.answer_prefix_tokens:
        if record.answer is None or not str(record.answer).strip():
            raise RecordError(f"--answer-prefix-tokens {config.answer_prefix_tokens} needs a non-empty 'answer'")
        answer_ids = tokenizer(str(record.answer), add_special_tokens=False)["input_ids"]
        suffix_ids += list(answer_ids[: config.answer_prefix_tokens])

    needed = len(prompt_ids) + max(len(response_ids), answer_end - 1 + len(suffix_ids))
    if max_context is not None and needed > max_context:
        raise RecordError(f"prompt + response need {needed} positions, more than the model's context of {max_context}")
    track_ids = tuple(single_token_id(tokenizer, s) for s in config.track_tokens)
    positions = None
    if config.probe_stride > 1:
        plan = probe_plan(answer_end - 1, config.probe_stride, record_seed(record.id, config.probe_seed))
        positions = plan.positions
    return EncodedRecord(record, prompt_ids, response_ids, suffix_ids, answer_end, track_ids, positions, tuple(offsets))


def single_token_id(tokenizer: Any, text: str) -> int:
    """The id of ``text`` tokenized alone; ``RecordError`` unless it is exactly one token."""
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    if len(ids) != 1:
        raise RecordError(f"tracked token {text!r} is {len(ids)} tokens with this tokenizer, not one")
    return ids[0]
