"""Stop rules replayed on the curve of a full monitored sample.

A stop rule reads one ``Step`` per generated token and nothing else (``eas.sampling.rules``),
and a monitored run's tokens before its stop are those of the same run without a rule. So
the stop a rule would make in a monitored run is found by feeding it the recorded steps of a
sample monitored to its end, probed at every token: ``eas early-exit`` measures many rules
and thresholds on one generation this way, each exit paired with the full run it cuts short.

The steps are those the decoding loop hands a rule: t = 1..R over the reasoning tokens,
except the last one when the sample ran out of its token budget (that token ends the row
and is never fed, so no rule sees it), each with its probe, the text so far, whether it
completes a paragraph boundary, and the area so far.
"""

from __future__ import annotations

from collections.abc import Sequence

from eas.sampling.online.rows import OnlineSample
from eas.sampling.rules import Step, StopRule, is_boundary


def recorded_steps(sample: OnlineSample) -> list[Step]:
    """The steps a rule would have read in ``sample`` (monitored with a probe at every token, no stop).

    Raises:
        ValueError: the sample was stopped, or a step has no probe (``probe_every`` > 1).
    """
    if sample.stop_t is not None:
        raise ValueError("replay needs a sample monitored to its end (no stop rule)")
    ids, pieces = sample.reasoning.ids, sample.reasoning.pieces
    budget_end = len(sample.all_ids) == len(ids)  # no end token: the budget ended the row
    last = len(ids) - 1 if budget_end else len(ids)
    steps, text, area = [], "", 0.0
    for t in range(1, last + 1):
        probe = sample.probes.get(t)
        if probe is None:
            raise ValueError(f"no probe at t={t}: replay needs a probe at every token (probe_every 1)")
        piece = pieces[t - 1]
        area += probe.entropy
        steps.append(
            Step(t, ids[t - 1], piece, text + piece, probe.entropy, probe.top_prob, area, is_boundary(text, piece))
        )
        text += piece
    return steps


def first_stop(rule: StopRule, steps: Sequence[Step]) -> tuple[int, str] | None:
    """``(t, reason)`` of the first step at which a fresh checker of ``rule`` stops, or None."""
    check = rule.start()
    for step in steps:
        reason = check(step)
        if reason is not None:
            return step.t, reason
    return None
