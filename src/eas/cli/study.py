"""CLI of the uncertainty study: ``eas sample``, ``study``, ``correlate``, ``plot``, ``demo``.

Each handler builds the settings, calls into ``eas.study.study`` / ``eas.study.plots`` / ``eas.study.demo``
and returns the exit status; usage problems raise ``UsageError``/``InputError`` (exit 2).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

from eas.cli import options
from eas.cli.common import (
    EXIT_OK,
    UsageError,
    add_backend_args,
    add_model_args,
    add_sampling_args,
    add_stride_args,
    backend_loader,
    backend_spec,
    eas_config_from_args,
    load_model_backend,
    sampling_from_args,
)
from eas.cli.online import add_monitor_args, add_online_study_arg, check_online_backend, monitor_from_args
from eas.config import EASConfig, SamplingConfig
from eas.sampling.questions import load_questions
from eas.sampling.threads import passive_openmp
from eas.study.study import TRACES_PAGE, StudyConfig

log = logging.getLogger("eas")


def add_question_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("questions and sampling")
    options.add_fields(g, SamplingConfig, ("n",))
    add_sampling_args(g, seed_flag="--seed", batch_flag="--batch-size")
    options.add_param(g, load_questions, "question_field", "--question-field", help="field with the question text")
    g.add_argument(
        "--fewshot",
        metavar="FILE",
        default=None,
        help="JSONL of solved examples (question, solution, optional choices) shown before each question; "
        "default: two built-in examples per kind in the \\boxed{} format",
    )
    g.add_argument("--no-fewshot", action="store_true", help="show no example (only the question)")
    options.add_fields(g, StudyConfig, ("extract", "verify_timeout_s"))


def extract_modes(args: argparse.Namespace) -> tuple[str, ...]:
    from eas.answers import check_extract_modes

    try:
        return check_extract_modes(args.extract)
    except ValueError as exc:
        raise options.usage_error(exc, args, StudyConfig) from None


def fewshot_from_args(args: argparse.Namespace) -> list[Any]:
    from eas.sampling.questions import load_fewshot

    return [] if args.no_fewshot else load_fewshot(args.fewshot)


STUDY_EXTRA = {"scipy": "scipy", "math_verify": "math-verify", "matplotlib": "matplotlib"}


def require_study_extra() -> None:
    """Fail early, with the pip line that fixes it, when the [study] extra is missing."""
    import importlib.util

    missing = [pkg for mod, pkg in STUDY_EXTRA.items() if importlib.util.find_spec(mod) is None]
    if missing:
        raise ImportError(f"the study needs {', '.join(missing)}: pip install 'eas[study]'")


def _check_out_file(path: str, suffix: str) -> None:
    p = Path(path)
    if p.suffix.lower() != suffix:
        raise UsageError(f"{path}: the output must be a {suffix} file")
    if not p.parent.is_dir():
        raise UsageError(f"{p.parent}: output folder does not exist")


# --- eas sample ----------------------------------------------------------------------------


def cmd_sample(args: argparse.Namespace) -> int:
    require_study_extra()
    passive_openmp()
    _check_out_file(args.out, ".jsonl")
    sampling, modes = sampling_from_args(args), extract_modes(args)
    monitored = monitor_from_args(args)
    questions = load_questions(args.questions, args.question_field)
    backend = backend_loader(args)  # checked now, before OUT's run store exists; loaded when needed
    from eas.backends.openai.client import ServerError

    try:
        summary = _sample_file(args, questions, backend, sampling, modes, monitored)
    except ServerError as exc:
        raise UsageError(f"the server failed: {exc} (the batches already written are kept; rerun to resume)") from None
    except ValueError as exc:
        if monitored is None or getattr(args, "backend", "hf") != "openai":
            raise
        raise UsageError(str(exc)) from None  # a server the controller cannot drive (eas.sampling.online.server)
    state = "already complete: " if summary.already_complete else ""
    log.info("%s%d samples -> %s", state, summary.rows, args.out)
    return EXIT_OK


def _sample_file(
    args: argparse.Namespace, questions: Any, backend: Any, sampling: Any, modes: Any, monitored: Any
) -> Any:
    from eas.answers import AnswerMatcher
    from eas.sampling.sample import sample_file

    return sample_file(
        questions,
        args.out,
        (lambda: check_online_backend(backend())) if monitored else backend,
        sampling,
        fewshot=fewshot_from_args(args),
        extract=modes,
        matcher=AnswerMatcher(args.verify_timeout_s),
        settings={"backend": backend_spec(args, None).resolved()},  # as resolved here: dtype, device, ...
        overwrite=args.overwrite,
        progress=not args.quiet,
        **({} if monitored is None else {"eas": monitored[0], "monitor": monitored[1]}),
    )


# --- eas study / demo ----------------------------------------------------------------------


def _print_result(result: Any, wall_s: float) -> None:
    from eas.study.tables import markdown_table

    print(markdown_table(result.correlations, "answer_entropy"))
    print(f"wall time: {wall_s:.0f} s ({wall_s / 60:.1f} min)")
    also = f"{result.report_md.name}, per_question.jsonl, correlations.csv, {result.traces_html.name}"
    print(f"report: {result.report_html}  (also {also})")


def cmd_study(args: argparse.Namespace) -> int:
    require_study_extra()
    passive_openmp()
    from eas.study.study import run_study

    started = time.monotonic()
    config = options.build(
        StudyConfig,
        args,
        sampling=sampling_from_args(args),
        eas=eas_config_from_args(args),
        label=args.label or Path(args.questions).stem,
        online=args.online,
    )
    questions = load_questions(args.questions, args.question_field)
    shots = fewshot_from_args(args)
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise UsageError(f"{args.out}: exists and is not a folder")
    backend = load_model_backend(args)
    if args.online:
        backend = check_online_backend(backend, server_ok=False)
    result = run_study(questions, backend, config, args.out, shots, dataset=args.questions, progress=not args.quiet)
    _print_result(result, time.monotonic() - started)
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    require_study_extra()
    passive_openmp()
    from eas.study.demo import run_demo

    started = time.monotonic()
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise UsageError(f"{args.out}: exists and is not a folder")
    eas = eas_config_from_args(args)
    backend = load_model_backend(args)
    result = run_demo(backend, args.out, quick=args.quick, progress=not args.quiet, eas=eas)
    _print_result(result, time.monotonic() - started)
    return EXIT_OK


# --- eas correlate -------------------------------------------------------------------------


def cmd_correlate(args: argparse.Namespace) -> int:
    require_study_extra()
    from eas.study.tables import correlate_files

    labels = args.label or [Path(f).parent.name or Path(f).stem for f in args.files]
    if len(labels) != len(args.files):
        raise UsageError(f"{len(args.files)} files but {len(labels)} --label values (give one per file, in order)")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: exists and is not a folder")
    text = correlate_files(args.files, labels, args.reference, out)
    print(text)
    log.info("wrote %s and %s", out / "correlations.csv", out / "correlations.md")
    return EXIT_OK


# --- eas plot trajectory -------------------------------------------------------------------


def cmd_plot_trajectory(args: argparse.Namespace) -> int:
    require_study_extra()
    from eas.storage.files import read_table
    from eas.study.plots import save, trajectory_figure
    from eas.view.rows import pick_rows, require_trajectory

    _check_out_file(args.out, ".png")
    rows = pick_rows(read_table(args.input), args.id, str(args.input))
    traces = [(str(row.get("id")), require_trajectory(row, str(args.input))) for row in rows]
    save(trajectory_figure(traces), args.out)
    log.info("wrote %s", args.out)
    return EXIT_OK


# --- parsers -------------------------------------------------------------------------------


SAMPLE_EXAMPLES = """examples:
  eas sample questions.jsonl --out samples.jsonl -n 8
  eas sample questions.jsonl --out samples.jsonl -n 4 --temperature 0 --no-fewshot   # greedy, no examples
  eas sample questions.jsonl --out samples.jsonl --backend openai --base-url http://127.0.0.1:8080/v1
  eas score samples.jsonl --no-chat-template --out scored.jsonl                       # then score them"""
