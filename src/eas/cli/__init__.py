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
import sys
from collections.abc import Iterator, Sequence

from eas import __version__
from eas.cli import calibrate, experiment, scale, score, select, study, view
from eas.cli.common import EXIT_USAGE, UsageError

# The command families, in --help order.
COMMANDS = (score, view, calibrate, study, select, experiment, scale)
# Commands whose process exists to score: on a CPU they may fix glibc's mmap threshold
# (eas.backends.hf.heap). Not train, evaluate or experiment: they train or sample.
SCORING_COMMANDS = frozenset({"score", "calibrate", "study", "demo", "select"})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eas",
        description="Entropy Area Score: how uncertain a reasoning model is on its way to an answer. "
        "The method and every definition: docs/method.md.",
    )
    parser.add_argument("--version", action="version", version=f"eas {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors, no progress bar")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="debug messages too, including one line per server request"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.add_parsers(sub)
    return parser


# The progress bars of transformers (loading weights) and datasets (preparing a data set):
# each library's environment switch, read when it is first imported.
_HF_PROGRESS_ENV = ("HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS")


@contextlib.contextmanager
def _hf_progress_bars_off() -> Iterator[None]:
    """No progress bars from transformers and datasets while the block runs (``-q``).

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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        force=True,
    )
    # httpx logs one INFO line per request (one per probe through a server): the progress bar
    # is the feedback; the lines come back with --verbose.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    from eas.records import InputError

    if args.command in SCORING_COMMANDS:
        from eas.backends.hf.heap import claim_for_scoring

        claim_for_scoring()
    try:
        with _hf_progress_bars_off() if args.quiet else contextlib.nullcontext():
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
