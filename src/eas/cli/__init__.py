"""Command-line front: ``eas <command> ...``; each command is a thin call into the API.

Every command family lives in its own module with ``add_parsers(sub)``, listed in
``COMMANDS`` in ``--help`` order; a handler parses and prints, returns the exit status and
raises ``UsageError``/``InputError`` for usage problems.

Exit status: 0 when every record was processed, 3 when some records were skipped (see
the errors file), 2 for usage errors (bad path, unknown field or format).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import sys
import textwrap
from collections.abc import Iterator, Sequence

from eas import __version__
from eas.cli import calibrate, early_exit, experiment, scale, score, select, study, view
from eas.cli.errors import EXIT_USAGE, UsageError

# The command families, in --help order.
COMMANDS = (score, view, calibrate, study, early_exit, select, experiment, scale)
# Commands whose process exists to score: on a CPU they may fix glibc's mmap threshold
# (eas.backends.hf.heap). Not train, evaluate or experiment: they train or sample.
SCORING_COMMANDS = frozenset({"score", "calibrate", "study", "demo", "select", "early-exit"})


class HelpFormatter(argparse.HelpFormatter):
    """Paragraphs (split at blank lines) wrapped as usual; a paragraph with indented lines
    (the examples of an epilog) kept exactly as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = []
        for para in re.split(r"\n\s*\n", text.strip("\n")):
            if any(line.startswith(" ") for line in para.splitlines()):
                paragraphs.append("\n".join(indent + line for line in para.splitlines()))
            else:
                flat = " ".join(para.split())
                paragraphs.append(textwrap.fill(flat, width, initial_indent=indent, subsequent_indent=indent))
        return "\n\n".join(paragraphs)


class Parser(argparse.ArgumentParser):
    """``eas``'s parsers (the subcommands' too): the help formatter above by default."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def _add_verbosity(p: argparse.ArgumentParser, top: bool) -> None:
    """-q/-v; on a subcommand without a default of its own, so ``eas -q score`` keeps it."""
    default: dict = {} if top else {"default": argparse.SUPPRESS}
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors, no progress bar", **default)
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="debug messages too, third-party libraries' included (one line per server request)",
        **default,
    )


def _subcommands(p: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):  # a parser once, aliases aside
                yield child
                yield from _subcommands(child)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="eas",
        description="Entropy Area Score: how uncertain a reasoning model is on its way to an answer. "
        "The method and every definition: docs/method.md.",
        epilog="Run `eas COMMAND --help` for a command's options and examples. Exit status: 0 all done, "
        "3 some records skipped (see the errors file), 2 usage error.",
    )
    parser.add_argument("-V", "--version", action="version", version=f"eas {__version__}")
    _add_verbosity(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.add_parsers(sub)
    from eas.cli.examples import EXAMPLES

    for child in _subcommands(parser):
        _add_verbosity(child, top=False)
        if child.epilog is None:
            child.epilog = EXAMPLES.get(child.prog)
    return parser


# The progress bars of transformers (loading weights) and datasets (preparing a data set):
# each library's environment switch, read when it is first imported.
_HF_PROGRESS_ENV = ("HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS")


@contextlib.contextmanager
def _hf_progress_bars_off() -> Iterator[None]:
    """No progress bars from transformers and datasets while the block runs.

    A library not imported yet reads its environment switch at import (a command-line run,
    and no start-up cost); one already imported (``main`` called in a live process) is told
    through its API. Both are restored afterwards.
    """
    controls = []
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        controls.append(
            (hf_logging.is_progress_bar_enabled, hf_logging.disable_progress_bar, hf_logging.enable_progress_bar)
        )
    if "datasets" in sys.modules:
        import datasets

        controls.append(
            (datasets.is_progress_bar_enabled, datasets.disable_progress_bars, datasets.enable_progress_bars)
        )
    turned_off = []
    for is_enabled, disable, enable in controls:
        if is_enabled():
            disable()
            turned_off.append(enable)
    unset = [name for name in _HF_PROGRESS_ENV if name not in os.environ]
    os.environ.update(dict.fromkeys(unset, "1"))
    try:
        yield
    finally:
        for name in unset:
            os.environ.pop(name, None)
        for enable in turned_off:
            enable()


def _configure_logging(verbose: bool, quiet: bool) -> None:
    """eas's own messages at INFO (WARNING with -q); other libraries' (matplotlib's font cache,
    httpx's one line per request, ...) only from WARNING up, unless -v shows everything."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        force=True,
    )
    logging.getLogger("eas").setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # `eas` alone: the help, and the usage error's exit status
        parser.print_help()
        return EXIT_USAGE
    _configure_logging(args.verbose, args.quiet)
    from eas.records import InputError

    if args.command in SCORING_COMMANDS:
        from eas.backends.hf.heap import claim_for_scoring

        claim_for_scoring()
    try:
        # Weight-loading and data set bars of transformers/datasets would nest inside eas's own.
        with contextlib.nullcontext() if args.verbose else _hf_progress_bars_off():
            return args.func(args)
    except (InputError, UsageError) as exc:
        print(f"eas {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ImportError as exc:
        print(f"eas {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
