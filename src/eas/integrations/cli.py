"""The input-source and dataset-output options of ``eas score`` and ``eas select``.

``add_source_args(parser)`` adds ``--from``, ``--layout`` and ``--correct-field``;
``open_source(args, what)`` then replaces ``args.input`` by what the readers take (the
file path unchanged, or a ``RowSource``: an evaluator's file, a data set, a file in a
preset layout) and, for ``--out DIR/``, ``args.out`` by the results file the command
writes inside ``DIR/.eas/``; ``SourceIO.finish()`` turns that file into the data set and,
for an evaluator's file, returns the AUROC summary. Commands stay unaware of where their
rows come from.
"""

from __future__ import annotations

import argparse
import inspect
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eas.integrations.evaluators import EVALUATORS, evaluator_source
from eas.integrations.hf_datasets import dataset_source, is_dataset_output, is_dataset_spec, write_dataset
from eas.integrations.layouts import EXPECTED, LAYOUTS, check_layout, choose_layout, iter_layout, layout_fields
from eas.records import InputError
from eas.storage.files import INPUT_FORMATS, RowSource, field_names, file_format, iter_rows
from eas.storage.inputs import FieldMap

log = logging.getLogger(__name__)

WORK_DIR = ".eas"
# The field options and their defaults (FieldMap's): a preset layout or an evaluator names the fields itself.
_FIELD_OPTIONS = {
    "id_field": None,
    "prompt_field": FieldMap.prompt,
    "response_field": FieldMap.response,
    "answer_field": FieldMap.answer,
}


_LAYOUT_DEFAULT = inspect.signature(choose_layout).parameters["layout"].default


def add_source_args(p: argparse.ArgumentParser, correctness: bool = True) -> None:
    """``--from``, ``--layout`` and (``correctness``: commands that score) ``--correct-field``."""
    g = p.add_argument_group("input source (docs/integrations/)")
    g.add_argument(
        "--from",
        dest="source",
        default=None,
        metavar="EVALUATOR",
        help="INPUT is an evaluator's per-sample file: lm-eval (the samples_*.jsonl of lm_eval --log_samples; "
        "lm-eval:FILTER picks a filter) or lighteval (a details_*.parquet). Its prompts are scored as the model "
        "saw them (no chat template added), its fields are kept and an AUROC summary for its wrong answers follows",
    )
    layout = g.add_argument(
        "--layout",
        choices=("auto", *LAYOUTS),
        default=_LAYOUT_DEFAULT,
        help="how rows hold a trace: fields (prompt/response, or the --*-field names), messages (a role/content "
        "list: user then assistant), generations (problem + a list of generations: one record each), "
        "prompt-completion; auto picks by the column names (default)",
    )
    layout.eas_source = (choose_layout, "layout")  # the default is choose_layout's (eas.cli.options' convention)
    if not correctness:
        return
    g.add_argument(
        "--correct-field",
        default=None,
        help="with --from: the 0/1 column that says an answer is right (default: the evaluator's first 0/1 metric)",
    )


@dataclass
class SourceIO:
    """What ``open_source`` changed, so that ``finish`` can complete the output."""

    dataset_dir: Path | None = None
    results: Path | None = None
    evaluator: bool = False
    correct_field: str | None = None

    def finish(self, summary: bool = True) -> str | None:
        """Write the data set (``--out DIR/``); with ``summary``, the AUROC summary text
        for an evaluator's file (``eas score``; ``eas select`` has no scores to summarise)."""
        text = None
        if summary and self.evaluator and self.results is not None and self.results.is_file():
            text = _summary(self.results, self.correct_field)
        if self.dataset_dir is not None and self.results is not None and self.results.is_file():
            n = write_dataset(self.results, self.dataset_dir)
            log.info("wrote the data set %s (%d rows; datasets.load_from_disk reads it)", self.dataset_dir, n)
        return text


def _summary(results: Path, requested: str | None) -> str | None:
    from eas.integrations.summary import correctness_column, summary_text
    from eas.storage.files import read_table

    rows = read_table(results)
    column = correctness_column(rows, requested)
    if column is None:
        log.warning("the evaluator's file has no 0/1 metric to tell wrong answers: name one with --correct-field")
        return None
    return summary_text(rows, column)


