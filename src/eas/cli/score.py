"""``eas score``: parse the options, build the backend spec and the estimator, run, and report.

The estimator (exact, stratified, ``--amortised HEAD`` or ``auto``) is chosen here, in
``estimator_from_args``, and nowhere else; ``eas select`` uses the same function.
The run ends with a short summary on stdout (rows, errors, EAS mean and spread, the most
and least uncertain ids, the files written).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from eas.cli import options
from eas.cli.common import (
    EXIT_OK,
    EXIT_SKIPPED,
    UsageError,
    add_backend_args,
    add_field_args,
    add_metric_args,
    add_model_args,
    add_stride_args,
    backend_spec,
    eas_config_from_args,
    fields_from_args,
)
from eas.config import AmortisedConfig, EASConfig, EngineConfig
from eas.integrations.cli import add_source_args, open_source

log = logging.getLogger("eas")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score",
        help="compute EAS and the baseline figures of reasoning traces",
        description="Score (prompt, response[, answer]) records: EAS, mean EAS, PPL, length, "
        "mean token entropy, max sequence log-prob, HES and the final-answer entropy. "
        "Bad records go to OUT's errors file (scored.jsonl -> scored.errors.jsonl) with a reason; "
        "exit status 0 = all scored, 3 = some skipped, 2 = usage error. "
        "Runs are resumable: rerun the same command after a crash and finished batches are kept; a rerun checks "
        "that the input (ids and content) and the resolved settings (dtype, device, attention, metric) are the "
        "same, and scores only records appended to the input since.",
    )
    p.add_argument("input", help="records: .jsonl, .parquet or .csv; a Hugging Face data set; see --from")
    p.add_argument("--out", required=True, help="results: .jsonl or .parquet; DIR/ writes a Hugging Face data set")
    add_source_args(p)
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
    options.add_fields(g, EngineConfig, ("method", "chunk_size", "batch_tokens", "attention"))
    g = p.add_argument_group("long runs")
    g.add_argument(
        "--overwrite",
        action="store_true",
        help="start again even if OUT (or its unfinished parts) was made with other settings",
    )
    g.add_argument("--dedupe", action="store_true", help="keep the first record of a duplicate id (default: refuse)")
    g.add_argument(
        "--allow-empty",
        action="store_true",
        help="accept an input without records (empty outputs, exit 0); by default it is an error",
    )
    add_amortised_args(p)
    p.set_defaults(func=cmd_score)


def add_amortised_args(p: argparse.ArgumentParser) -> None:
    """``eas score``'s options for amortised EAS."""
    g = p.add_argument_group("amortised EAS (one forward pass per record; docs/amortised.md)")
    g.add_argument(
        "--amortised",
        default=None,
        metavar="HEAD|auto",
        help="predict eas, mean_eas, final_entropy and trajectory with a head from eas calibrate (column "
        "eas_method: amortised); 'auto' calibrates on a seeded random slice of this pool first (those rows keep "
        "their exact values, eas_method: exact; the head goes to OUT.head.safetensors)",
    )
    options.add_fields(g, AmortisedConfig, ("calibrate_fraction", "seed"), dests={"seed": "calibrate_seed"})


def estimator_from_args(args: argparse.Namespace, config: EASConfig, out: str | None = None) -> Any:
    """The one place a command chooses how rows are made: exact (or stratified, by the
    config's stride), a head file (``--amortised HEAD``) or ``--amortised auto`` (its head
    beside ``out``)."""
    from eas.scoring.estimators.exact import Exact

    amortised = getattr(args, "amortised", None)
    try:
        if amortised is None:
            return Exact(config)
        if amortised == "auto":
            from eas.scoring.calibration import AutoAmortised, auto_head_path

            head_path = None if out is None else str(auto_head_path(out))
            return AutoAmortised(config, args.calibrate_fraction, args.calibrate_seed, head_path=head_path)
        from eas.scoring.estimators.amortised import Amortised
        from eas.storage.heads import load_head

        return Amortised(load_head(amortised), config)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def cmd_score(args: argparse.Namespace) -> int:
    from eas.scoring.ray import EngineError, RayOptions
    from eas.scoring.runs import RunOptions, score_file

    io = open_source(args, "scored")
    config = eas_config_from_args(args)
    engine = options.build(EngineConfig, args)
    ray = options.build(RayOptions, args) if args.engine == "ray" else None
    args.batch_tokens = _batch_tokens(args, engine, ray)
    run = RunOptions(
        fields=fields_from_args(args),
        id_given=args.id_field is not None,
        batch_tokens=args.batch_tokens,
        overwrite=args.overwrite,
        dedupe=args.dedupe,
        keep_input=args.keep_input,
        progress=not args.quiet,
        allow_empty=args.allow_empty,
        ray=ray,
    )
    estimator = estimator_from_args(args, config, args.out)
    try:
        summary = score_file(args.input, args.out, backend_spec(args, engine), estimator, run)
    except (EngineError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    state = "already complete: " if summary.already_complete else ""
    log.info("%sscored %d records -> %s", state, summary.rows, args.out)
    text = io.finish()  # the data set of --out DIR/; the AUROC summary of --from
    print_summary(args.out, summary)
    if text:
        print(text)
    if summary.errors:
        return EXIT_SKIPPED
    return EXIT_OK


def print_summary(out: str, run: Any) -> None:
    """A few lines on stdout: rows, errors, EAS mean and spread, the extreme ids, the files."""
    from eas.scoring.summary import summarize
    from eas.storage.files import errors_path
    from eas.storage.parts import manifest_path

    s = summarize(out)
    lines = [f"{s.rows} rows, {run.errors} errors" + (" (already complete)" if run.already_complete else "")]
    if s.mean is not None:
        spread = f", sd {s.sd:.3f}" if s.sd is not None else ""
        lines.append(f"EAS (bits): mean {s.mean:.3f}{spread}, median {s.median:.3f} over {s.scored} rows")
        show = lambda pairs: ", ".join(f"{i} ({v:.3f})" for i, v in pairs)  # noqa: E731
        lines.append(f"most uncertain: {show(s.most)}")
        lines.append(f"least uncertain: {show(s.least)}")
    files = [str(out), *([str(errors_path(out))] if run.errors else []), str(manifest_path(Path(out)))]
    lines.append("files: " + ", ".join(files))
    print("\n".join(lines))


def _batch_tokens(args: argparse.Namespace, engine: EngineConfig, ray: Any) -> int:
    """``--batch-tokens``, or its default for where the model will run (a GPU takes more)."""
    if args.batch_tokens is not None or args.backend != "hf":
        return engine.batch_tokens_for(on_gpu=False)
    if ray is not None:
        from eas.scoring.ray import cluster_placement

        return engine.batch_tokens_for(on_gpu=bool(cluster_placement(ray).gpus_per_worker))
    from eas.backends.load import resolve_device

    return engine.batch_tokens_for(on_gpu=resolve_device(args.device).startswith("cuda"))
