"""Command-line front: ``eas <command> ...``. Each command is a thin call into the API.

Commands of other topics live in their own ``cli_<topic>.py`` module, which exposes
``add_parsers(sub)`` and is listed in ``COMMAND_MODULES``; a command's handler returns the
exit status and raises ``UsageError``/``InputError`` for usage problems.

Exit status: 0 when every record was processed, 3 when some records were skipped (see
the errors file), 2 for usage errors (bad path, unknown field or format).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

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


def add_backend_args(p: argparse.ArgumentParser, ray: bool = True) -> None:
    """The --backend hf|openai options (and, with ``ray``, the Ray engine's)."""
    g = p.add_argument_group("backend (serving engines)")
    g.add_argument(
        "--backend",
        choices=["hf", "openai"],
        default="hf",
        help="hf: the model in this process, exact entropies (default); openai: an OpenAI-compatible server "
        "(vLLM, SGLang, llama.cpp) with top-K entropies and their bound (columns eas_bound, min_topk_mass)",
    )
    g.add_argument("--base-url", default="http://127.0.0.1:8000/v1", help="openai: the API root (default: %(default)s)")
    g.add_argument("--top-k", type=int, default=20, help="openai: log-probs per probe (default 20)")
    g.add_argument("--concurrency", type=int, default=8, help="openai: requests in flight (default 8)")
    g.add_argument("--timeout", type=float, default=120.0, help="openai: seconds per request (default 120)")
    g.add_argument("--max-retries", type=int, default=5, help="openai: retries on 429/5xx/timeouts (default 5)")
    g.add_argument(
        "--api-key-env", default="EAS_API_KEY", help="openai: env variable with the API key (default: EAS_API_KEY)"
    )
    g.add_argument(
        "--tokenizer",
        default=None,
        help="openai: the model's HF tokenizer, a local folder or id (default: 'embedded' for the embedded GGUF, "
        "else --model)",
    )
    if not ray:
        return
    g = p.add_argument_group("scale-out engine")
    g.add_argument("--engine", choices=["local", "ray"], default="local", help="ray: score on a Ray cluster")
    g.add_argument("--workers", type=int, default=2, help="ray: scoring actors, one model each (default 2)")
    g.add_argument("--ray-address", default=None, help="ray: cluster address, e.g. ray://head:10001 (default: local)")
    g.add_argument("--gpus-per-worker", type=float, default=0.0, help="ray: GPUs per actor (default 0)")


def backend_options(args: argparse.Namespace, engine: Any) -> dict[str, Any]:
    """Keyword arguments of ``eas.scoring.load_backend`` from the parsed options."""
    from eas.config import ServerConfig

    server = None
    if args.backend == "openai":
        try:
            server = ServerConfig(
                base_url=args.base_url,
                top_k=args.top_k,
                concurrency=args.concurrency,
                timeout_s=args.timeout,
                max_retries=args.max_retries,
                api_key_env=args.api_key_env,
            )
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    return {
        "model": args.model,
        "device": args.device,
        "dtype": args.dtype,
        "trust_remote_code": args.trust_remote_code,
        "engine": engine,
        "backend": args.backend,
        "server": server,
        "tokenizer": args.tokenizer,
    }


def fields_from_args(args: argparse.Namespace) -> Any:
    """The ``FieldMap`` named by the options of ``add_field_args``."""
    from eas.io import FieldMap

    return FieldMap(
        id=args.id_field or "id", prompt=args.prompt_field, response=args.response_field, answer=args.answer_field
    )


def add_field_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("input fields")
    g.add_argument(
        "--id-field", default=None, help="field with the record id (default 'id', else the 0-based row index)"
    )
    g.add_argument("--prompt-field", default="prompt", help="field with the question (default: prompt)")
    g.add_argument("--response-field", default="response", help="field with the reasoning trace (default: response)")
    g.add_argument("--answer-field", default="answer", help="field with the ground-truth answer (default: answer)")


def add_sampling_args(
    g: Any,
    *,
    max_new_tokens: int,
    seed_flag: str = "--sample-seed",
    batch_flag: str = "--sample-batch",
) -> None:
    """The sampler's options, the same for every command that generates.

    Commands that already have a ``--seed`` or ``--batch-size`` of their own (``select``,
    ``train``, ``experiment``) keep the default ``--sample-seed``/``--sample-batch`` names;
    the destinations are the same either way, so ``sampling_from_args`` reads them all.
    """
    g.add_argument("--temperature", type=float, default=0.7, help="sampling temperature; 0 = greedy (default 0.7)")
    g.add_argument("--top-p", type=float, default=0.95, help="nucleus sampling mass (default 0.95)")
    g.add_argument(
        "--max-new-tokens",
        type=int,
        default=max_new_tokens,
        help=f"generation budget per sample (default {max_new_tokens})",
    )
    g.add_argument(
        seed_flag, type=int, default=0, dest="sample_seed", help="sampler seed; same seed, same samples (default 0)"
    )
    g.add_argument(
        batch_flag,
        type=int,
        default=64,
        dest="sample_batch",
        help="sequences per generation batch; all samples of a question share one (default 64)",
    )


def sampling_from_args(args: argparse.Namespace, n: int = 1) -> Any:
    """The ``SamplingConfig`` named by the options of ``add_sampling_args``."""
    from eas.sampling import SamplingConfig

    try:
        return SamplingConfig(
            n=n,
            temperature=args.temperature,
            top_p=args.top_p,
            max_new_tokens=args.max_new_tokens,
            seed=args.sample_seed,
            batch_size=args.sample_batch,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None


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
    add_backend_args(p)
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
    g.add_argument(
        "--keep-input",
        action="store_true",
        help="also copy every input field (prompt, response, answer as text, ...) to the output, so that it can "
        "go straight to eas select and eas train (a result column wins over an input field of the same name)",
    )
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
COMMAND_MODULES: tuple[str, ...] = ("eas.cli_study", "eas.cli_select", "eas.cli_experiment", "eas.cli_scale")


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
    from eas.io import errors_path
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
    fields = fields_from_args(args)
    options = backend_options(args, engine)
    if args.engine == "ray":
        summary = _score_with_ray(args, fields, options, config)
    else:

        def make_backend():
            try:
                return load_backend(**options)
            except (OSError, ValueError) as exc:
                raise model_load_error(args.model, exc) from None

        summary = score_file(
            args.input,
            args.out,
            make_backend,
            config,
            fields=fields,
            id_given=args.id_field is not None,
            settings=_number_settings(args),
            batch_tokens=args.batch_tokens,
            overwrite=args.overwrite,
            dedupe=args.dedupe,
            keep_input=args.keep_input,
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


def model_load_error(name: str, exc: BaseException) -> UsageError:
    """The one-line usage error for a model that cannot be loaded."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return UsageError(f"cannot load model {name!r}: {first}")


def _number_settings(args: argparse.Namespace) -> dict[str, Any]:
    """What, besides the metric and the fields, decides a run's numbers (for resuming)."""
    settings = {"model": args.model, "dtype": args.dtype, "backend": args.backend}
    if args.backend == "openai":
        settings |= {"top_k": args.top_k, "tokenizer": args.tokenizer, "base_url": args.base_url}
    return settings


def _score_with_ray(args: argparse.Namespace, fields: Any, options: dict[str, Any], config: Any) -> Any:
    """The Ray engine: all records in one go, written at the end (not resumable)."""
    from eas.distributed import RayOptions, score_file_with_ray
    from eas.io import check_output_path, errors_path, read_records, write_results
    from eas.runs import RunSummary, check_unique_ids, with_input
    from eas.scoring import ScoreError

    check_output_path(args.out)
    total = check_unique_ids(args.input, fields, args.id_field is not None, dedupe=False)
    try:
        ray = RayOptions(workers=args.workers, address=args.ray_address, gpus_per_worker=args.gpus_per_worker)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    items = score_file_with_ray(
        args.input,
        fields,
        options,
        config,
        ray,
        id_given=args.id_field is not None,
        progress=not args.quiet,
        total=total,
    )
    rows, errors = [], []
    for item in _ray_errors_as_usage(items):
        (errors.append(item.row()) if isinstance(item, ScoreError) else rows.append(item))
    if args.keep_input:
        rows = with_input(rows, list(read_records(args.input, fields, args.id_field is not None)), fields)
    write_results(args.out, lambda: iter([rows]))
    write_results(errors_path(args.out), lambda: iter([errors]))
    return RunSummary(len(rows), len(errors))


def _ray_errors_as_usage(items: Iterator[Any]) -> Iterator[Any]:
    from eas.distributed import EngineError

    try:
        yield from items
    except EngineError as exc:
        raise UsageError(str(exc)) from None


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
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        force=True,
    )
    from eas.records import InputError

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
