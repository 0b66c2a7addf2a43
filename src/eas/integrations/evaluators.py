"""Evaluator outputs as records: lm-evaluation-harness samples and lighteval details.

**lm-evaluation-harness** (``lm_eval --log_samples``) writes one JSONL file per task,
``samples_TASK_DATE.jsonl``, one line per (document, filter). Each line becomes a row:

* ``prompt``: the context the model was given (``arguments``: ``gen_args_0.arg_0`` in
  0.4.3+, ``[[context, gen_kwargs]]`` before), already rendered with the chat template
  when lm_eval ran with ``--apply_chat_template``;
* ``response``: the generated text (``resps[0][k]``; with ``repeats`` > 1 one row per
  repeat, id ``DOC_ID/k``, else the id is ``doc_id``);
* ``answer``: ``target`` when it is a non-empty string;
* kept: ``doc_id``, ``filter``, ``filtered_response``, ``doc_hash``, ``prompt_hash``,
  ``metrics`` (the metric names) and each metric's value as a column (``exact_match``).

A file holds one line per document for each filter of the task; the same response under
another filter is the same trace, so one filter is read: the one named (``lm-eval:NAME``)
or else the first in the file. Log-likelihood tasks (multiple choice) have no generated
text and are refused.

**lighteval** writes its details as Parquet, one file per task
(``details/MODEL/DATE/details_TASK|FEWSHOT_DATE.parquet``), one row per document: ``doc``
(the query, the gold answers), ``model_response`` (the prompt as ``input`` text or, in
0.13, only as ``input_tokens``; the texts generated as ``text``) and ``metric`` (a dict of
the per-sample metrics). Each row becomes ``prompt`` = the model's input (token ids are
decoded with the scoring model's tokenizer, and must encode back to the same ids, which
catches scoring with another model's tokenizer), ``response`` = its first text,
``answer`` = the gold answer, ``metrics`` and each metric as a column, id = the doc's
``id`` (else the row index).

The prompt of both is the exact text the model was given, so the CLI scores it as is
(no second chat template). Rows are streamed; a file whose first row does not have the
evaluator's layout raises ``InputError`` naming what was expected.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from eas.records import InputError, RecordError
from eas.storage.files import Rows, RowSource, iter_rows

log = logging.getLogger(__name__)

EVALUATORS = ("lm-eval", "lighteval")
LM_EVAL_KEYS = ("doc_id", "arguments", "resps")
LM_EVAL_KEEP = ("doc_id", "filter", "doc_hash", "prompt_hash")
LIGHTEVAL_KEYS = ("doc", "model_response", "metric")


def _lm_eval_context(arguments: Any) -> str:
    """The context string of a generate_until request, in either of lm-eval's layouts."""
    first: Any = None
    if isinstance(arguments, dict) and arguments:
        first = next(iter(arguments.values()))
        first = first.get("arg_0") if isinstance(first, dict) else None
    elif isinstance(arguments, list) and arguments:
        first = arguments[0][0] if isinstance(arguments[0], list) and arguments[0] else arguments[0]
    if not isinstance(first, str):
        raise RecordError("'arguments' holds no context string (expected gen_args_0.arg_0)")
    return first


def _metric_value(value: Any) -> Any:
    """A scalar as it is; a list or dict as JSON text (one column type whatever the row)."""
    return value if isinstance(value, (bool, int, float, str)) or value is None else json.dumps(value, default=str)


