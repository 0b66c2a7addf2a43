"""Sampling N answers per question: questions, few-shot prompts, batched generation.

* A question has an id, the question text, a ground-truth answer and, for multiple
  choice, its options (letters A, B, C, ... in order).
* Prompt = the tokenizer's chat template over the few-shot examples (user/assistant
  turns) and then the question, rendered to text with the generation prompt. The same
  text is what the study later scores (tokenized with the tokenizer's special tokens,
  which for chat templates equals the template's own token ids), so the scored context
  is the sampled one.
* Generation: left-padded batches holding all n samples of a few questions, decoded with
  the model's KV cache by a small loop of our own rather than ``generate``: each prompt
  is prefilled once and its cache copied n times, and a sample leaves the batch as soon
  as it ends (on 2 CPU cores ``generate`` spent most of its time on finished rows and
  on prefilling every copy). Temperature and top-p (nucleus) sampling as in
  transformers. Every batch has its own generator seeded from ``SamplingConfig.seed``
  and the batch index, so the same inputs and settings give the same samples on a rerun
  (on the same hardware and library versions).

Deliberate simplification: a few-shot example is shown only to questions of its own
kind (with or without options) when both kinds are available.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from eas.records import InputError

log = logging.getLogger(__name__)

LETTERS = "ABCDEFGHIJ"


@dataclass(frozen=True)
class SamplingConfig:
    """How answers are sampled.

    Attributes:
        n: samples per question.
        temperature: softmax temperature; 0 means greedy (all n samples identical).
        top_p: nucleus sampling mass.
        max_new_tokens: generation budget per sample.
        seed: seed of the random stream (each batch is seeded from it and its index).
        batch_size: sequences per batch: ``batch_size // n`` questions (at least one)
            with all their n samples.
    """

    n: int = 8
    temperature: float = 0.7
    top_p: float = 0.95
    max_new_tokens: int = 128
    seed: int = 0
    batch_size: int = 64

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError("n must be >= 1")
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")
        if self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be >= 1")
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")


@dataclass(frozen=True)
class Question:
    """One question of a study; ``choices`` is set for multiple choice (answer = a letter)."""

    id: Any
    question: str
    answer: str | None = None
    choices: tuple[str, ...] | None = None

    @property
    def letters(self) -> str:
        return LETTERS[: len(self.choices)] if self.choices else ""

    def text(self) -> str:
        """The question as the model reads it, options listed as ``A) ...`` lines."""
        if not self.choices:
            return self.question
        options = "\n".join(f"{letter}) {c}" for letter, c in zip(self.letters, self.choices, strict=True))
        return f"{self.question}\n{options}"


@dataclass(frozen=True)
class FewShot:
    """A solved example shown before the question."""

    question: Question
    solution: str


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: line {i} is not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise InputError(f"{path}: line {i} is not a JSON object")
        rows.append(row)
    return rows


def _question(row: dict[str, Any], where: str, question_field: str, index: int) -> Question:
    text = row.get(question_field)
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"{where}: no text in field {question_field!r} (fields: {', '.join(sorted(row))})")
    choices = row.get("choices")
    if choices is not None:
        if not isinstance(choices, list) or not 2 <= len(choices) <= len(LETTERS):
            raise InputError(f"{where}: 'choices' must be a list of 2 to {len(LETTERS)} options")
        choices = tuple(str(c) for c in choices)
    answer = row.get("answer")
    answer = None if answer is None else str(answer).strip()
    if choices and answer is not None:
        if answer.upper() not in LETTERS[: len(choices)]:
            raise InputError(f"{where}: the answer of a multiple-choice question must be a letter, not {answer!r}")
        answer = answer.upper()
    qid = row.get("id", index)
    return Question(qid, text, answer, choices)


def load_questions(path: str | Path, question_field: str = "question") -> list[Question]:
    """Questions of a JSONL file (``id``, ``question``, ``answer``, optional ``choices``).

    Raises:
        InputError: a missing file, a bad line, a row without question text, duplicate ids.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    rows = _read_jsonl(path)
    questions = [_question(r, f"{path}: question {i}", question_field, i) for i, r in enumerate(rows)]
    if not questions:
        raise InputError(f"{path}: no questions")
    ids = [q.id for q in questions]
    if len(set(map(str, ids))) != len(ids):
        raise InputError(f"{path}: question ids are not unique")
    return questions


def builtin_questions_path() -> Path:
    """The project's built-in question set (``eas/data/questions.jsonl``)."""
    return Path(str(resources.files("eas") / "data" / "questions.jsonl"))


def load_fewshot(path: str | Path | None = None) -> list[FewShot]:
    """Few-shot examples: rows with ``question``, ``solution`` and optional ``choices``.

    ``None`` loads the built-in examples (short solutions ending in ``\\boxed{...}``).
    """
    path = Path(path) if path is not None else Path(str(resources.files("eas") / "data" / "fewshot.jsonl"))
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    shots = []
    for i, row in enumerate(_read_jsonl(path)):
        solution = row.get("solution")
        if not isinstance(solution, str) or not solution.strip():
            raise InputError(f"{path}: example {i} has no 'solution' text")
        shots.append(FewShot(_question(row, f"{path}: example {i}", "question", i), solution))
    return shots


def shots_for(question: Question, fewshot: Sequence[FewShot]) -> list[FewShot]:
    """The examples of the question's kind (multiple choice or not), else all of them."""
    same = [s for s in fewshot if bool(s.question.choices) == bool(question.choices)]
    return same or list(fewshot)


