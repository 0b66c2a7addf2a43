"""The early-exit table: per arm, accuracy against the full run (paired), tokens saved.

Per arm (a stop rule at one threshold), over every sample of ``runs.jsonl``:

* ``accuracy``: share of samples whose exit answer is correct (a sample the rule never
  stopped keeps the full run's answer); ``full_accuracy`` the same of the full runs;
* ``difference`` = accuracy - full_accuracy, with the paired bootstrap interval that
  resamples questions with all their samples (``eas.maths.bootstrap``);
* ``stopped``: share of samples the rule stopped;
* ``tokens``: mean tokens generated per sample (an exit's forced end of thinking, trigger
  and answer included); ``saved``: the full runs' mean minus it; ``saved_pct``: the share
  of all the full runs' tokens saved (100 * (1 - sum exit / sum full)).

The first row is the full run itself (``arm`` = ``full``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from eas.maths.bootstrap import paired_bootstrap
from eas.sampling.rules import parse_rule

FULL = "full"
COLUMNS = (
    "arm",
    "rule",
    "setting",
    "value",
    "samples",
    "questions",
    "stopped",
    "accuracy",
    "full_accuracy",
    "difference",
    "difference_low",
    "difference_high",
    "tokens",
    "full_tokens",
    "saved",
    "saved_pct",
)


def _swept(spec: str) -> tuple[str, str, Any]:
    """``(rule name, swept setting, its value)`` of an arm's spec."""
    rule = parse_rule(spec)
    key = type(rule).swept
    return rule.name, key, getattr(rule, key)


def summary_rows(
    runs: Sequence[Mapping[str, Any]], resamples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> list[dict[str, Any]]:
    """The table (see the module docstring): the full run, then one row per arm in run order."""
    if not runs:
        raise ValueError("no runs to summarise")
    qids = [str(r["question_id"]) for r in runs]
    full_ok = np.asarray([bool(r["correct"]) for r in runs], dtype=float)
    full_tok = np.asarray([r["tokens_generated"] for r in runs], dtype=float)
    base = {
        "samples": len(runs),
        "questions": len(set(qids)),
        "full_accuracy": float(full_ok.mean()),
        "full_tokens": float(full_tok.mean()),
    }
    rows = [
        {
            **dict.fromkeys(COLUMNS),
            **base,
            "arm": FULL,
            "rule": FULL,
            "stopped": 0.0,
            "accuracy": float(full_ok.mean()),
            "difference": 0.0,
            "tokens": float(full_tok.mean()),
            "saved": 0.0,
            "saved_pct": 0.0,
        }
    ]
    arms = [e["arm"] for e in runs[0]["exits"]]
    for a, spec in enumerate(arms):
        exits = [r["exits"][a] for r in runs]
        if any(e["arm"] != spec for e in exits):
            raise ValueError(f"the runs do not all hold arm {spec!r} in the same place")
        ok = np.asarray([bool(e["correct"]) for e in exits], dtype=float)
        tok = np.asarray([e["tokens"] for e in exits], dtype=float)
        diff = paired_bootstrap(ok, full_ok, qids, resamples, confidence, seed)
        rule, key, value = _swept(spec)
        rows.append(
            {
                **base,
                "arm": spec,
                "rule": rule,
                "setting": key,
                "value": value,
                "stopped": float(np.mean([e["stopped_at"] is not None for e in exits])),
                "accuracy": float(ok.mean()),
                "difference": diff.difference,
                "difference_low": diff.low,
                "difference_high": diff.high,
                "tokens": float(tok.mean()),
                "saved": float(full_tok.mean() - tok.mean()),
                "saved_pct": float(100 * (1 - tok.sum() / full_tok.sum())) if full_tok.sum() else float("nan"),
            }
        )
    return rows


def pareto_front(rows: Sequence[Mapping[str, Any]]) -> list[bool]:
    """Whether each row is on the Pareto front of (fewer tokens, higher accuracy): no other
    row has at most its tokens and at least its accuracy, one of them strictly."""
    out = []
    for r in rows:
        dominated = any(
            o["tokens"] <= r["tokens"]
            and o["accuracy"] >= r["accuracy"]
            and (o["tokens"] < r["tokens"] or o["accuracy"] > r["accuracy"])
            for o in rows
        )
        out.append(not dominated)
    return out