STUDY_EXAMPLES = """examples:
  eas study questions.jsonl --out study/                        # the embedded model, n = 8
  eas study questions.jsonl --out study/ --model Qwen/Qwen2.5-0.5B-Instruct --score-samples 4
  eas study questions.jsonl --out study/ --probe-stride 8       # 8 times fewer probes, EAS estimated
  eas view study/ --out study/traces.html                       # the traces again, token by token"""
CORRELATE_EXAMPLES = """examples:
  eas correlate study/per_question.jsonl --out tables/
  eas correlate a/per_question.jsonl b/per_question.jsonl --label smollm --label qwen --out tables/
  eas correlate study/per_question.jsonl --reference correctness_entropy"""
PLOT_EXAMPLES = """examples:
  eas score traces.jsonl --trajectory --out scored.jsonl
  eas plot trajectory scored.jsonl --id q17/0 --out q17.png
  eas plot trajectory study/per_question.jsonl --id q3 --id q17 --out two.png   # side by side"""
DEMO_EXAMPLES = """examples:
  eas demo --quick                      # about two minutes on a laptop CPU
  eas demo --out demo_out/              # the full built-in set (80 questions, n = 8)"""


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register ``sample``, ``study``, ``correlate``, ``plot`` and ``demo``."""
    from eas.study.tables import REFERENCES, correlation_rows

    p = sub.add_parser(
        "sample",
        help="sample N answers per question and grade them",
        description="Sample N answers per question (JSONL: id, question, answer, optional choices) with "
        "few-shot prompts, extract and grade each final answer. One output row per sample: id (qid/k), "
        "prompt, response, extracted, correct, answer_class. The output can be scored with "
        "`eas score OUT --no-chat-template`. Resumable: rerun the same command after a crash and the "
        "finished batches are kept (same seed => the same samples).",
        epilog=SAMPLE_EXAMPLES,
    )
    p.add_argument("questions", help="questions, .jsonl")
    p.add_argument("--out", required=True, help="samples, .jsonl")
    p.add_argument("--overwrite", action="store_true", help="start again even if OUT was made with other settings")
    add_model_args(p)
    add_backend_args(p, ray=False)
    add_question_args(p)
    add_monitor_args(p)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser(
        "study",
        help="sample, grade, score, correlate, draw and report (docs/method.md sections 2-3)",
        description="The uncertainty study: N samples per question -> answer entropy, correctness entropy, "
        "pass rate -> EAS and the baseline metrics of sample 0 (or the mean of the first k) -> Pearson r "
        "(95 % Fisher-z CI), Spearman rho, AUROC and PRR of every metric -> figures and a report.\n\n"
        "Writes into OUT: samples.jsonl, per_question.jsonl, correlations.csv, fig*.png, report.md, "
        f"report.html, settings.json and {TRACES_PAGE} (every question's scored sample token by token, "
        "as eas view draws it; linked from the report).",
        epilog=STUDY_EXAMPLES,
    )
    p.add_argument("questions", help="questions, .jsonl (id, question, answer, optional choices with a letter answer)")
    p.add_argument("--out", required=True, help="output folder (created)")
    add_model_args(p)
    add_question_args(p)
    g = p.add_argument_group("study")
    options.add_fields(g, StudyConfig, ("score_samples", "first_boxed", "alpha"))
    options.add_fields(g, EASConfig, ("trigger",))
    g.add_argument("--label", default=None, help="name of this model/dataset in the tables (default: file name)")
    add_stride_args(g)
    add_online_study_arg(g)
    p.set_defaults(func=cmd_study)

    p = sub.add_parser(
        "correlate",
        help="correlation table from one or more per_question.jsonl files",
        description="For every metric in each per-question file: Pearson r and p, 95 % Fisher-z CI of r, "
        "Spearman rho, n, and AUROC / PRR for predicting a wrong sample-0 answer. Writes OUT/correlations.csv "
        "and OUT/correlations.md (one column per file, shaped like the paper's Table 2) and prints the table.",
        epilog=CORRELATE_EXAMPLES,
    )
    p.add_argument("files", nargs="+", help="per_question.jsonl files (from eas study)")
    p.add_argument("--label", action="append", help="column name of each file, in order (repeat the option)")
    options.add_param(
        p,
        correlation_rows,
        "reference",
        "--reference",
        choices=REFERENCES,
        help="the uncertainty each metric is correlated with: answer_entropy (entropy of the N sampled answers' "
        "classes) or correctness_entropy (binary entropy of the pass rate)",
    )
    p.add_argument("--out", default=".", help="output folder, created if missing (default: current folder)")
    p.set_defaults(func=cmd_correlate)

    p = sub.add_parser("plot", help="draw a figure from results", description="Draw a figure from results files.")
    plot_sub = p.add_subparsers(dest="figure", metavar="FIGURE", required=True)
    q = plot_sub.add_parser(
        "trajectory",
        help="entropy trajectory of one or more traces, area shaded, EAS in the title",
        description="Fig. 1: H_t along a trace with the area (EAS) shaded and the row's own EAS in the title. "
        "INPUT is a scored file written with --trajectory (eas score) or a per_question.jsonl (eas study). "
        "Rows scored with --probe-stride k: the probed values at their positions t (trajectory_t), the title "
        "says 'stride k, n of T-1 probed' and gives the estimate; amortised rows: predicted H_t, dashed, "
        "labelled predicted.",
        epilog=PLOT_EXAMPLES,
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
        epilog=DEMO_EXAMPLES,
    )
    p.add_argument("--quick", action="store_true", help="a small subset, about two minutes on a laptop CPU")
    p.add_argument("--out", default="demo_out", help="output folder (default: %(default)s)")
    add_model_args(p)
    add_stride_args(p.add_argument_group("metric"))
    p.set_defaults(func=cmd_demo)