def lm_eval_rows(raw: dict[str, Any], index: int) -> list[dict[str, Any]]:
    """The eas rows of one lm-eval sample line (one per repeat)."""
    missing = [k for k in LM_EVAL_KEYS if k not in raw]
    if missing:
        raise RecordError(f"no {', '.join(missing)} (an lm_eval --log_samples line has {', '.join(LM_EVAL_KEYS)})")
    context = _lm_eval_context(raw["arguments"])
    resps = raw["resps"]
    texts = resps[0] if isinstance(resps, list) and resps and isinstance(resps[0], list) else None
    if not texts or not all(isinstance(t, str) for t in texts):
        raise RecordError(
            "'resps' holds no generated text (a log-likelihood task such as multiple choice?); "
            "EAS needs a generate_until task"
        )
    target = raw.get("target")
    names = [m for m in raw.get("metrics", []) if isinstance(m, str) and m in raw]
    filtered = raw.get("filtered_resps")
    filtered = filtered[0] if isinstance(filtered, list) and len(filtered) == 1 else filtered
    base = {k: raw[k] for k in LM_EVAL_KEEP if k in raw}
    base |= {"filtered_response": _metric_value(filtered), "metrics": names}
    base |= {m: _metric_value(raw[m]) for m in names}
    answer = target if isinstance(target, str) and target.strip() else None
    doc_id = raw["doc_id"]
    return [
        {
            "id": doc_id if len(texts) == 1 else f"{doc_id}/{k}",
            "prompt": context,
            "response": text,
            **({"answer": answer} if answer is not None else {}),
            **base,
        }
        for k, text in enumerate(texts)
    ]


def _first_row(path: Path, fmt: str) -> dict[str, Any] | None:
    for _, row in iter_rows(path, fmt):
        if isinstance(row, dict):
            return row
    return None


def _check_file(path: Path, suffixes: tuple[str, ...], what: str) -> None:
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.suffix.lower() not in suffixes:
        raise InputError(f"{path}: {what} files are {' or '.join(suffixes)}")


def lm_eval_source(path: str | Path, filter_name: str | None = None) -> RowSource:
    """The records of an ``lm_eval --log_samples`` file (see the module docstring)."""
    path = Path(path)
    _check_file(path, (".jsonl",), "lm_eval --log_samples")
    first = _first_row(path, "jsonl")
    if first is None or any(k not in first for k in LM_EVAL_KEYS):
        found = ", ".join(sorted(first or {})) or "no JSON object"
        raise InputError(
            f"{path}: not an lm_eval --log_samples file (expected the keys {', '.join(LM_EVAL_KEYS)}; found {found})"
        )
    chosen = filter_name or first.get("filter")

    def rows() -> Rows:
        out, skipped = 0, 0
        filters: set[str] = set()
        for index, raw in iter_rows(path, "jsonl"):
            if isinstance(raw, RecordError):
                yield out, raw
                out += 1
                continue
            filters.add(str(raw.get("filter")))
            if chosen is not None and raw.get("filter", chosen) != chosen:
                skipped += 1
                continue
            try:
                made = lm_eval_rows(raw, index)
            except RecordError as exc:
                made = [RecordError(exc.reason, raw.get("doc_id", index))]
            for row in made:
                yield out, row
                out += 1
        if filter_name is not None and filter_name not in filters:
            raise InputError(f"{path}: no rows with filter {filter_name!r} (filters: {', '.join(sorted(filters))})")
        if skipped:
            log.info("%s: read filter %r; %d rows of other filters repeat its responses", path, chosen, skipped)

    fields = {"id", "prompt", "response", *LM_EVAL_KEEP, "filtered_response", "metrics"}
    return RowSource(f"{path}", rows, frozenset(fields))


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    if hasattr(value, "tolist"):  # numpy arrays from pandas-written Parquet
        return list(value.tolist())
    return [value]


def _lighteval_prompt(response: dict[str, Any], tokenizer: Callable[[], Any] | None) -> str:
    """The prompt text of a lighteval response: ``input``, else ``input_tokens`` decoded."""
    text = response.get("input")
    if isinstance(text, str) and text:
        return text
    ids = [int(i) for i in _as_list(response.get("input_tokens"))]
    if not ids:
        raise RecordError("no prompt: 'model_response' has neither 'input' text nor 'input_tokens'")
    if tokenizer is None:
        raise RecordError("the prompt is stored as token ids only; a tokenizer is needed to read it")
    tok = tokenizer()
    text = tok.decode(ids, skip_special_tokens=False)
    if list(tok(text, add_special_tokens=False)["input_ids"]) != ids:
        raise RecordError(
            "the prompt's token ids do not decode and encode back with this tokenizer: "
            "score with the model lighteval evaluated (or one with its tokenizer)"
        )
    return text


