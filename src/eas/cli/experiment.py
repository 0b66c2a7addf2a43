"""``eas evaluate`` and ``eas experiment selection``: does EAS-selected data train better?"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from eas.cli import options
from eas.cli.common import (
    EXIT_OK,
    UsageError,
    add_model_args,
    add_sampling_args,
    check_model,
    check_model_name,
    model_load_error,
    model_options,
    sampling_from_args,
)
from eas.config import EVALUATION_SAMPLING, ModelOptions
from eas.storage.jsontext import dumps

log = logging.getLogger("eas")

EVALUATE_EXAMPLES = """examples:
  eas evaluate embedded --questions test.jsonl --out eval.json -k 8
  eas evaluate run/ --questions test.jsonl --out eval.json --top 3     # an eas train run: its best checkpoints
  eas evaluate Qwen/Qwen2.5-0.5B-Instruct --questions test.jsonl --out eval.json --device cuda"""
EXPERIMENT_EXAMPLES = """examples:
  eas experiment selection --builtin --quick --out exp/          # the miniature, about 25 minutes on 2 CPU cores
  eas experiment selection pool.jsonl --test test.jsonl --budget 200 --seeds 3 --out exp/
  eas experiment selection --builtin --strategies random,eas --out exp/   # rerun the same command to resume"""
EXPERIMENT_DTYPE_HELP = (
    "the compute dtype of training (autocast; auto: bfloat16 on a GPU, float32 elsewhere; the weights stay "
    "float32), and the dtype of scoring and evaluation"
)


def _preset_help(text: str, name: str) -> str:
    from eas.selection.presets import FULL, QUICK

    return f"{text} (default: {getattr(FULL, name)}; with --quick: {getattr(QUICK, name)})"


def add_parsers(sub: argparse._SubParsersAction) -> None:
    from eas.selection.experiment import ExperimentConfig

    e = sub.add_parser(
        "evaluate",
        help="Avg Pass@1 over k samples per question, for a model or a training run",
        description="Sample k answers per test question and grade them (math-verify equivalence). MODEL is a model "
        "id or folder, a checkpoint, or an `eas train` run folder (then its best checkpoints are evaluated). "
        "Prompts are built as `eas sample` builds them: by default two built-in solved examples of the question's "
        "kind (in the \\boxed{} format) before each question, in the model's chat template; --no-fewshot asks the "
        "question alone, as `eas train`'s student saw its training prompts. The graded responses are kept beside "
        "OUT (eval.json -> eval.samples.jsonl; for a run folder eval.<checkpoint>.samples.jsonl), resumably.",
        epilog=EVALUATE_EXAMPLES,
    )
    e.add_argument("model_path", metavar="MODEL", help="model id/folder, checkpoint, or eas train run folder")
    e.add_argument("--questions", required=True, help="JSONL with id, question, answer[, choices]")
    options.add_fields(e, ExperimentConfig, ("eval_k", "top_checkpoints"))
    e.add_argument("--out", required=True, help="results JSON (Avg Pass@1 and per-question pass rates)")
    g = e.add_argument_group("model")
    options.add_fields(g, ModelOptions, ("device", "dtype", "trust_remote_code"))
    g = e.add_argument_group("sampling")
    add_sampling_args(g, EVALUATION_SAMPLING)
    g.add_argument(
        "--fewshot",
        metavar="FILE",
        default=None,
        help="JSONL of solved examples (question, solution, optional choices) shown before each question; "
        "default: the built-in examples, as eas sample",
    )
    g.add_argument("--no-fewshot", action="store_true", help="show no example (only the question)")
    g.add_argument(
        "--overwrite", action="store_true", help="start the kept samples again if they were made with other settings"
    )
    e.set_defaults(func=cmd_evaluate)

    x = sub.add_parser("experiment", help="end-to-end experiments")
    xs = x.add_subparsers(dest="experiment", metavar="EXPERIMENT", required=True)
    s = xs.add_parser(
        "selection",
        help="select with each strategy, train, evaluate, compare to random (the paper's Table 3)",
        description="For each seed and strategy: select --budget pool records, fine-tune the student, evaluate the "
        "top 3 checkpoints by validation loss. Writes table.md/table.csv (random absolute, others as differences, "
        "mean and 95% CI across seeds), results.json and table.png. Resumable: rerun to continue.",
        epilog=EXPERIMENT_EXAMPLES,
    )
    s.add_argument("pool", nargs="?", help="training pool (prompt, response, answer); omit with --builtin")
    s.add_argument("--test", help="test questions JSONL (id, question, answer); omit with --builtin")
    s.add_argument("--builtin", action="store_true", help="the built-in arithmetic pool and test set")
    s.add_argument(
        "--quick",
        action="store_true",
        help="the miniature setting (pool 96, test 16, B=24, 2 seeds, k=2): about 25 minutes on 2 CPU cores",
    )
    s.add_argument("--budget", type=int, default=None, help=_preset_help("B records per strategy", "budget"))
    options.add_fields(s, ExperimentConfig, ("strategies",))
    s.add_argument("--seeds", type=int, default=None, help=_preset_help("number of seeds", "seeds"))
    s.add_argument("-k", type=int, default=None, help=_preset_help("evaluation samples per question", "eval_k"))
    options.add_fields(s, ExperimentConfig, ("pass_rate_k",))
    s.add_argument("--epochs", type=float, default=None, help=_preset_help("training epochs", "epochs"))
    s.add_argument("--lr", type=float, default=None, help=_preset_help("peak learning rate", "lr"))
    s.add_argument("--batch-size", type=int, default=None, help=_preset_help("examples per step", "batch_size"))
    options.add_fields(s, ExperimentConfig, ("keep_checkpoints",))
    s.add_argument("--out", required=True, help="experiment folder")
    s.add_argument(
        "--overwrite",
        action="store_true",
        help="start again when --out holds results made with other settings (default: refuse, listing them)",
    )
    add_model_args(s, dtype_help=EXPERIMENT_DTYPE_HELP)
    add_sampling_args(s.add_argument_group("sampling"), EVALUATION_SAMPLING)
    s.set_defaults(func=cmd_experiment)


