"""Stop rules on hand-made curves, the RULE:k=v parser, and a stop in a monitored run."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from support import backend

from eas.config import EASConfig, MonitorConfig, SamplingConfig
from eas.sampling.online import sample_questions_online
from eas.sampling.online.setup import end_of_thinking
from eas.sampling.questions import Question
from eas.sampling.rules import RULES, Step, is_boundary, parse_rule, parse_sweep
from eas.sampling.rules.budget import Budget
from eas.sampling.rules.eat import EAT
from eas.sampling.rules.plateau import Plateau


def _run(rule, entropies, boundaries=(), top=None):
    """Feed a curve (None = no probe at t) to a fresh checker; (t, reason) of the first stop."""
    check = rule.start()
    area = 0.0
    for t, h in enumerate(entropies, start=1):
        area += h or 0.0
        p = None if top is None else top[t - 1]
        reason = check(Step(t, 0, "x", "x" * t, h, p, area, t in boundaries))
        if reason is not None:
            return t, reason
    return None, None


def test_plateau_every_value_or_the_mean_over_w_tokens():
    curve = [0.1, 0.1, 0.9, 0.1, 0.1, 0.1, 0.1, 0.1]
    # every value below 0.5 for 4 tokens: the run restarts after t=3, so t = 4..7
    assert _run(Plateau(h=0.5, w=4, min_tokens=0), curve)[0] == 7
    # the mean over the last 4 tokens is already 0.3 at t = 4
    assert _run(Plateau(h=0.5, w=4, min_tokens=0, mean=True), curve)[0] == 4
    assert _run(Plateau(h=0.5, w=4, min_tokens=8), curve)[0] == 8  # not before min_tokens
    assert _run(Plateau(h=0.05, w=2, min_tokens=0), curve) == (None, None)
    # steps without a probe are skipped: the run is judged by the probes it holds
    t, reason = _run(Plateau(h=0.5, w=4, min_tokens=0), [0.1, None, None, 0.2, 0.9])
    assert t == 4 and reason.startswith("plateau: H 0.2 < 0.5 bits")


def _eat_reference(values, alpha, delta, m):
    """EAT's own formulas over the whole array (exponential_moving_average / _variance),
    and the first boundary (1-based) at or after the m-th whose variance is below delta."""
    values = np.asarray(values, dtype=float)
    mean, var = np.zeros_like(values), np.zeros_like(values)
    mean[0] = values[0]
    for i in range(1, len(values)):
        mean[i] = alpha * values[i] + (1 - alpha) * mean[i - 1]
    for i in range(1, len(values)):
        var[i] = alpha * (values[i] - mean[i]) ** 2 + (1 - alpha) * var[i - 1]
    hits = [i + 1 for i in range(len(values)) if i + 1 >= m and var[i] < delta]
    return hits[0] if hits else None, var


def test_eat_stops_when_the_ema_variance_at_boundaries_falls_below_delta():
    at_boundaries = [3.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
    first, var = _eat_reference(at_boundaries, 0.5, 0.01, 3)
    assert first == 10 and var[9] == pytest.approx(0.0063304901123047)  # worked by hand in the docs
    # boundaries every third token; the values in between are not boundaries and do not count
    curve, bounds = [], set()
    for h in at_boundaries:
        curve += [9.0, 9.0, h]
        bounds.add(len(curve))
    t, reason = _run(EAT(alpha=0.5, delta=0.01, m=3), curve, bounds)
    assert t == 3 * first and "after 10 boundaries" in reason
    # the defaults (alpha 0.2, delta 1e-4, m 4): a constant curve stops at the 4th boundary, not before
    t, _ = _run(EAT(), [0.7] * 12, {3, 6, 9, 12})
    assert t == 12 and _eat_reference([0.7] * 4, 0.2, 1e-4, 4)[0] == 4


def test_confidence_reads_the_top_probability_at_boundaries_only():
    from eas.sampling.rules.confidence import Confidence

    top = [0.5, 0.99, 0.96, 0.99]
    assert _run(Confidence(p=0.95), [1.0] * 4, {1, 3}, top)[0] == 3  # t=2 is not a boundary
    assert _run(Confidence(p=0.95, min_tokens=4), [1.0] * 4, {1, 3, 4}, top)[0] == 4
    assert _run(Confidence(p=0.999), [1.0] * 4, {1, 3, 4}, top) == (None, None)


def test_budget_and_boundaries():
    assert _run(Budget(n=3), [None] * 6) == (3, "budget: 3 tokens")
    assert is_boundary("step one.\n", "\nstep") and is_boundary("a", ".\n\n") and not is_boundary("a\n", "b\n")


def test_parse_rule_and_its_errors():
    assert set(RULES) >= {"plateau", "eat", "confidence", "budget"}
    rule = parse_rule("plateau:h=0.3,w=16,mean=true")
    assert rule == Plateau(h=0.3, w=16, mean=True) and parse_rule(rule.spec()) == rule
    assert parse_rule("eat") == EAT() and parse_rule(" budget : n = 7 ") == Budget(n=7)
    for spec, message in [
        ("nope", "unknown stop rule 'nope'"),
        ("eat:beta=1", "bad setting 'beta=1'"),
        ("budget:n=ten", "n='ten' is not an integer"),
        ("budget:n=0", "n must be >= 1"),
        ("plateau:mean=maybe", "is not true/false"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_rule(spec)


def test_end_of_thinking_follows_the_chat_template():
    assert end_of_thinking(SimpleNamespace(chat_template="{{ '<think>' }}..</think>"), MonitorConfig()) == (
        "\n</think>\n\n"
    )
    assert end_of_thinking(SimpleNamespace(chat_template="<|im_start|>"), MonitorConfig()) == ""
    assert end_of_thinking(SimpleNamespace(chat_template=None), MonitorConfig(end_of_thinking="\nDone.")) == "\nDone."


def test_a_stop_forces_the_answer_greedily(tiny_model, tokenizer):
    be = backend(tiny_model, tokenizer)
    questions = [Question(i, f"What is {i} + 5?") for i in range(2)]
    sampling = SamplingConfig(n=2, temperature=1.0, max_new_tokens=20, batch_size=4, seed=9)
    monitor = MonitorConfig(stop="budget:n=5", answer_tokens=6, trajectory=True)
    rows = sample_questions_online(questions, be, sampling, EASConfig(end="response"), monitor)
    suffix = tokenizer("\\boxed{", add_special_tokens=False)["input_ids"]
    for row in rows:
        assert row["stopped_at"] == 5 and row["stop_reason"] == "budget: 5 tokens"
        assert row["n_probes"] == 5 == len(row["trajectory"]) and row["reasoning_tokens"] == 5
        assert row["area_at_stop"] == pytest.approx(sum(row["trajectory"])) == pytest.approx(row["eas"])
        assert "\\boxed{" in row["response"] and row["final_answer"] is not None
        assert row["tokens_generated"] <= 5 + len(suffix) + 6
    # the answer is decoded greedily after the reasoning and the forced trigger (transformers' generate)
    from eas.backends.prompts import text_prompt_ids
    from eas.sampling.online import BatchMonitor, online_setup
    from eas.sampling.questions import build_prompt

    prompt = build_prompt(tokenizer, questions[0], [])
    watch = BatchMonitor(tokenizer, 1, online_setup(tokenizer, EASConfig(), monitor), 0, 20)
    for _ in be.decode_watched([prompt], SamplingConfig(n=1, temperature=1.0, max_new_tokens=20, seed=4), watch):
        pass
    done = watch.finished[0]
    assert done.stop_t == 5 and done.answer_ids[: len(suffix)] == suffix
    ctx = torch.tensor([text_prompt_ids(tokenizer, prompt) + done.reasoning.ids + suffix])
    ref = tiny_model.generate(ctx, attention_mask=torch.ones_like(ctx), do_sample=False, max_new_tokens=6)
    assert done.answer_ids[len(suffix) :] == ref[0, ctx.shape[1] :].tolist()


def test_a_sweep_sets_the_rules_threshold_or_a_named_setting():
    assert parse_sweep("plateau:w=16", "0.3,1") == [Plateau(h=0.3, w=16), Plateau(h=1.0, w=16)]
    assert parse_sweep("eat", "m=2, 3") == [EAT(m=2), EAT(m=3)]
    assert parse_sweep("budget:n=7", None) == [Budget(n=7)]
    assert {name: cls.swept for name, cls in RULES.items()} == {
        "budget": "n",
        "confidence": "p",
        "eat": "delta",
        "plateau": "h",
    }
    for spec, sweep, message in [
        ("eat", "x=1", "has no setting 'x'"),
        ("budget", "0", "n must be >= 1"),
        ("budget", "4,4", "a value is repeated"),
        ("budget", " , ", "give the values"),
        ("plateau", "h=low", "h='low' is not a number"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_sweep(spec, sweep)
