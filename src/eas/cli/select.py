"""``eas select`` and ``eas train``: pick training data at a budget, fine-tune a student."""

from __future__ import annotations

import argparse
import logging

from eas.cli import options
from eas.cli.common import (
    EXIT_OK,
    TRAIN_DTYPE_HELP,
    UsageError,
    add_field_args,
    add_model_args,
    add_sampling_args,
    add_stride_args,
    check_model,
    eas_config_from_args,
    fields_from_args,
    load_model_backend,
    model_options,
    sampling_from_args,
)
from eas.config import EVALUATION_SAMPLING, EASConfig, ModelOptions, TrainConfig
from eas.integrations.cli import add_source_args, open_source

log = logging.getLogger("eas")

SELECT_EXAMPLES = """examples:
  eas select pool.jsonl --strategy eas --budget 200 --out picked.jsonl            # scored with the model
  eas select pool.jsonl --strategy eas --budget 200 --scores scored.jsonl --out picked.jsonl
  eas select pool.jsonl --strategy pass-rate --budget 200 -k 4 --out picked.jsonl
  eas select pool.jsonl --strategy random --budget 200 --seed 1 --out picked.jsonl"""
TRAIN_EXAMPLES = """examples:
  eas train picked.jsonl --out run/ --epochs 2 --lr 1e-5
  eas train picked.jsonl --out run/ --lora --batch-size 8 --grad-accum 2
  eas train picked.jsonl --out run/ --resume              # continue a stopped run
  eas evaluate run/ --questions test.jsonl --out eval.json   # its best checkpoints"""
# TrainConfig's options of eas train, in --help order.
TRAIN_OPTIONS = (
    "epochs",
    "lr",
    "batch_size",
    "grad_accum",
    "max_length",
    "save_steps",
    "max_steps",
    "val_fraction",
    "seed",
    "lora",
    "activation_checkpointing",
    "pure_bf16",
)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    from eas.selection.experiment import ExperimentConfig
    from eas.selection.select_file import SelectRequest
    from eas.selection.strategies import STRATEGIES

    p = sub.add_parser(
        "select",
        help="choose B training records by EAS, length, pass rate, ... (docs/method.md section 4)",
        description="Choose --budget records of a pool of (prompt, response) traces. Scores are taken from an input "
        "column if present (eas, hes, mean_token_entropy, total_tokens, pass_rate), else from --scores (an `eas score` "
        "output, joined by id), else computed with --model. Writes the chosen rows unchanged plus selection_score and "
        "selection_rank, and OUT.manifest.json.",
        epilog=SELECT_EXAMPLES,
    )
    p.add_argument("input", help="the pool: .jsonl, .parquet or .csv; a Hugging Face data set (docs/integrations/)")
    p.add_argument("--strategy", required=True, choices=STRATEGIES)
    p.add_argument("--budget", type=int, required=True, help="B, the number of records to keep")
    options.add_fields(p, SelectRequest, ("seed",), helps={"seed": "seed of the random strategy"})
    p.add_argument("--scores", default=None, help="an `eas score` output for the pool (reused, joined by id)")
    p.add_argument(
        "--out", required=True, help="the chosen rows: .jsonl or .parquet; DIR/ writes a Hugging Face data set"
    )
    options.add_fields(p, EASConfig, ("use_chat_template",))
    g = p.add_argument_group("eas (scored with --model)")
    add_stride_args(g)
    g.add_argument(
        "--amortised",
        default=None,
        metavar="HEAD",
        help="predict EAS from one forward pass per trace with a head from eas calibrate (same model)",
    )
    g = p.add_argument_group("pass-rate")
    options.add_fields(g, ExperimentConfig, ("pass_rate_k",), flags={"pass_rate_k": "-k"})
    add_sampling_args(g, EVALUATION_SAMPLING)
    add_model_args(p)
    add_field_args(p)
    add_source_args(p, correctness=False)
    p.set_defaults(func=cmd_select)

    t = sub.add_parser(
        "train",
        help="fine-tune a student on selected records (SFT with TRL)",
        description="Supervised fine-tuning on (prompt, response) records: the prompt in the model's chat template, "
        "loss on the response only. Checkpoints every --save-steps; the 3 best by validation loss (plus the newest) "
        "are kept; --resume continues a stopped run. Writes train_log.jsonl and best_checkpoints.json.",
        epilog=TRAIN_EXAMPLES,
    )
    t.add_argument("input", help="records to train on (e.g. the output of eas select)")
    t.add_argument("--out", required=True, help="run folder")
    g = t.add_argument_group("training")
    options.add_fields(g, TrainConfig, TRAIN_OPTIONS)
    t.add_argument(
        "--resume",
        action="store_true",
        help="continue from the newest checkpoint in --out (refused when --out holds a run with other settings)",
    )
    t.add_argument(
        "--overwrite",
        action="store_true",
        help="remove the run --out holds (other settings, or no --resume) and start again; default: refuse",
    )
    add_model_args(t, dtype_help=TRAIN_DTYPE_HELP)
    add_field_args(t)
    t.set_defaults(func=cmd_train)


def cmd_select(args: argparse.Namespace) -> int:
    from eas.cli.score import estimator_from_args
    from eas.selection.select_file import SelectRequest, select_file
    from eas.storage.files import check_output_path

    io = open_source(args, "selected")
    check_output_path(args.out)
    if args.budget < 1:
        raise UsageError("--budget must be >= 1")
    check_model(args)
    request = SelectRequest(
        strategy=args.strategy,
        budget=args.budget,
        seed=args.seed,
        fields=fields_from_args(args),
        scores_path=args.scores,
        model=args.model,
        estimator=estimator_from_args(args, eas_config_from_args(args)),
    )

    def backend():
        return load_model_backend(args)

    def pass_rates(records):
        from eas.sampling.questions import load_fewshot
        from eas.selection.evaluation import pool_pass_rates

        sampling = sampling_from_args(args)
        samples = f"{args.out}.samples.jsonl"  # resumable: a killed selection keeps its finished batches
        return pool_pass_rates(
            records,
            backend,
            args.pass_rate_k,
            sampling,
            load_fewshot(None),
            progress=not args.quiet,
            samples_path=samples,
        )

    manifest = select_file(args.input, args.out, request, backend, pass_rates)
    io.finish(summary=False)
    log.info(
        "%s: chose %d of %d (%d eligible) -> %s",
        args.strategy,
        manifest["chosen"],
        manifest["pool"],
        manifest["eligible"],
        args.out,
    )
    return EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
    from eas.selection.training import train
    from eas.storage.inputs import read_records, readable_records

    config = options.build(TrainConfig, args)
    check_model(args)
    records = readable_records(read_records(args.input, fields_from_args(args)), args.input)
    try:
        result = train(
            records,
            args.out,
            args.model,
            None,
            config,
            resume=args.resume,
            overwrite=args.overwrite,
            progress=not args.quiet,
            **model_options(args).kwargs(),
        )
    except ValueError as exc:
        raise options.usage_error(exc, args, TrainConfig, ModelOptions) from None
    best = ", ".join(f"{c} ({loss:.4f})" for c, loss in result.best_checkpoints)
    log.info("trained %d steps -> %s; best checkpoints: %s", result.global_step, args.out, best or "none")
    return EXIT_OK
