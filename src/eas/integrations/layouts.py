"""Common reasoning-trace layouts -> eas's rows (id, prompt, response, answer, the rest).

* ``messages``: a chat as a list of ``{"role", "content"}``: one user message, then the
  assistant's answer (TRL's conversational format, most chat SFT sets);
* ``generations``: ``problem`` plus a list ``generations`` (OpenR1-Math style): one row
  per generation, id ``ROW_ID/k``; the per-generation list columns named in
  ``PER_GENERATION`` (e.g. ``correctness_math_verify``) are cut to the generation's value;
* ``prompt-completion``: ``prompt`` and ``completion``, each a string or (conversational)
  a list of messages.

The other columns are kept unchanged (``generations`` itself is dropped: each row holds
its own generation as ``response``). A row that does not fit its layout becomes a
``RecordError`` with the reason; a layout that fits no column raises ``InputError``.

Deliberate simplification: a record is one user prompt and one response, so a chat with
a system message or several turns is refused (per row) rather than silently cut.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from eas.records import InputError, RecordError
from eas.storage.files import Rows
from eas.storage.inputs import FieldMap

LAYOUTS = ("fields", "messages", "generations", "prompt-completion")
# Columns of the generations layout that hold one value per generation.
PER_GENERATION = (
    "correctness_math_verify",
    "correctness_llama",
    "correctness",
    "finish_reasons",
    "is_reasoning_complete",
)
# What each layout needs (for the messages that name what was expected).
NEEDS = {
    "messages": ("messages",),
    "generations": ("problem", "generations"),
    "prompt-completion": ("prompt", "completion"),
}
EXPECTED = (
    "prompt + response (or name them with --prompt-field/--response-field), messages (a list of role/content), "
    "problem + generations, or prompt + completion"
)


def choose_layout(names: set[str] | None, layout: str = "auto", response_field: str = FieldMap.response) -> str:
    """``layout``, or for ``auto`` the layout the field names fit: ``fields`` when the
    response field is there, else the first preset whose columns are all present, else
    ``fields`` (whose check then names what is missing)."""
    if layout != "auto":
        return layout
    if names is None or response_field in names:
        return "fields"
    for preset, needs in NEEDS.items():
        if set(needs) <= names:
            return preset
    return "fields"


def check_layout(layout: str, names: set[str] | None, where: str) -> None:
    """``InputError`` naming the columns a preset needs when the input lacks them."""
    needs = NEEDS.get(layout, ())
    missing = [c for c in needs if names is not None and c not in names]
    if missing:
        found = ", ".join(sorted(names or ())) or "none"
        raise InputError(
            f"{where}: layout {layout!r} needs the column(s) {', '.join(needs)}; missing {', '.join(missing)} "
            f"(columns found: {found})"
        )


def _message_text(message: Any, role: str, where: str) -> str:
    if not isinstance(message, dict) or "role" not in message or "content" not in message:
        raise RecordError(f"{where}: each message must be a dict with 'role' and 'content'")
    if message["role"] != role:
        raise RecordError(f"{where}: expected a {role} message, found {message['role']!r}")
    content = message["content"]
    if not isinstance(content, str):
        raise RecordError(f"{where}: the {role} message's content is a {type(content).__name__}, expected a string")
    return content


def _chat_pair(messages: Any, where: str) -> tuple[str, str]:
    """(user text, assistant text) of a two-message chat."""
    if not isinstance(messages, list):
        raise RecordError(f"{where} is a {type(messages).__name__}, expected a list of role/content messages")
    roles = [m.get("role") if isinstance(m, dict) else type(m).__name__ for m in messages]
    if len(messages) != 2:
        raise RecordError(
            f"{where}: expected [user, assistant], found [{', '.join(map(str, roles))}] "
            "(a record is one user prompt and one response)"
        )
    return _message_text(messages[0], "user", where), _message_text(messages[1], "assistant", where)


def _single(value: Any, role: str, where: str) -> str:
    """A string, or a one-message list of ``role`` (conversational prompt/completion)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and len(value) == 1:
        return _message_text(value[0], role, where)
    raise RecordError(f"{where}: expected a string or one {role} message, found a {type(value).__name__}")


def _base_id(row: dict[str, Any], index: int) -> Any:
    rid = row.get("id")
    return index if rid is None else rid


def _messages_rows(index: int, row: dict[str, Any]) -> list[dict[str, Any]]:
    prompt, response = _chat_pair(row.get("messages"), "'messages'")
    return [{**row, "id": _base_id(row, index), "prompt": prompt, "response": response}]


def _prompt_completion_rows(index: int, row: dict[str, Any]) -> list[dict[str, Any]]:
    prompt = _single(row.get("prompt"), "user", "'prompt'")
    response = _single(row.get("completion"), "assistant", "'completion'")
    rest = {k: v for k, v in row.items() if k != "completion"}
    return [{**rest, "id": _base_id(row, index), "prompt": prompt, "response": response}]


def _generations_rows(index: int, row: dict[str, Any]) -> list[dict[str, Any]]:
    problem, generations = row.get("problem"), row.get("generations")
    if not isinstance(problem, str):
        raise RecordError(f"'problem' is a {type(problem).__name__}, expected a string")
    if not isinstance(generations, list) or not all(isinstance(g, str) for g in generations):
        raise RecordError("'generations' must be a list of strings")
    base = _base_id(row, index)
    per_gen = [c for c in PER_GENERATION if isinstance(row.get(c), list) and len(row[c]) == len(generations)]
    rest = {k: v for k, v in row.items() if k != "generations" and k not in per_gen}
    return [
        {**rest, **{c: row[c][k] for c in per_gen}, "id": f"{base}/{k}", "prompt": problem, "response": text}
        for k, text in enumerate(generations)
    ]


_ROWS: dict[str, Callable[[int, dict[str, Any]], list[dict[str, Any]]]] = {
    "messages": _messages_rows,
    "generations": _generations_rows,
    "prompt-completion": _prompt_completion_rows,
}


def apply_layout(layout: str, rows: Rows) -> Rows:
    """The rows of ``layout`` turned into eas rows (one input row may give several);
    ``fields`` passes them through. Indices count the output rows."""
    if layout == "fields":
        yield from rows
        return
    convert = _ROWS[layout]
    out = 0
    for index, row in rows:
        if isinstance(row, RecordError):
            yield out, row
            out += 1
            continue
        try:
            made = convert(index, row)
        except RecordError as exc:
            yield out, RecordError(exc.reason, _base_id(row, index))
            out += 1
            continue
        for r in made:
            yield out, r
            out += 1


def layout_fields(layout: str, names: set[str] | None) -> frozenset[str] | None:
    """The field names of the rows a layout makes from an input with ``names``."""
    if names is None:
        return None
    if layout == "fields":
        return frozenset(names)
    dropped = {"generations", "completion"} if layout != "messages" else set()
    return frozenset((names - dropped) | {"id", "prompt", "response"})


def iter_layout(layout: str, open_rows: Callable[[], Rows]) -> Callable[[], Iterator[Any]]:
    """A fresh-pass function over ``open_rows`` in ``layout`` (for ``RowSource.open_rows``)."""
    return lambda: apply_layout(layout, open_rows())
