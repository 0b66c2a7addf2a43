"""``eas calibrate``: parse, call, print.

The work is ``eas.scoring.calibration``; this module only turns options into a call and
the head's manifest into a short report. (``eas score --amortised`` is ``cli.score``'s.)
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from eas.cli import options
from eas.cli.common import (
    EXIT_OK,
    EXIT_SKIPPED,
    UsageError,
    add_field_args,
    add_metric_args,
    add_model_args,
    check_model,
    eas_config_from_args,
    fields_from_args,
)
from eas.config import AmortisedConfig

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
    options.add_fields(
        p, AmortisedConfig, ("seed",), flags={"seed": "--seed"}, helps={"seed": "seed of the cross-validation folds"}
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace an existing head (outputs scored with it refer to it)"
    )
    add_model_args(p)
    add_field_args(p)
    g = p.add_argument_group("metric (as the pool will be scored)")
    add_metric_args(g)
    p.set_defaults(func=cmd_calibrate)


def parse_layers(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise UsageError(f"--layers takes comma-separated integers, not {text!r}") from None


def cmd_calibrate(args: argparse.Namespace) -> int:
    from eas.backends.spec import BackendSpec
    from eas.scoring.calibration import calibrate_file
    from eas.storage.heads import head_quality_warning

    config = eas_config_from_args(args)
    if Path(args.out).exists() and not args.overwrite:  # before a model is loaded
        raise UsageError(f"{args.out} exists (outputs scored with it refer to it); use --overwrite or another --out")
    check_model(args)  # a typo fails at once, offline
    spec = BackendSpec(args.model, device=args.device, dtype=args.dtype, trust_remote_code=args.trust_remote_code)
    try:
        with spec.open() as backend:
            man = calibrate_file(
                args.input,
                args.out,
                backend,
                config,
                fields=fields_from_args(args),
                id_given=args.id_field is not None,
                layers=parse_layers(args.layers),
                seed=args.seed,
                overwrite=args.overwrite,
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
