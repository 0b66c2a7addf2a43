"""``eas select`` and ``eas train``: pick training data at a budget, fine-tune a student."""

from __future__ import annotations

import argparse
import logging

from eas.cli.common import (
    EXIT_OK,
    TRAIN_DTYPE_HELP,
    UsageError,
    add_field_args,
    add_model_args,
    add_sampling_args,
    add_stride_args,
    eas_config_from_args,
    fields_from_args,
    model_load_error,
    sampling_from_args,
)

log = logging.getLogger("eas")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    from eas.selection.strategies import STRATEGIES

    p = sub.add_parser(
        "select",
        help="choose B training records by EAS, length, pass rate, ... (docs/method.md section 4)",
        description="Choose --budget records of a pool of (prompt, response) traces. Scores are taken from an input "
        "column if present (eas, hes, mean_token_entropy, total_tokens, pass_rate), else from --scores (an `eas score` "
        "output, joined by id), else computed with --model. Writes the chosen rows unchanged plus selection_score and "
        "selection_rank, and OUT.manifest.json.",
    )
    p.add_argument("input", help="the pool: .jsonl, .parquet or .csv")
    p.add_argument("--strategy", required=True, choices=STRATEGIES)
    p.add_argument("--budget", type=int, required=True, help="B, the number of records to keep")
    p.add_argument("--seed", type=int, default=0, help="for random (default 0)")
    p.add_argument("--scores", default=None, help="an `eas score` output for the pool (reused, joined by id)")
    p.add_argument("--out", required=True, help="the chosen rows: .jsonl or .parquet")
    p.add_argument("--no-chat-template", action="store_true", help="raw prompt text (as for eas score)")
    g = p.add_argument_group("eas (scored with --model)")
    add_stride_args(g)
    g.add_argument(
        "--amortised",
        default=None,
        metavar="HEAD",
        help="predict EAS from one forward pass per trace with a head from eas calibrate (same model)",
    )
    g = p.add_argument_group("pass-rate")
    g.add_argument("-k", type=int, default=4, help="answers sampled per question (default 4)")
    add_sampling_args(g, max_new_tokens=256)
    add_model_args(p)
    add_field_args(p)
    p.set_defaults(func=cmd_select)

    t = sub.add_parser(
        "train",
        help="fine-tune a student on selected records (SFT with TRL)",
        description="Supervised fine-tuning on (prompt, response) records: the prompt in the model's chat template, "
        "loss on the response only. Checkpoints every --save-steps; the 3 best by validation loss (plus the newest) "
        "are kept; --resume continues a stopped run. Writes train_log.jsonl and best_checkpoints.json.",
    )
    t.add_argument("input", help="records to train on (e.g. the output of eas select)")
    t.add_argument("--out", required=True, help="run folder")
    t.add_argument("--lora", action="store_true", help="train LoRA adapters instead of all weights")
    t.add_argument(
        "--no-activation-checkpointing",
        dest="activation_checkpointing",
        action="store_false",
        help="keep the activations for the backward pass instead of recomputing them (more memory, less compute)",
    )
    t.add_argument("--epochs", type=float, default=2.0)
    t.add_argument("--lr", type=float, default=1e-5)
    t.add_argument("--batch-size", type=int, default=4)
    t.add_argument("--grad-accum", type=int, default=1)
    t.add_argument("--max-length", type=int, default=1024, help="tokens per example (longer ones are cut)")
    t.add_argument("--save-steps", type=int, default=50, help="checkpoint and validate every N steps")
    t.add_argument("--max-steps", type=int, default=-1, help="stop after N steps (default: the epochs decide)")
    t.add_argument("--val-fraction", type=float, default=0.1, help="share of the records held out (at least one)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    t.add_argument(
        "--pure-bf16",
        action="store_true",
        help="train bfloat16 weights without float32 master weights (less memory; at lr 1e-5 most updates round "
        "away, a warning says so); needs --dtype bfloat16 or auto on a GPU",
    )
    add_model_args(t, dtype_help=TRAIN_DTYPE_HELP)
    add_field_args(t)
    t.set_defaults(func=cmd_train)


def cmd_select(args: argparse.Namespace) -> int:
    from eas.backends.load import load_backend
    from eas.cli.score import estimator_from_args
    from eas.selection.select_file import SelectRequest, select_file
    from eas.storage.files import check_output_path

    check_output_path(args.out)
    if args.budget < 1:
        raise UsageError("--budget must be >= 1")
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
        try:
            return load_backend(
                args.model, device=args.device, dtype=args.dtype, trust_remote_code=args.trust_remote_code
            )
        except (OSError, ValueError) as exc:
            raise model_load_error(args.model, exc) from None

    def pass_rates(records):
        from eas.sampling.questions import load_fewshot
        from eas.selection.evaluation import pool_pass_rates

        sampling = sampling_from_args(args)
        samples = f"{args.out}.samples.jsonl"  # resumable: a killed selection keeps its finished batches
        return pool_pass_rates(
            records, backend, args.k, sampling, load_fewshot(None), progress=not args.quiet, samples_path=samples
        )

    manifest = select_file(args.input, args.out, request, backend, pass_rates)
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
    from eas.selection.training import TrainConfig, train
    from eas.storage.inputs import read_records, readable_records

    records = readable_records(read_records(args.input, fields_from_args(args)), args.input)
    try:
        config = TrainConfig(
            epochs=args.epochs,
            lr=args.lr,
            batch_size=args.batch_size,
            grad_accum=args.grad_accum,
            max_length=args.max_length,
            save_steps=args.save_steps,
            max_steps=args.max_steps,
            val_fraction=args.val_fraction,
            lora=args.lora,
            activation_checkpointing=args.activation_checkpointing,
            pure_bf16=args.pure_bf16,
            seed=args.seed,
        )
        result = train(
            records,
            args.out,
            args.model,
            None,
            config,
            resume=args.resume,
            device=args.device,
            dtype=args.dtype,
            trust_remote_code=args.trust_remote_code,
            progress=not args.quiet,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    best = ", ".join(f"{c} ({loss:.4f})" for c, loss in result.best_checkpoints)
    log.info("trained %d steps -> %s; best checkpoints: %s", result.global_step, args.out, best or "none")
    return EXIT_OK
