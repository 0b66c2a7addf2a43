"""CLI of the uncertainty study: ``eas sample``, ``study``, ``correlate``, ``plot``, ``demo``.

Each handler builds the settings, calls into ``eas.study.study`` / ``eas.study.plots`` / ``eas.study.demo``
and returns the exit status; usage problems raise ``UsageError``/``InputError`` (exit 2).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from eas.cli.common import (
    EXIT_OK,
    UsageError,
    add_backend_args,
    add_model_args,
    add_sampling_args,
    add_stride_args,
    eas_config_from_args,
    model_load_error,
    sampling_from_args,
)
from eas.cli.online import add_monitor_args, add_online_study_arg, check_online_backend, monitor_from_args
from eas.config import EASConfig

log = logging.getLogger("eas")

EXTRACT_HELP = (
    "answer extraction, modes tried in order, comma-separated: boxed (last \\boxed{...}), "
    "last-number, choice (last option letter); default: boxed"
)


def _add_sampling_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("questions and sampling")
    g.add_argument("-n", "--samples", type=int, default=8, dest="n", help="samples per question (default 8)")
    add_sampling_args(g, max_new_tokens=128, seed_flag="--seed", batch_flag="--batch-size")
    g.add_argument("--question-field", default="question", help="field with the question text (default: question)")
    g.add_argument(
        "--fewshot",
        metavar="FILE",
        default=None,
        help="JSONL of solved examples (question, solution, optional choices) shown before each question; "
        "default: two built-in examples per kind in the \\boxed{} format",
    )
    g.add_argument("--no-fewshot", action="store_true", help="show no example (only the question)")
    g.add_argument("--extract", default="boxed", help=EXTRACT_HELP)
    g.add_argument("--verify-timeout", type=int, default=5, help="seconds per math-verify comparison (default 5)")


def _extract_modes(text: str) -> tuple[str, ...]:
    from eas.answers import EXTRACT_MODES

    modes = tuple(m.strip() for m in text.split(",") if m.strip())
    bad = [m for m in modes if m not in EXTRACT_MODES]
    if bad or not modes:
        raise UsageError(f"--extract: unknown mode {', '.join(bad) or '(none)'} (use {', '.join(EXTRACT_MODES)})")
    return modes


def _fewshot(args: argparse.Namespace) -> list[Any]:
    from eas.sampling.questions import load_fewshot

    return [] if args.no_fewshot else load_fewshot(args.fewshot)


STUDY_EXTRA = {"scipy": "scipy", "math_verify": "math-verify", "matplotlib": "matplotlib"}


def _require_study_extra() -> None:
    """Fail early, with the pip line that fixes it, when the [study] extra is missing."""
    import importlib.util

    missing = [pkg for mod, pkg in STUDY_EXTRA.items() if importlib.util.find_spec(mod) is None]
    if missing:
        raise ImportError(f"the study needs {', '.join(missing)}: pip install 'eas[study]'")


def _passive_openmp() -> None:
    """Let idle OpenMP threads sleep instead of spin (unless the user chose otherwise).

    On cores shared with other processes, spinning threads stall each other: a 64x576 by
    576x1536 matmul took 20 ms with two spinning threads under load and 1.4 ms with
    passive ones. It only takes effect when set before torch is first imported.
    """
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _backend(args: argparse.Namespace) -> Any:
    from eas.backends.load import load_backend
    from eas.cli.common import backend_options

    try:
        if getattr(args, "backend", "hf") == "openai":
            return load_backend(**backend_options(args, None))
        return load_backend(args.model, device=args.device, dtype=args.dtype, trust_remote_code=args.trust_remote_code)
    except (OSError, ValueError, ConnectionError) as exc:
        raise model_load_error(args.model, exc) from None


def _check_out_file(path: str, suffix: str) -> None:
    p = Path(path)
    if p.suffix.lower() != suffix:
        raise UsageError(f"{path}: the output must be a {suffix} file")
    if not p.parent.is_dir():
        raise UsageError(f"{p.parent}: output folder does not exist")


# --- eas sample ----------------------------------------------------------------------------


def cmd_sample(args: argparse.Namespace) -> int:
    _require_study_extra()
    _passive_openmp()
    from eas.answers import AnswerMatcher
    from eas.sampling.questions import load_questions
    from eas.sampling.sample import sample_file

    _check_out_file(args.out, ".jsonl")
    sampling, modes = sampling_from_args(args, n=args.n), _extract_modes(args.extract)
    monitored = monitor_from_args(args)
    questions = load_questions(args.questions, args.question_field)
    summary = sample_file(
        questions,
        args.out,
        (lambda: check_online_backend(_backend(args))) if monitored else (lambda: _backend(args)),
        sampling,
        fewshot=_fewshot(args),
        extract=modes,
        matcher=AnswerMatcher(args.verify_timeout),
        settings={"model": args.model, "dtype": args.dtype, "backend": args.backend, "base_url": args.base_url},
        overwrite=args.overwrite,
        progress=not args.quiet,
        **({} if monitored is None else {"eas": monitored[0], "monitor": monitored[1]}),
    )
    state = "already complete: " if summary.already_complete else ""
    log.info("%s%d samples -> %s", state, summary.rows, args.out)
    return EXIT_OK


# --- eas study / demo ----------------------------------------------------------------------


def _print_result(result: Any, wall_s: float) -> None:
    from eas.study.tables import markdown_table

    print(markdown_table(result.correlations, "answer_entropy"))
    print(f"wall time: {wall_s:.0f} s ({wall_s / 60:.1f} min)")
    print(f"report: {result.report_html}  (also {result.report_md.name}, per_question.jsonl, correlations.csv)")


def cmd_study(args: argparse.Namespace) -> int:
    _require_study_extra()
    _passive_openmp()
    from eas.sampling.questions import load_questions
    from eas.study.study import StudyConfig, run_study

    started = time.monotonic()
    try:
        config = StudyConfig(
            sampling=sampling_from_args(args, n=args.n),
            eas=eas_config_from_args(args),
            extract=_extract_modes(args.extract),
            score_samples=args.score_samples,
            first_boxed=not args.sample0,
            alpha=args.alpha,
            verify_timeout_s=args.verify_timeout,
            label=args.label or Path(args.questions).stem,
            online=args.online,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    questions = load_questions(args.questions, args.question_field)
    shots = _fewshot(args)
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise UsageError(f"{args.out}: exists and is not a folder")
    backend = check_online_backend(_backend(args)) if args.online else _backend(args)
    result = run_study(questions, backend, config, args.out, shots, dataset=args.questions, progress=not args.quiet)
    _print_result(result, time.monotonic() - started)
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    _require_study_extra()
    _passive_openmp()
    from eas.study.demo import run_demo

    started = time.monotonic()
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise UsageError(f"{args.out}: exists and is not a folder")
    backend = _backend(args)
    eas = eas_config_from_args(args)
    result = run_demo(backend, args.out, quick=args.quick, progress=not args.quiet, eas=eas)
    _print_result(result, time.monotonic() - started)
    return EXIT_OK


# --- eas correlate -------------------------------------------------------------------------


def cmd_correlate(args: argparse.Namespace) -> int:
    _require_study_extra()
    from eas.study.tables import correlate_files

    labels = args.label or [Path(f).parent.name or Path(f).stem for f in args.files]
    if len(labels) != len(args.files):
        raise UsageError(f"{len(args.files)} files but {len(labels)} --label values (give one per file, in order)")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: exists and is not a folder")
    text = correlate_files(args.files, labels, args.reference, out, args.bootstrap_resamples, args.seed)
    print(text)
    log.info("wrote %s and %s", out / "correlations.csv", out / "correlations.md")
    return EXIT_OK


# --- eas plot trajectory -------------------------------------------------------------------


def cmd_plot_trajectory(args: argparse.Namespace) -> int:
    _require_study_extra()
    from eas.storage.files import read_table
    from eas.study.plots import save, trajectory_figure

    _check_out_file(args.out, ".png")
    rows = {str(r.get("id")): r for r in read_table(args.input)}
    traces = []
    for rid in args.id:
        row = rows.get(rid)
        if row is None:
            raise UsageError(f"{args.input}: no row with id {rid!r}")
        if not row.get("trajectory"):
            raise UsageError(f"{args.input}: row {rid!r} has no trajectory (score with --trajectory)")
        traces.append((rid, row["trajectory"]))
    save(trajectory_figure(traces), args.out)
    log.info("wrote %s", args.out)
    return EXIT_OK


# --- parsers -------------------------------------------------------------------------------


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register ``sample``, ``study``, ``correlate``, ``plot`` and ``demo``."""
    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser(
        "sample",
        help="sample N answers per question and grade them",
        description="Sample N answers per question (JSONL: id, question, answer, optional choices) with "
        "few-shot prompts, extract and grade each final answer. One output row per sample: id (qid/k), "
        "prompt, response, extracted, correct, answer_class. The output can be scored with "
        "`eas score OUT --no-chat-template`. Resumable: rerun the same command after a crash and the "
        "finished batches are kept (same seed => the same samples).",
    )
    p.add_argument("questions", help="questions, .jsonl")
    p.add_argument("--out", required=True, help="samples, .jsonl")
    p.add_argument("--overwrite", action="store_true", help="start again even if OUT was made with other settings")
    add_model_args(p)
    add_backend_args(p, ray=False)
    _add_sampling_args(p)
    add_monitor_args(p)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser(
        "study",
        help="sample, grade, score, correlate, draw and report (docs/method.md sections 2-3)",
        formatter_class=fmt,
        description="The uncertainty study: N samples per question -> answer entropy, correctness entropy, "
        "pass rate -> EAS and the baseline metrics of sample 0 (or the mean of the first k) -> Pearson r "
        "(95 % bootstrap CI), Spearman rho, AUROC and PRR of every metric -> figures and a report.\n\n"
        "Writes into OUT: samples.jsonl, per_question.jsonl, correlations.csv, fig*.png, report.md, "
        "report.html, settings.json.",
    )
    p.add_argument("questions", help="questions, .jsonl (id, question, answer, optional choices with a letter answer)")
    p.add_argument("--out", required=True, help="output folder (created)")
    add_model_args(p)
    _add_sampling_args(p)
    g = p.add_argument_group("study")
    g.add_argument(
        "--score-samples",
        type=int,
        default=1,
        metavar="K",
        help="average the metrics over the first K samples that have a boxed answer (default 1)",
    )
    g.add_argument(
        "--sample0",
        action="store_true",
        help="score the first K samples whatever they hold, as the paper (a question whose sample 0 has no boxed "
        "answer then drops out); default: the first K with a boxed answer",
    )
    g.add_argument(
        "--trigger", default=EASConfig.trigger, help="answer-forcing suffix of every probe (default: %(default)s)"
    )
    g.add_argument("--alpha", type=float, default=0.5, help="decay exponent of Fig. 3's decayed cumulative probability")
    g.add_argument("--label", default=None, help="name of this model/dataset in the tables (default: file name)")
    add_stride_args(g)
    add_online_study_arg(g)
    p.set_defaults(func=cmd_study)

    p = sub.add_parser(
        "correlate",
        help="correlation table from one or more per_question.jsonl files",
        description="For every metric in each per-question file: Pearson r and p, 95 % bootstrap CI of r, "
        "Spearman rho, n, and AUROC / PRR for predicting a wrong sample-0 answer. Writes OUT/correlations.csv "
        "and OUT/correlations.md (one column per file, shaped like the paper's Table 2) and prints the table.",
    )
    p.add_argument("files", nargs="+", help="per_question.jsonl files (from eas study)")
    p.add_argument("--label", action="append", help="column name of each file, in order (repeat the option)")
    p.add_argument("--reference", choices=["answer_entropy", "correctness_entropy"], default="answer_entropy")
    p.add_argument("--out", default=".", help="output folder, created if missing (default: current folder)")
    p.add_argument("--bootstrap-resamples", type=int, default=2000, help="resamples of the bootstrap CI")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    p.set_defaults(func=cmd_correlate)

    p = sub.add_parser("plot", help="draw a figure from results", description="Draw a figure from results files.")
    plot_sub = p.add_subparsers(dest="figure", metavar="FIGURE", required=True)
    q = plot_sub.add_parser(
        "trajectory",
        help="entropy trajectory of one or more traces, area shaded, EAS in the title",
        description="Fig. 1: H_t along a trace with the area (EAS) shaded. INPUT is a scored file written with "
        "--trajectory (eas score) or a per_question.jsonl (eas study).",
    )
    q.add_argument("input", help="scored .jsonl/.parquet with a trajectory column")
    q.add_argument(
        "--id", required=True, action="append", help="id of the row to draw (repeat for side-by-side panels)"
    )
    q.add_argument("--out", required=True, help="figure, .png")
    q.set_defaults(func=cmd_plot_trajectory)

    p = sub.add_parser(
        "demo",
        help="the study on the built-in question set with the embedded model",
        description="Runs `eas study` on the built-in questions (60 open, 20 multiple choice) with n = 8 "
        "samples each (--quick: 16 questions, n = 4), prints the correlation table and the wall time, and "
        "writes the report into OUT.",
    )
    p.add_argument("--quick", action="store_true", help="a small subset, about two minutes on a laptop CPU")
    p.add_argument("--out", default="demo_out", help="output folder (default: demo_out)")
    add_model_args(p)
    add_stride_args(p.add_argument_group("metric"))
    p.set_defaults(func=cmd_demo)