def build_prompt(tokenizer: Any, question: Question, fewshot: Sequence[FewShot] = ()) -> str:
    """The prompt text the model samples from: few-shot turns then the question.

    With a chat template: user/assistant turns, rendered with the generation prompt.
    Without one: ``Question: ...\\nAnswer: ...`` blocks.
    """
    shots = shots_for(question, fewshot)
    if getattr(tokenizer, "chat_template", None):
        messages = []
        for s in shots:
            messages += [{"role": "user", "content": s.question.text()}, {"role": "assistant", "content": s.solution}]
        messages.append({"role": "user", "content": question.text()})
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    blocks = [f"Question: {s.question.text()}\nAnswer: {s.solution}\n\n" for s in shots]
    return "".join(blocks) + f"Question: {question.text()}\nAnswer:"


def generate_samples(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    config: SamplingConfig,
    progress: bool = False,
    first_batch: int = 0,
) -> list[list[str]]:
    """``config.n`` sampled continuations of every prompt, batched.

    Args:
        model: a transformers causal LM.
        tokenizer: its tokenizer.
        prompts: prompt texts (from ``build_prompt``), tokenized with special tokens.
        config: sampling settings.
        progress: show a progress bar (samples/s).
        first_batch: index of the first batch, which seeds it (a resumed run continues
            with the seeds of an uninterrupted one).

    Returns:
        ``samples[i][k]``: sample k of prompt i, decoded without special tokens.
    """

    per_batch = max(1, config.batch_size // config.n)  # questions per batch
    out: list[list[str]] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(prompts) * config.n, unit="sample", desc="sampling", dynamic_ncols=True)
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # generation continues from the right end of every row
    try:
        for b, start in enumerate(range(0, len(prompts), per_batch), start=first_batch):
            group = list(prompts[start : start + per_batch])
            new = _generate_group(model, tokenizer, group, config, seed=config.seed * 1_000_003 + b)
            texts = tokenizer.batch_decode(new, skip_special_tokens=True)
            out += [[t.strip() for t in texts[i * config.n : (i + 1) * config.n]] for i in range(len(group))]
            if bar is not None:
                bar.update(len(texts))
    finally:
        tokenizer.padding_side = side
        if bar is not None:
            bar.close()
    return out


def _returned_cache(output: Any) -> Any:
    """The KV cache a forward pass returned (``cache`` in transformers 5.x, else ``past_key_values``)."""
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values


def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
    """Token ids that end a sample: the tokenizer's EOS and the model's generation EOS ids."""
    ids = {tokenizer.eos_token_id}
    gen = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids |= set(gen) if isinstance(gen, (list, tuple)) else {gen}
    return sorted(i for i in ids if i is not None)


def _next_tokens(logits: Any, config: SamplingConfig, generator: Any) -> Any:
    """One token per row: greedy at temperature 0, else temperature + top-p (nucleus) sampling."""
    import torch

    if config.temperature == 0:
        return logits.argmax(dim=-1)
    probs = (logits.float() / config.temperature).softmax(dim=-1)  # (b, V)
    if config.top_p < 1.0:
        sorted_p, order = probs.sort(dim=-1, descending=True)
        # drop a token when the tokens ranked above it already hold top_p (the first always stays)
        drop = (sorted_p.cumsum(dim=-1) - sorted_p) >= config.top_p
        sorted_p = sorted_p.masked_fill(drop, 0.0)
        probs = torch.zeros_like(probs).scatter_(-1, order, sorted_p)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def _generate_group(
    model: Any, tokenizer: Any, prompts: list[str], config: SamplingConfig, seed: int
) -> list[list[int]]:
    """New token ids of n samples per prompt (row i * n + k = sample k of prompt i).

    Each prompt is prefilled once and its KV cache copied n times. Decoding then drops a
    row from the batch (and its cache) as soon as it ends, so short answers do not pay
    for long ones; rows never interact, so this changes no sample.
    """
    import inspect

    import torch

    device = next(model.parameters()).device
    enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=True)
    ids, mask = enc["input_ids"].to(device), enc["attention_mask"].to(device)  # (q, L), left-padded
    pos = (mask.long().cumsum(-1) - 1).clamp(min=0)  # pads get position 0 and are masked out
    # transformers 5.x names the cache argument `cache`, 4.x `past_key_values`.
    cache_kw = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    eos = torch.tensor(_eos_ids(model, tokenizer), device=device)
    generator = torch.Generator(device=device).manual_seed(seed)
    n_rows = len(prompts) * config.n
    tokens: list[list[int]] = [[] for _ in range(n_rows)]
    with torch.inference_mode():
        out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, logits_to_keep=1)
        cache = _returned_cache(out)
        cache.batch_repeat_interleave(config.n)  # (q * n, ...) in place
        logits = out.logits[:, -1].repeat_interleave(config.n, dim=0)  # (b, V)
        mask = mask.repeat_interleave(config.n, dim=0)
        next_pos = pos[:, -1:].repeat_interleave(config.n, dim=0) + 1  # (b, 1)
        rows = torch.arange(n_rows, device=device)  # which sample each batch row is
        for step in range(config.max_new_tokens):
            new = _next_tokens(logits, config, generator)  # (b,)
            for r, t in zip(rows.tolist(), new.tolist(), strict=True):
                tokens[r].append(t)
            if step == config.max_new_tokens - 1:
                break
            keep = ~torch.isin(new, eos)
            if not bool(keep.all()):
                if not bool(keep.any()):
                    break
                idx = keep.nonzero().squeeze(-1)
                cache.batch_select_indices(idx)
                rows, new, mask, next_pos = rows[idx], new[idx], mask[idx], next_pos[idx]
            mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=-1)
            out = model(
                input_ids=new[:, None], attention_mask=mask, position_ids=next_pos, use_cache=True, **{cache_kw: cache}
            )
            cache = _returned_cache(out)
            logits = out.logits[:, -1]
            next_pos = next_pos + 1
    return tokens
