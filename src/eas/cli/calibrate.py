"""``eas calibrate`` and the ``--amortised`` options of ``eas score``: parse, call, print.

The work is ``eas.scoring.amortised_runs``; this module only turns options into calls and
the head's manifest into a short report.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from eas.cli.common import (
    EXIT_OK,
    EXIT_SKIPPED,
    UsageError,
    add_field_args,
    add_metric_args,
    add_model_args,
    eas_config_from_args,
    fields_from_args,
)
from eas.config import AmortisedConfig, EASConfig

log = logging.getLogger("eas")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate",
        help="fit an amortised-EAS head: exact EAS on calibration traces, then a linear head on one pass's features",
        description="Score the calibration traces exactly (packed probes), read each position's hidden states "
        "(--layers) and next-token entropy from one forward pass, fit a ridge head with a cross-validated penalty "
        "(folds grouped by trace) and write it with a manifest that reports its cross-validated error. "
        "Use it with eas score --amortised HEAD or eas select --amortised HEAD. docs/amortised.md.",
    )
    p.add_argument("input", help="calibration records: .jsonl, .parquet or .csv (same kind of traces as the pool)")
    p.add_argument("--out", required=True, help="the head: a .safetensors file (its manifest goes to OUT.json)")
    p.add_argument(
        "--layers",
        default=None,
        help="comma-separated blocks whose hidden states are features, 1..n_layers "
        "(default: the middle block and the last, 15,30 for the embedded model)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=AmortisedConfig.seed,
        help="seed of the cross-validation folds (default %(default)s)",
    )
    add_model_args(p)
    add_field_args(p)
    g = p.add_argument_group("metric (as the pool will be scored)")
    add_metric_args(g)
    p.set_defaults(func=cmd_calibrate)


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
    g.add_argument(
        "--calibrate-fraction",
        type=float,
        default=AmortisedConfig.calibrate_fraction,
        help="auto: share of the pool scored exactly to fit the head "
        f"(default %(default)s, at least {AmortisedConfig.min_calibration} records)",
    )
    g.add_argument(
        "--calibrate-seed",
        type=int,
        default=AmortisedConfig.seed,
        help="auto: seed of the calibration slice (default %(default)s)",
    )


def parse_layers(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise UsageError(f"--layers takes comma-separated integers, not {text!r}") from None


def cmd_calibrate(args: argparse.Namespace) -> int:
    from eas.backends.load import load_backend
    from eas.cli.common import model_load_error
    from eas.scoring.amortised_runs import calibrate_file
    from eas.storage.heads import head_quality_warning

    config = eas_config_from_args(args)
    try:
        backend = load_backend(
            args.model, device=args.device, dtype=args.dtype, trust_remote_code=args.trust_remote_code
        )
    except (OSError, ValueError) as exc:
        raise model_load_error(args.model, exc) from None
    try:
        man = calibrate_file(
            args.input,
            args.out,
            backend,
            config,
            fields=fields_from_args(args),
            id_given=args.id_field is not None,
            layers=parse_layers(args.layers),
            seed=args.seed,
            progress=not args.quiet,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    cal, cv = man["calibration"], man["cv"]
    print(
        f"head for {man['model']} (layers {','.join(map(str, man['layers']))} + next-token entropy) -> {args.out}\n"
        f"calibrated on {cal['traces']} traces, {cal['positions']} positions ({cal['skipped']} skipped)\n"
        f"cross-validated ({cv['folds']} folds by trace): per-position r {cv['per_position_r']:.3f}, "
        f"Spearman EAS {cv['spearman_eas']:.3f}, Spearman mean EAS {cv['spearman_mean_eas']:.3f}, "
        f"top-25% overlap {cv['top25_overlap']:.2f}, mean |error|/EAS {cv['mean_rel_error']:.3f}"
    )
    warning = head_quality_warning(man)
    if warning:
        log.warning("%s", warning)
    return EXIT_SKIPPED if cal["skipped"] else EXIT_OK


def score_amortised(args: argparse.Namespace, config: EASConfig, backend: Any, settings: dict[str, Any]) -> Any:
    """``eas score --amortised``: the run, through ``score_file_amortised``; returns its RunSummary."""
    from eas.scoring.amortised_runs import score_file_amortised

    if args.engine == "ray" or args.backend != "hf":
        raise UsageError("--amortised needs the hidden states: use the local engine and --backend hf")
    try:
        return score_file_amortised(
            args.input,
            args.out,
            backend,
            config,
            head=args.amortised,
            fraction=args.calibrate_fraction,
            seed=args.calibrate_seed,
            fields=fields_from_args(args),
            id_given=args.id_field is not None,
            settings=settings,
            batch_tokens=args.batch_tokens,
            overwrite=args.overwrite,
            dedupe=args.dedupe,
            keep_input=args.keep_input,
            progress=not args.quiet,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
