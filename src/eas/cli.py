"""Command-line front: ``eas <command> ...``. Each command is a thin call into the API.

Commands of other topics live in their own ``cli_<topic>.py`` module, which exposes
``add_parsers(sub)`` and is listed in ``COMMAND_MODULES``; a command's handler returns the
exit status and raises ``UsageError``/``InputError`` for usage problems.

Exit status: 0 when every record was processed, 3 when some records were skipped (see
the errors file), 2 for usage errors (bad path, unknown field or format).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from eas import __version__

EXIT_OK, EXIT_USAGE, EXIT_SKIPPED = 0, 2, 3

log = logging.getLogger("eas")


def add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument(
        "--model",
        default="embedded",
        help="'embedded' (SmolLM2-135M-Instruct, shipped in a package; the default), "
        "a local folder or a transformers model id",
    )
    g.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    g.add_argument(
        "--dtype",
        default="auto",
        choices=["auto", "float32", "bfloat16", "float16"],
        help="weights and activations (default: float32 on CPU, bfloat16 on GPU); entropies are always float32",
    )
    g.add_argument(
        "--trust-remote-code", action="store_true", help="run the model repository's own code (off by default)"
    )


def add_field_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("input fields")
    g.add_argument(
        "--id-field", default=None, help="field with the record id (default 'id', else the 0-based row index)"
    )
    g.add_argument("--prompt-field", default="prompt", help="field with the question (default: prompt)")
    g.add_argument("--response-field", default="response", help="field with the reasoning trace (default: response)")
    g.add_argument("--answer-field", default="answer", help="field with the ground-truth answer (default: answer)")


def _add_score_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score",
        help="compute EAS and the baseline figures of reasoning traces",
        description="Score (prompt, response[, answer]) records: EAS, mean EAS, PPL, length, "
        "mean token entropy, max sequence log-prob, HES and the final-answer entropy. "
        "Bad records go to OUT's errors file (scored.jsonl -> scored.errors.jsonl) with a reason; "
        "exit status 0 = all scored, 3 = some skipped, 2 = usage error. "
        "Runs are resumable: rerun the same command after a crash and finished batches are kept.",
    )
    p.add_argument("input", help="records: .jsonl, .parquet or .csv")
    p.add_argument("--out", required=True, help="results: .jsonl or .parquet")
    add_model_args(p)
    add_field_args(p)
    g = p.add_argument_group("metric")
    g.add_argument("--trigger", default="\\boxed{", help="answer-forcing suffix of every probe (default: \\boxed{)")
    g.add_argument(
        "--answer-prefix-tokens",
        type=int,
        default=0,
        metavar="L-1",
        help="also append the first L-1 tokens of the ground-truth answer (needs the answer field; default 0)",
    )
    g.add_argument(
        "--end",
        choices=["answer", "response"],
        default="answer",
        help="answer: x_T is the last token of the last \\boxed{...} content (the paper); "
        "response: probe every position of the response (traces without a boxed answer; not the paper's metric)",
    )
    g.add_argument(
        "--no-chat-template", action="store_true", help="use the raw prompt text instead of the chat template"
    )
    g.add_argument("--trajectory", action="store_true", help="also write the per-position entropies H_1..H_{T-1}")
    g = p.add_argument_group("engine")
    g.add_argument(
        "--method", choices=["packed", "naive"], default="packed", help="naive = one forward pass per probe (reference)"
    )
    g.add_argument("--chunk-size", type=int, default=256, help="probes per forward pass (bounds memory; default 256)")
    g.add_argument(
        "--batch-tokens", type=int, default=2048, help="pack short records together up to this many tokens (0: off)"
    )
    g = p.add_argument_group("long runs")
    g.add_argument(
        "--overwrite",
        action="store_true",
        help="start again even if OUT (or its unfinished parts) was made with other settings",
    )
    g.add_argument("--dedupe", action="store_true", help="keep the first record of a duplicate id (default: refuse)")
    p.set_defaults(func=cmd_score)


# Modules that add subcommands with ``add_parsers(sub)``, in --help order.
COMMAND_MODULES: tuple[str, ...] = ("eas.cli_study", "eas.cli_select", "eas.cli_experiment")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eas",
        description="Entropy Area Score: how uncertain a reasoning model is on its way to an answer.",
    )
    parser.add_argument("--version", action="version", version=f"eas {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors, no progress bar")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_score_parser(sub)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parsers(sub)
    return parser


def cmd_score(args: argparse.Namespace) -> int:
    from eas.config import EASConfig, EngineConfig
    from eas.io import FieldMap, errors_path
    from eas.runs import score_file
    from eas.scoring import load_backend

    try:
        config = EASConfig(
            trigger=args.trigger,
            answer_prefix_tokens=args.answer_prefix_tokens,
            end=args.end,
            use_chat_template=not args.no_chat_template,
            trajectory=args.trajectory,
        )
        engine = EngineConfig(method=args.method, chunk_size=args.chunk_size, batch_tokens=args.batch_tokens)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    fields = FieldMap(
        id=args.id_field or "id", prompt=args.prompt_field, response=args.response_field, answer=args.answer_field
    )

    def make_backend():
        try:
            return load_backend(
                args.model,
                device=args.device,
                dtype=args.dtype,
                trust_remote_code=args.trust_remote_code,
                engine=engine,
            )
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot load model {args.model!r}: {str(exc).strip().splitlines()[0]}") from None

    summary = score_file(
        args.input,
        args.out,
        make_backend,
        config,
        fields=fields,
        id_given=args.id_field is not None,
        settings={"model": args.model, "dtype": args.dtype, "backend": "hf"},
        batch_tokens=args.batch_tokens,
        overwrite=args.overwrite,
        dedupe=args.dedupe,
        progress=not args.quiet,
    )
    state = "already complete: " if summary.already_complete else ""
    log.info("%sscored %d records -> %s", state, summary.rows, args.out)
    if summary.errors:
        log.warning("skipped %d records; reasons in %s", summary.errors, errors_path(args.out))
        return EXIT_SKIPPED
    return EXIT_OK


class UsageError(Exception):
    """Bad arguments found after parsing; exit status 2."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        force=True,
    )
    from eas.records import InputError

    try:
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
