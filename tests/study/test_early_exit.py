"""``eas early-exit``: replayed stops equal monitored runs, the table, resuming, refusing stale output."""

import pytest
from support import backend, read_jsonl

from eas.config import EASConfig, MonitorConfig, SamplingConfig
from eas.records import InputError
from eas.sampling.online import sample_questions_online
from eas.sampling.questions import Question
from eas.sampling.sample import sample_questions
from eas.study.early_exit import EarlyExitConfig, pareto_front, run_early_exit, summary_rows

QUESTIONS = [Question("a", "What is 2 + 2?", "4"), Question("b", "What is 10 - 3?", "7")]
# Fire on the tiny random model: its entropies are ~15 bits, below 20 always.
ARMS = ("budget:n=4", "plateau:h=20.0,w=3,min_tokens=5,mean=False", "plateau:h=0.01,w=2,min_tokens=0,mean=False")


def _config(n=1, batch_size=1, arms=ARMS, **monitor):
    sampling = SamplingConfig(n=n, max_new_tokens=10, temperature=1.0, batch_size=batch_size, seed=3)
    return EarlyExitConfig(
        arms=arms, sampling=sampling, eas=EASConfig(end="response"), monitor=MonitorConfig(answer_tokens=4, **monitor)
    )


def test_each_exit_is_the_monitored_run_with_that_stop_rule(tiny_model, tokenizer, tmp_path):
    """One row per batch, so a stop changes no other row: the replayed exit is the run `eas sample --stop` makes."""
    be, config = backend(tiny_model, tokenizer), _config()
    run_early_exit(QUESTIONS, tmp_path, be, config)
    runs = read_jsonl(tmp_path / "runs.jsonl")
    plain = sample_questions(QUESTIONS, be, config.sampling)
    assert [r["response"] for r in runs] == [p["response"] for p in plain]  # the full runs: unmonitored samples
    for a, spec in enumerate(ARMS):
        real = sample_questions_online(
            QUESTIONS, be, config.sampling, config.eas, MonitorConfig(stop=spec, answer_tokens=4)
        )
        for run, live in zip(runs, real, strict=True):
            e = run["exits"][a]
            assert e["arm"] == spec and e["stopped_at"] == live["stopped_at"]
            if live["stopped_at"] is None:  # never fired: the full run's answer and tokens
                assert e["tokens"] == run["tokens_generated"] == live["tokens_generated"]
                assert e["correct"] == run["correct"]
                continue
            assert e["stop_reason"] == live["stop_reason"] and e["tokens"] == live["tokens_generated"]
            assert e["final_answer"] == live["final_answer"]
            assert e["area_at_stop"] == pytest.approx(live["area_at_stop"], rel=1e-5)
    fired = [[e["stopped_at"] for e in r["exits"]] for r in runs]
    assert all(f[0] == 4 and f[1] == 5 and f[2] is None for f in fired)  # budget, plateau, never


def test_summary_against_a_hand_count(tmp_path):
    runs = []
    for q, (full_ok, exit_ok, full_tok, exit_tok) in enumerate([(1, 1, 100, 40), (0, 1, 80, 80), (1, 0, 60, 30)]):
        exits = [
            {
                "arm": "budget:n=40",
                "stopped_at": 40 if exit_tok < full_tok else None,
                "tokens": exit_tok,
                "correct": bool(exit_ok),
            }
        ]
        runs.append({"question_id": f"q{q}", "correct": bool(full_ok), "tokens_generated": full_tok, "exits": exits})
    full, arm = summary_rows(runs, resamples=500)
    assert full["arm"] == "full" and full["accuracy"] == pytest.approx(2 / 3) and full["tokens"] == 80
    assert (arm["rule"], arm["setting"], arm["value"]) == ("budget", "n", 40)
    assert arm["stopped"] == pytest.approx(2 / 3) and arm["accuracy"] == pytest.approx(2 / 3)
    assert arm["difference"] == 0 and arm["difference_low"] <= 0 <= arm["difference_high"]
    assert arm["tokens"] == pytest.approx(50) and arm["saved"] == pytest.approx(30)
    assert arm["saved_pct"] == pytest.approx(100 * (1 - 150 / 240))


def test_pareto_front_keeps_the_points_nothing_beats():
    points = [(100, 0.5), (50, 0.5), (60, 0.6), (70, 0.55), (50, 0.4)]
    assert pareto_front([{"tokens": t, "accuracy": a} for t, a in points]) == [False, True, True, False, False]


def test_a_killed_run_resumes_with_the_same_rows(tiny_model, tokenizer, tmp_path):
    be, config = backend(tiny_model, tokenizer), _config(n=2, batch_size=2)
    run_early_exit(QUESTIONS, tmp_path / "whole", be, config)

    calls = []

    class Counting:
        """The tiny backend, counting the sampler batches it decodes; ``kill_at``: killed at that one."""

        tokenizer = be.tokenizer

        def __init__(self, kill_at=None):
            self.kill_at = kill_at

        def decode_watched(self, prompts, sampling, watch, batch_index=0):
            if isinstance(prompts[0], str):  # a sampler batch (forced answers come as token ids)
                calls.append(batch_index)
                if batch_index == self.kill_at:
                    raise KeyboardInterrupt
            return be.decode_watched(prompts, sampling, watch, batch_index)

    with pytest.raises(KeyboardInterrupt):
        run_early_exit(QUESTIONS, tmp_path / "cut", Counting(kill_at=1), config)
    assert not (tmp_path / "cut" / "runs.jsonl").exists()
    calls.clear()
    summary = run_early_exit(QUESTIONS, tmp_path / "cut", Counting(), config)
    assert calls == [1] and summary.rows == 4  # batch 0 is kept, not decoded again
    assert read_jsonl(tmp_path / "cut" / "runs.jsonl") == read_jsonl(tmp_path / "whole" / "runs.jsonl")


def test_a_finished_run_is_not_reused_for_other_settings_or_questions(tiny_model, tokenizer, tmp_path):
    be, config = backend(tiny_model, tokenizer), _config(arms=ARMS[:1])
    run_early_exit(QUESTIONS, tmp_path, be, config)
    assert run_early_exit(QUESTIONS, tmp_path, be, config).already_complete
    with pytest.raises(InputError, match="arms"):
        run_early_exit(QUESTIONS, tmp_path, be, _config(arms=ARMS[1:2]))
    with pytest.raises(InputError, match="questions"):
        run_early_exit(QUESTIONS[:1], tmp_path, be, config)


def test_config_refuses_what_it_cannot_run():
    with pytest.raises(ValueError, match="at least one stop rule"):
        EarlyExitConfig(arms=())
    with pytest.raises(ValueError, match="probe_every 1"):
        EarlyExitConfig(arms=ARMS, monitor=MonitorConfig(probe_every=4))
    with pytest.raises(ValueError, match="given twice"):
        EarlyExitConfig(arms=ARMS[:1] * 2)
