"""The per-batch monitor of online EAS: what the decoding loop reports, turned into curves,
stop decisions and finished samples (a ``Watch``, ``eas.backends.watch``).

For every row it keeps the response's text piece by piece, the log-probability and
entropy of each generated token, and every probe; it decides which steps carry a probe
(every step, or under ``probe_every`` k the batch's seeded position in each block of k,
plus paragraph boundaries when the stop rule reads them), runs the stop rule on each
step, and on a stop hands the loop the ids to force (end of thinking + trigger), then
ends the row when the forced answer is complete. When a row ends it locates x_T, asks
for the probes the stratified plan still lacks, and keeps an ``OnlineSample``
(``eas.sampling.online.rows`` turns it into the output row).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eas.backends.watch import Emitted, Probe
from eas.maths.stratified import probe_plan
from eas.sampling.online.rows import OnlineSample, answer_probes
from eas.sampling.online.setup import THINK_END, OnlineSetup
from eas.sampling.online.text import IncrementalText
from eas.sampling.rules import Checker, Step, is_boundary


@dataclass(frozen=True)
class TokenEvent:
    """One token of one row, as streamed (``eas.sampling.online.stream``).

    Attributes:
        row: the row in its batch.
        t: 1-based index of the token among the row's tokens (reasoning, then answer).
        token: its id.
        text: its text piece.
        entropy: H_t in bits, or None (no probe at t, an end token, an answer token).
        area: EAS so far (reasoning tokens probed up to t).
        phase: ``"reason"`` or ``"answer"`` (forced/greedy after a stop).
        stop_reason: set on the token after which a stop rule fired.
    """

    row: int
    t: int
    token: int
    text: str
    entropy: float | None
    area: float
    phase: str = "reason"
    stop_reason: str | None = None


@dataclass
class _Row:
    sample: OnlineSample
    checker: Checker | None
    so_far: str = ""
    pending: Step | None = None
    forced: int = 0  # how many of answer_ids were forced (the rest is greedy)
    answer: IncrementalText | None = None


class BatchMonitor:
    """The ``Watch`` of one sampler batch of ``n_rows`` rows.

    Args:
        tokenizer: the model's tokenizer.
        n_rows: rows in the batch.
        setup: ids and settings (``online_setup``).
        seed: seeds the stratified positions (one draw for the whole batch).
        horizon: the most reasoning tokens a row can have (``max_new_tokens``).
    """

    def __init__(self, tokenizer: Any, n_rows: int, setup: OnlineSetup, seed: int, horizon: int):
        self.tokenizer, self.setup, self.seed = tokenizer, setup, seed
        self.suffix_ids, self.track_ids = setup.suffix_ids, setup.track_ids
        self.k = setup.monitor.probe_every
        rule = setup.rule
        self.boundary_probes = rule is not None and rule.boundary_probes
        # The batch's positions: one per block of k over t = 1 .. horizon (prefix-stable draws).
        self.planned = set(probe_plan(horizon + 1, self.k, seed).positions[:-1]) if self.k > 1 else None
        self.rows = [
            _Row(OnlineSample(r, IncrementalText(tokenizer), [], [], [], {}, 0.0), rule.start() if rule else None)
            for r in range(n_rows)
        ]
        self.events: list[TokenEvent] = []
        self.finished: dict[int, OnlineSample] = {}

    # -- the Watch protocol ---------------------------------------------------------------

    def emitted(self, tokens: Sequence[Emitted]) -> set[int]:
        done = set()
        for e in tokens:
            row = self.rows[e.row]
            s = row.sample
            s.all_ids.append(e.token)
            if e.forced:
                if self._answer_token(row, e):
                    done.add(e.row)
                continue
            if e.eos:
                self.events.append(TokenEvent(e.row, len(s.all_ids), e.token, "", None, s.area))
                continue
            piece = s.reasoning.push(e.token)
            s.logprobs.append(e.logprob)
            s.entropies.append(e.entropy)
            t = len(s.reasoning.ids)
            row.pending = Step(
                t, e.token, piece, row.so_far + piece, None, None, s.area, is_boundary(row.so_far, piece)
            )
            row.so_far += piece
        return done

    def probe_now(self, rows: Sequence[int]) -> bool:
        for r in rows:
            step = self.rows[r].pending
            if step is not None and (self._planned(step.t) or (self.boundary_probes and step.boundary)):
                return True
        return False

    def measured(self, rows: Sequence[int], probes: Sequence[Probe] | None) -> Mapping[int, Sequence[int]]:
        stops: dict[int, list[int]] = {}
        for i, r in enumerate(rows):
            row = self.rows[r]
            step, row.pending = row.pending, None
            if step is None:
                continue
            s = row.sample
            probe = probes[i] if probes is not None else None
            if probe is not None:
                s.probes[step.t] = probe
                if self._planned(step.t):
                    s.area += self.k * probe.entropy
            entropy = None if probe is None else probe.entropy
            top = None if probe is None else probe.top_prob
            step = Step(step.t, step.token, step.piece, step.text, entropy, top, s.area, step.boundary)
            reason = row.checker(step) if row.checker is not None else None
            self.events.append(TokenEvent(r, step.t, step.token, step.piece, entropy, s.area, "reason", reason))
            if reason is not None:
                s.stop_t, s.stop_reason = step.t, reason
                close = () if THINK_END in row.so_far else self.setup.close_ids
                forced = list(close) + list(self.suffix_ids)
                row.forced, row.answer = len(forced), IncrementalText(self.tokenizer)
                stops[r] = forced
        return stops

    def catch_up(self, row: int) -> Sequence[int]:
        r = self.rows[row]
        if r.pending is not None:  # the last token of a row that ran out of budget: never fed
            step, r.pending = r.pending, None
            self.events.append(TokenEvent(row, step.t, step.token, step.piece, None, r.sample.area))
        s = r.sample
        n, s.located = answer_probes(self.tokenizer, s, self.setup.eas.end)
        if n is None:
            return ()
        s.plan = probe_plan(n, self.k, self.seed)
        return [t for t in s.plan.positions if t not in s.probes]

    def ended(self, row: int, probes: Mapping[int, Probe]) -> None:
        s = self.rows[row].sample
        s.probes.update(probes)
        self.finished[row] = s

    # -- helpers --------------------------------------------------------------------------

    def _planned(self, t: int) -> bool:
        return self.planned is None or t in self.planned

    def _answer_token(self, row: _Row, e: Emitted) -> bool:
        """Record a forced/greedy answer token; whether the forced answer is complete."""
        s = row.sample
        s.answer_ids.append(e.token)
        piece = "" if e.eos else row.answer.push(e.token)  # type: ignore[union-attr]
        self.events.append(TokenEvent(e.row, len(s.all_ids), e.token, piece, None, s.area, "answer"))
        greedy = s.answer_ids[row.forced :]
        if not greedy:
            return False
        text = self.tokenizer.decode(greedy, skip_special_tokens=True)
        answer, complete = answer_so_far(text, self.setup.trigger_open_braces)
        if complete or e.eos or len(greedy) >= self.setup.monitor.answer_tokens:
            s.answer_text = answer.strip()
            return True
        return False


def answer_so_far(text: str, open_braces: int) -> tuple[str, bool]:
    """The forced answer in ``text`` (greedy tokens after the trigger) and whether it is complete:
    the trigger's open braces closed, or (a trigger without one) a line ended after some text."""
    if open_braces > 0:
        depth = open_braces
        for i, ch in enumerate(text):
            depth += (ch == "{") - (ch == "}")
            if depth == 0:
                return text[:i], True
        return text, False
    body = text.lstrip()
    cut = body.find("\n")
    return (body[:cut], True) if cut > 0 else (body, False)