def lighteval_row(raw: dict[str, Any], index: int, tokenizer: Callable[[], Any] | None = None) -> dict[str, Any]:
    """The eas row of one lighteval details row."""
    doc, response, metric = raw.get("doc") or {}, raw.get("model_response") or {}, raw.get("metric") or {}
    if not isinstance(response, dict) or not isinstance(doc, dict):
        raise RecordError("'doc' and 'model_response' must be structs")
    texts = _as_list(response.get("text"))
    if not texts or not isinstance(texts[0], str):
        raise RecordError("no generated text (model_response.text)")
    prompt = _lighteval_prompt(response, tokenizer)
    choices, gold = _as_list(doc.get("choices")), _as_list(doc.get("gold_index"))
    golds = [choices[g] for g in gold if isinstance(g, int) and 0 <= g < len(choices)]
    metrics = {str(k): _metric_value(v) for k, v in (metric.items() if isinstance(metric, dict) else [])}
    rid = doc.get("id") if doc.get("id") not in (None, "") else index
    row: dict[str, Any] = {"id": rid, "prompt": prompt, "response": texts[0]}
    if golds and isinstance(golds[0], str) and golds[0].strip():
        row["answer"] = golds[0]
    return row | {"metrics": list(metrics)} | metrics


def lighteval_source(path: str | Path, tokenizer: Callable[[], Any] | None = None) -> RowSource:
    """The records of a lighteval details Parquet file (see the module docstring).

    ``tokenizer``: makes the scoring model's tokenizer (called once, when a prompt is
    stored as token ids only).
    """
    path = Path(path)
    _check_file(path, (".parquet",), "lighteval details")
    try:
        import pyarrow.parquet as pq

        names = set(pq.read_schema(path).names)
    except Exception as exc:  # pyarrow's own error types for a bad file
        raise InputError(f"{path}: cannot read as Parquet ({exc})") from None
    missing = [k for k in LIGHTEVAL_KEYS if k not in names]
    if missing:
        raise InputError(
            f"{path}: not a lighteval details file (expected the columns {', '.join(LIGHTEVAL_KEYS)}; "
            f"found {', '.join(sorted(names))})"
        )

    made: list[Any] = []

    def once() -> Any:
        if not made:
            made.append(tokenizer())  # type: ignore[misc]
        return made[0]

    def rows() -> Iterator[tuple[int, dict[str, Any] | RecordError]]:
        for index, raw in iter_rows(path, "parquet"):
            if isinstance(raw, RecordError):
                yield index, raw
                continue
            try:
                yield index, lighteval_row(raw, index, None if tokenizer is None else once)
            except RecordError as exc:
                yield index, RecordError(exc.reason, index)

    return RowSource(f"{path}", rows, frozenset({"id", "prompt", "response", "metrics"}))


def evaluator_source(kind: str, path: str | Path, tokenizer: Callable[[], Any] | None = None) -> RowSource:
    """``--from lm-eval[:FILTER]`` or ``--from lighteval``: the evaluator's file as records.

    ``tokenizer`` makes the scoring model's tokenizer, for lighteval prompts kept as ids.
    """
    name, _, option = kind.partition(":")
    if name == "lm-eval":
        return lm_eval_source(path, option or None)
    if name == "lighteval" and not option:
        return lighteval_source(path, tokenizer)
    raise InputError(f"unknown --from {kind!r} (use lm-eval, lm-eval:FILTER or lighteval)")