def samples_beside(out: Path, target: str, several: bool) -> Path:
    """Where the graded responses of ``target`` go, beside ``out`` (eval.json -> eval.samples.jsonl)."""
    name = f"{out.stem}.{Path(target).name}.samples.jsonl" if several else f"{out.stem}.samples.jsonl"
    return out.with_name(name)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from eas.sampling.questions import describe_fewshot, load_fewshot, load_questions
    from eas.selection.evaluation import evaluate, load_eval_backend

    out = Path(args.out)
    if not out.parent.is_dir():
        raise UsageError(f"{out.parent}: output folder does not exist")
    questions = load_questions(args.questions)
    shots = [] if args.no_fewshot else load_fewshot(args.fewshot)
    prompting = describe_fewshot(shots, args.fewshot)
    path = Path(args.model_path)
    targets = [args.model_path]
    if (path / "best_checkpoints.json").exists():
        best = json.loads((path / "best_checkpoints.json").read_text())[: args.top_checkpoints]
        targets = [str(path / b["checkpoint"]) for b in best]
    sampling = sampling_from_args(args)
    for target in targets:
        check_model_name(target)
    results = {}
    for target in targets:
        samples = samples_beside(out, target, len(targets) > 1)
        try:
            backend = load_eval_backend(target, **model_options(args).kwargs())
        except (OSError, ValueError) as exc:
            raise model_load_error(target, exc) from None
        result = evaluate(
            backend,
            questions,
            args.eval_k,
            sampling,
            shots,
            progress=not args.quiet,
            samples_path=samples,
            settings={"model": target, "dtype": args.dtype},
            overwrite=args.overwrite,
        )
        results[target] = {**result.summary(), "prompts": prompting, "samples": str(samples)}
        results[target]["per_question"] = result.per_question
        print(
            f"{target}: Avg Pass@1 = {100 * result.avg_pass_at_1:.1f}% over {len(questions)} questions x {args.eval_k} "
            f"samples\n  prompts: {prompting}\n  graded responses: {samples}"
        )
    out.write_text(dumps(results, indent=1) + "\n")
    print(f"results: {out}")
    return EXIT_OK


def cmd_experiment(args: argparse.Namespace) -> int:
    from eas.sampling.questions import load_questions
    from eas.selection.experiment import ExperimentConfig, markdown, run_experiment
    from eas.selection.presets import FULL, QUICK, builtin_data, experiment_config
    from eas.selection.strategies import STRATEGIES
    from eas.storage.inputs import read_records

    out = Path(args.out)
    strategies = args.strategies
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise UsageError(f"unknown strategies {unknown}; choose from {', '.join(STRATEGIES)}")
    check_model(args)
    preset = QUICK if args.quick else FULL
    if args.builtin:
        pool, questions = builtin_data(preset, out)
    else:
        if not args.pool or not args.test:
            raise UsageError("give a pool file and --test, or --builtin")
        pool = list(read_records(args.pool))
        questions = load_questions(args.test)
    try:
        config = experiment_config(
            preset,
            strategies,
            sampling_from_args(args),
            budget=args.budget,
            seeds=args.seeds,
            eval_k=args.k,
            epochs=args.epochs,
            lr=args.lr,
            batch_size=args.batch_size,
            pass_rate_k=args.pass_rate_k,
            keep_checkpoints=args.keep_checkpoints,
        )
    except ValueError as exc:
        raise options.usage_error(
            exc, args, ExperimentConfig, flags={"budget": "--budget", "seeds": "--seeds"}
        ) from None
    started = time.monotonic()
    rows = run_experiment(
        pool,
        questions,
        out,
        config,
        model=args.model,
        progress=not args.quiet,
        options=model_options(args),
        overwrite=args.overwrite,
    )
    wall_s = time.monotonic() - started
    print(markdown(rows, config.strategies))
    print(f"wall time: {wall_s:.0f} s ({wall_s / 60:.1f} min)")
    log.info("table, csv, chart and per-run results in %s", out)
    return EXIT_OK
