"""Prompt token ids: the one function every command builds a prompt's ids with.

``eas score``, ``sample``, ``study``, ``train`` and ``evaluate`` all turn a prompt into
token ids here, so the same record gives the same ids everywhere:

1. the prompt text: with a chat template, the template rendered to text over the
   messages (one user message for a record) with the generation prompt; without one
   (or with ``use_chat_template=False``), the prompt text as given;
2. the text is tokenized **without** the tokenizer's special tokens (what
   ``apply_chat_template(tokenize=True)`` does);
3. the tokenizer's leading special tokens (its BOS, if it adds one) are put in front,
   unless the ids already start with them (a template that writes ``{{ bos_token }}``).

Step 3 avoids the double BOS of Llama-3, Gemma and Mistral tokenizers, whose chat
template writes the BOS and whose tokenizer adds one too (tokenizing the rendered text
with ``add_special_tokens=True`` gave two). Whether a tokenizer adds a BOS is found by
tokenizing, not read from ``add_bos_token``: Gemma's tokenizer adds one through its
post-processor while reporting ``add_bos_token=False``.

Deliberate simplification: special tokens a tokenizer appends (an EOS after the text)
are never added to a prompt; a prompt is continued, not closed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

_PROBE_TEXT = "a"


def leading_special_ids(tokenizer: Any) -> list[int]:
    """The ids the tokenizer puts before any text when asked for special tokens (its BOS).

    Found by tokenizing a probe text with and without special tokens; cached on the
    tokenizer object.

    Example: ``[128000]`` for Llama-3, ``[2]`` for Gemma, ``[]`` for SmolLM2 and Qwen.
    """
    cached = getattr(tokenizer, "_eas_leading_special_ids", None)
    if cached is not None:
        return list(cached)
    with_special = list(tokenizer(_PROBE_TEXT, add_special_tokens=True)["input_ids"])
    plain = list(tokenizer(_PROBE_TEXT, add_special_tokens=False)["input_ids"])
    lead: list[int] = []
    for start in range(len(with_special) - len(plain) + 1):
        if with_special[start : start + len(plain)] == plain:
            lead = with_special[:start]
            break
    with contextlib.suppress(AttributeError):  # a tokenizer that refuses attributes: recompute next time
        tokenizer._eas_leading_special_ids = tuple(lead)
    return lead


def text_prompt_ids(tokenizer: Any, text: str) -> list[int]:
    """Ids of a prompt text: tokenized without special tokens, the BOS put in front once."""
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    lead = leading_special_ids(tokenizer)
    if lead and ids[: len(lead)] != lead:
        ids = lead + ids
    return ids


def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def render_chat(tokenizer: Any, messages: Sequence[dict[str, str]]) -> str:
    """The chat template over ``messages``, rendered to text with the generation prompt."""
    return tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)


def render_prompt(tokenizer: Any, prompt: str, use_chat_template: bool = True) -> str:
    """A record's prompt as text: one user message in the chat template, else as given."""
    if use_chat_template and has_chat_template(tokenizer):
        return render_chat(tokenizer, [{"role": "user", "content": prompt}])
    return prompt


def prompt_ids(tokenizer: Any, prompt: str, use_chat_template: bool = True) -> list[int]:
    """A record's prompt ids (see the module docstring): what every command feeds the model."""
    return text_prompt_ids(tokenizer, render_prompt(tokenizer, prompt, use_chat_template))


def left_padded_batch(tokenizer: Any, prompts: Sequence[str | Sequence[int]]) -> tuple[Any, Any]:
    """``(input_ids, attention_mask)`` tensors of prompts, left-padded: a text as ``text_prompt_ids``,
    a sequence of token ids as it is (a forced continuation: prompt, reasoning so far, trigger)."""
    import torch

    rows = [text_prompt_ids(tokenizer, p) if isinstance(p, str) else [int(i) for i in p] for p in prompts]
    pad = tokenizer.pad_token_id
    if pad is None:
        pad = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    width = max(len(r) for r in rows)
    ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], dtype=torch.long)
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], dtype=torch.long)
    return ids, mask
