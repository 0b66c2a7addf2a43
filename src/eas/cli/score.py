"""``eas score``: parse the options, build the settings, call ``eas.scoring`` and report."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from eas.cli.calibrate import add_amortised_args, score_amortised
from eas.cli.common import (
    EXIT_OK,
    EXIT_SKIPPED,
    UsageError,
    add_backend_args,
    add_field_args,
    add_metric_args,
    add_model_args,
    add_stride_args,
    backend_options,
    eas_config_from_args,
    fields_from_args,
    model_load_error,
)
from eas.config import EASConfig, EngineConfig

log = logging.getLogger("eas")


def add_parsers(sub: argparse._SubParsersAction) -> None:
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
    add_metric_args(g)
    g.add_argument(
        "--trajectory",
        action="store_true",
        help="also write the per-position entropies H_1..H_{T-1} (with --probe-stride: the probed ones, "
        "and their positions in trajectory_t)",
    )
    add_stride_args(g)
    g.add_argument(
        "--keep-input",
        action="store_true",
        help="also copy every input field (prompt, response, answer as text, ...) to the output, so that it can "
        "go straight to eas select and eas train (a result column wins over an input field of the same name)",
    )
    g = p.add_argument_group("engine")
    g.add_argument(
        "--method",
        choices=["packed", "naive"],
        default=EngineConfig.method,
        help="naive = one forward pass per probe (reference)",
    )
    g.add_argument(
        "--chunk-size",
        type=int,
        default=EngineConfig.chunk_size,
        help="probes per forward pass (bounds memory; default: 256 on a CPU; on a GPU what its free memory holds, up to 32768 query tokens)",
    )
    g.add_argument(
        "--batch-tokens",
        type=int,
        default=EngineConfig.batch_tokens,
        help="pack short records together up to this many tokens of work (0: off; default: 2048 on a CPU, "
        "65536 on a GPU, where the probes of several records fill whole chunks)",
    )
    g.add_argument(
        "--attention",
        choices=["auto", "flex", "sdpa"],
        default=EngineConfig.attention,
        help="attention kernel of the packed method: flex = block masks (FlexAttention), sdpa = dense masks "
        "(default %(default)s: flex on CUDA where available, sdpa elsewhere; recorded in the run's settings)",
    )
    g = p.add_argument_group("long runs")
    g.add_argument(
        "--overwrite",
        action="store_true",
        help="start again even if OUT (or its unfinished parts) was made with other settings",
    )
    g.add_argument("--dedupe", action="store_true", help="keep the first record of a duplicate id (default: refuse)")
    add_amortised_args(p)
    p.set_defaults(func=cmd_score)


def cmd_score(args: argparse.Namespace) -> int:
    from eas.backends.load import load_backend
    from eas.scoring.ray import RayOptions
    from eas.storage.files import errors_path

    try:
        config = eas_config_from_args(args)
        engine = EngineConfig(
            method=args.method, chunk_size=args.chunk_size, batch_tokens=args.batch_tokens, attention=args.attention
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    fields = fields_from_args(args)
    ray = None
    if args.engine == "ray":
        try:
            ray = RayOptions(workers=args.workers, address=args.ray_address, gpus_per_worker=args.gpus_per_worker)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    args.batch_tokens = _batch_tokens(args, engine, ray)
    options = backend_options(args, engine)
    backend: Any = options
    if ray is None:

        def backend():
            try:
                return load_backend(**options)
            except (OSError, ValueError) as exc:
                raise model_load_error(args.model, exc) from None

    if args.amortised:
        summary = score_amortised(args, config, backend, _number_settings(args))
    else:
        summary = _score_exact(args, config, fields, backend, ray)
    state = "already complete: " if summary.already_complete else ""
    log.info("%sscored %d records -> %s", state, summary.rows, args.out)
    if summary.errors:
        log.warning("skipped %d records; reasons in %s", summary.errors, errors_path(args.out))
        return EXIT_SKIPPED
    return EXIT_OK


def _score_exact(args: argparse.Namespace, config: EASConfig, fields: Any, backend: Any, ray: Any) -> Any:
    from eas.scoring.ray import EngineError
    from eas.scoring.runs import score_file

    try:
        return score_file(
            args.input,
            args.out,
            backend,
            config,
            fields=fields,
            id_given=args.id_field is not None,
            settings=_number_settings(args),
            batch_tokens=args.batch_tokens,
            overwrite=args.overwrite,
            dedupe=args.dedupe,
            keep_input=args.keep_input,
            progress=not args.quiet,
            ray=ray,
        )
    except EngineError as exc:
        raise UsageError(str(exc)) from None


def _batch_tokens(args: argparse.Namespace, engine: EngineConfig, ray: Any) -> int:
    """``--batch-tokens``, or its default for where the model will run (a GPU takes more)."""
    if args.batch_tokens is not None or args.backend != "hf":
        return engine.batch_tokens_for(on_gpu=False)
    if ray is not None:
        from eas.scoring.ray import cluster_placement

        return engine.batch_tokens_for(on_gpu=bool(cluster_placement(ray).gpus_per_worker))
    from eas.backends.load import resolve_device

    return engine.batch_tokens_for(on_gpu=resolve_device(args.device).startswith("cuda"))


def _number_settings(args: argparse.Namespace) -> dict[str, Any]:
    """What, besides the metric and the fields, decides a run's numbers (for resuming)."""
    settings = {"model": args.model, "dtype": args.dtype, "backend": args.backend}
    if args.backend == "openai":
        settings |= {"top_k": args.top_k, "tokenizer": args.tokenizer, "base_url": args.base_url}
    return settings