def _field_options_given(args: argparse.Namespace) -> list[str]:
    return [
        "--" + name.replace("_", "-")
        for name, default in _FIELD_OPTIONS.items()
        if getattr(args, name, default) != default
    ]


def _laid_out(args: argparse.Namespace, name: str, open_rows, names: set[str] | None) -> RowSource | None:
    """The rows in the layout ``--layout`` names (or auto finds), None for plain fields."""
    layout = args.layout
    if layout == "auto" and _field_options_given(args):
        layout = "fields"
    layout = choose_layout(names, layout, args.response_field)
    if layout == "fields":
        return None
    given = _field_options_given(args)
    if given:
        raise InputError(f"{' '.join(given)}: not with --layout {layout} (it names the fields itself)")
    check_layout(layout, names, name)
    return RowSource(name, iter_layout(layout, open_rows), layout_fields(layout, names))


def _tokenizer(args: argparse.Namespace) -> Any:
    """The scoring model's tokenizer (for lighteval prompts stored as token ids)."""
    from eas.backends.load import default_tokenizer, load_tokenizer

    name = getattr(args, "tokenizer", None) or default_tokenizer(args.model)
    return load_tokenizer(name, trust_remote_code=getattr(args, "trust_remote_code", False))


def _source(args: argparse.Namespace) -> object:
    spec = str(args.input)
    if args.source is not None:
        given = _field_options_given(args)
        if given or args.layout not in ("auto", "fields"):
            raise InputError(f"--from {args.source} names the fields itself: drop {' '.join(given) or '--layout'}")
        return evaluator_source(args.source, spec, lambda: _tokenizer(args))
    if is_dataset_spec(spec):
        source, names = dataset_source(spec)
        laid = _laid_out(args, spec, source.open_rows, names)
        if laid is None and names is not None and args.response_field not in names and args.layout == "auto":
            raise InputError(f"{spec}: columns {', '.join(sorted(names))} fit no layout: expected {EXPECTED}")
        return laid or source
    path = Path(spec)
    if path.is_file() and path.suffix.lower() in INPUT_FORMATS:
        fmt = file_format(path, INPUT_FORMATS, "input")
        laid = _laid_out(args, spec, lambda: iter_rows(path, fmt), field_names(path))
        if laid is not None:
            return laid
    return args.input


def open_source(args: argparse.Namespace, what: str) -> SourceIO:
    """Point ``args.input`` and ``args.out`` at what the command reads and writes.

    Args:
        args: the parsed options of ``eas score`` or ``eas select`` (``add_source_args``).
        what: the results file's name inside ``DIR/.eas/`` for ``--out DIR/``.

    Raises:
        InputError: an unknown source, a file without the evaluator's layout, a data set
            that cannot be opened, options that contradict the source.
    """
    correct_field = getattr(args, "correct_field", None)
    io = SourceIO(evaluator=args.source is not None, correct_field=correct_field)
    original = str(args.input)
    if correct_field is not None and args.source is None:
        raise InputError("--correct-field needs --from (an evaluator's file)")
    args.input = _source(args)
    if io.evaluator:
        # The evaluator's prompt is the exact text the model was given: score it as is,
        # and carry its fields (the correctness among them) into the output.
        for name, value in (("use_chat_template", False), ("no_chat_template", True), ("keep_input", True)):
            if hasattr(args, name):
                setattr(args, name, value)
    if is_dataset_output(str(args.out)):
        out_dir = Path(args.out)
        if Path(original).resolve() == out_dir.resolve():
            raise InputError(f"{out_dir}: --out must not be the input data set")
        others = [p for p in out_dir.iterdir() if p.name != WORK_DIR] if out_dir.is_dir() else []
        if others and not (out_dir / "state.json").is_file():
            raise InputError(f"{out_dir}: exists and is not a data set written by eas; choose another --out")
        (out_dir / WORK_DIR).mkdir(parents=True, exist_ok=True)
        io.dataset_dir = out_dir
        args.out = str(out_dir / WORK_DIR / f"{what}.parquet")
        if hasattr(args, "keep_input"):
            args.keep_input = True  # the data set is the input rows with the EAS columns added
    if io.evaluator or io.dataset_dir is not None:
        io.results = Path(args.out)
    return io


__all__ = ["EVALUATORS", "SourceIO", "add_source_args", "open_source"]
