"""``eas early-exit``: stop rules on the online EAS curve against the full generation.

The handler builds ``EarlyExitConfig`` from the options (each default in its dataclass),
runs ``eas.study.early_exit.run_early_exit`` (resumable), then summarises ``runs.jsonl``
and writes the report; it prints the table.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from eas.cli import options
from eas.cli.common import (
    EXIT_OK,
    UsageError,
    add_backend_args,
    add_model_args,
    backend_loader,
    backend_spec,
    sampling_from_args,
)
from eas.cli.online import check_online_backend
from eas.cli.study import add_question_args, extract_modes, fewshot_from_args, require_study_extra
from eas.config import EASConfig, MonitorConfig
from eas.sampling.questions import load_questions
from eas.sampling.threads import passive_openmp
from eas.study.early_exit.config import EarlyExitConfig

log = logging.getLogger("eas")

EXAMPLES = """examples:
  eas early-exit src/eas/data/questions.jsonl --rule plateau:w=16,min_tokens=32 --sweep 0.5,1,2 --out ee/
  eas early-exit questions.jsonl --rule budget --sweep 64,128,256 --rule eat --sweep 1e-4,1e-3 --out ee/
  eas early-exit questions.jsonl --rule confidence --sweep p=0.8,0.9,0.95 -n 8 --max-new-tokens 1024 --out ee/"""


def arms_from_args(args: argparse.Namespace) -> tuple[str, ...]:
    """Every arm's full rule spec: ``--rule`` i with ``--sweep`` i (a rule without one: one arm)."""
    from eas.sampling.rules import parse_sweep

    rules, sweeps = args.rule or [], args.sweep or []
    if not rules:
        raise UsageError("--rule: give at least one stop rule (plateau, eat, confidence, budget)")
    if len(sweeps) > len(rules):
        raise UsageError("--sweep: one per --rule at most, in the same order")
    arms = []
    for i, spec in enumerate(rules):
        try:
            arms += [r.spec() for r in parse_sweep(spec, sweeps[i] if i < len(sweeps) else None)]
        except ValueError as exc:
            raise UsageError(f"--rule {spec}: {exc}") from None
    if len(set(arms)) < len(arms):
        raise UsageError("--rule/--sweep: an arm is given twice")
    return tuple(arms)


def cmd_early_exit(args: argparse.Namespace) -> int:
    require_study_extra()
    passive_openmp()
    from eas.answers import AnswerMatcher
    from eas.storage.files import read_table
    from eas.study.early_exit import RUNS, markdown_table, run_early_exit, summary_rows, write_report

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: exists and is not a folder")
    monitor = options.build(MonitorConfig, args)
    eas = options.build(EASConfig, args)
    config = options.build(
        EarlyExitConfig, args, arms=arms_from_args(args), sampling=sampling_from_args(args), eas=eas, monitor=monitor
    )
    questions = load_questions(args.questions, args.question_field)
    backend = backend_loader(args)
    summary = run_early_exit(
        questions,
        out,
        lambda: check_online_backend(backend()),
        config,
        fewshot=fewshot_from_args(args),
        extract=extract_modes(args),
        matcher=AnswerMatcher(args.verify_timeout_s),
        backend_settings=backend_spec(args, None).resolved(),  # as resolved here: dtype, device, server, ...
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    runs = read_table(out / RUNS)
    rows = summary_rows(runs, config.resamples, config.confidence, config.bootstrap_seed)
    settings = {
        "questions": str(args.questions),
        "model": args.model,
        "sampling": {k: getattr(config.sampling, k) for k in ("n", "temperature", "top_p", "max_new_tokens", "seed")},
        "arms": list(config.arms),
        "trigger": config.eas.trigger,
        "answer_tokens": config.monitor.answer_tokens,
        "bootstrap": {"resamples": config.resamples, "confidence": config.confidence, "seed": config.bootstrap_seed},
    }
    paths = write_report(out, rows, settings)
    state = "already complete: " if summary.already_complete else ""
    log.info("%s%d samples -> %s", state, summary.rows, out / RUNS)
    print(markdown_table(rows))
    print(f"report: {paths['html']}  (also {paths['md'].name}, {paths['figure'].name}, {paths['csv'].name}, {RUNS})")
    return EXIT_OK


def _rules_help() -> str:
    """Every registered rule with its settings (from the registry, so a new rule shows up)."""
    import dataclasses

    from eas.sampling.rules import RULES

    return ", ".join(f"{n} ({', '.join(f.name for f in dataclasses.fields(c))})" for n, c in RULES.items())


def _swept_help() -> str:
    from eas.sampling.rules import RULES

    return ", ".join(f"{n} {c.swept}" for n, c in RULES.items())


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register ``early-exit``."""
    p = sub.add_parser(
        "early-exit",
        help="evaluate stop rules on the online EAS curve: accuracy and tokens saved against the full run",
        description="For each question and seed: the full generation, probed at every token (online EAS), and "
        "for every stop rule and threshold (an arm) the exit it would make: the reasoning up to the rule's "
        "stop, the end of thinking and the trigger forced, the answer decoded greedily. Every arm replays its "
        "rule on the same full generations, so each exit is paired with the run it cuts short. Grades both "
        "(math-verify) and writes into OUT: runs.jsonl (one row per sample, its exits per arm), summary.csv, "
        "pareto.png (tokens against accuracy), report.md and report.html; prints the table: per arm the "
        "share stopped, accuracy, its difference to the full run with a paired bootstrap interval over "
        "questions, mean tokens and tokens saved. Resumable: rerun the same command after a crash. "
        "With --backend openai the full runs and forced answers go through an OpenAI-compatible server "
        "(llama-server -np 2: streamed generation, one top-K probe request a token; docs/online.md).",
        epilog=EXAMPLES,
    )
    p.add_argument("questions", help="questions, .jsonl (id, question, answer, optional choices)")
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--overwrite", action="store_true", help="start again even if OUT was made with other settings")
    g = p.add_argument_group("stop rules")
    g.add_argument(
        "--rule",
        action="append",
        metavar="RULE",
        help=f"a stop rule, NAME[:k=v,...]: {_rules_help()}; repeat for more rules",
    )
    g.add_argument(
        "--sweep",
        action="append",
        metavar="[KEY=]V1,V2,...",
        help=f"the values of the matching --rule's threshold ({_swept_help()}; or KEY=... for another setting): "
        "one arm per value; repeat once per --rule, in order",
    )
    options.add_fields(g, MonitorConfig, ("answer_tokens", "end_of_thinking"))
    options.add_fields(g, EASConfig, ("trigger", "end"))
    options.add_fields(g, EarlyExitConfig, ("resamples", "confidence", "bootstrap_seed"))
    add_model_args(p)
    add_backend_args(p, ray=False)
    add_question_args(p)
    p.set_defaults(func=cmd_early_exit)
