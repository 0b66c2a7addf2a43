"""Questions to sample answers for: loading, few-shot examples, the prompt text.

* A question has an id, the question text, a ground-truth answer and, for multiple
  choice, its options (letters A, B, C, ... in order).
* Prompt = the tokenizer's chat template over the few-shot examples (user/assistant
  turns) and then the question, rendered to text with the generation prompt. The same
  text is what the study later scores; sampling and scoring both turn it into ids with
  ``eas.backends.prompts.text_prompt_ids`` (one BOS, never two), so the scored context
  is the sampled one. The decoding loop itself is ``eas.backends.hf.generate``.

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

from eas.backends.prompts import has_chat_template, render_chat
from eas.records import InputError

log = logging.getLogger(__name__)

LETTERS = "ABCDEFGHIJ"


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


def describe_fewshot(fewshot: Sequence[FewShot], source: str | Path | None = None) -> str:
    """How the prompts are built, in one line (for help texts and run outputs).

    Example:
        >>> describe_fewshot([])
        'the question alone (no solved example)'
    """
    if not fewshot:
        return "the question alone (no solved example)"
    where = "built-in" if source is None else str(source)
    return (
        f"{len(fewshot)} solved examples ({where}; those of the question's kind) before each question, "
        "as eas sample prompts"
    )


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
    if has_chat_template(tokenizer):
        messages = []
        for s in shots:
            messages += [{"role": "user", "content": s.question.text()}, {"role": "assistant", "content": s.solution}]
        messages.append({"role": "user", "content": question.text()})
        return render_chat(tokenizer, messages)
    blocks = [f"Question: {s.question.text()}\nAnswer: {s.solution}\n\n" for s in shots]
    return "".join(blocks) + f"Question: {question.text()}\nAnswer:"
