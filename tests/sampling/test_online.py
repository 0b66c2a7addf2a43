"""Online EAS in the decoding loop: the same samples as an unmonitored run, the same curve as
post-hoc scoring (packed probes on the same tokens, and ``eas score`` of the text)."""

from __future__ import annotations

import numpy as np
import pytest
from support import backend

from eas.backends.base import EncodedRecord
from eas.backends.hf.generate import generate_samples
from eas.backends.prompts import text_prompt_ids
from eas.config import EASConfig, MonitorConfig, SamplingConfig
from eas.maths.stratified import probe_plan
from eas.records import Record
from eas.sampling.online import BatchMonitor, online_setup, sample_questions_online, stream
from eas.sampling.online.rows import online_row
from eas.sampling.online.sample import batch_probe_seed
from eas.sampling.questions import Question, build_prompt, builtin_questions_path, load_fewshot, load_questions
from eas.scoring.batches import result_row
from eas.scoring.runs import score_records
from eas.testing.models import make_tiny_gemma

QUESTIONS = [Question(i, f"What is {i} + {2 * i + 1}?") for i in range(3)]
# prompts of different lengths: the batch is left-padded (catch-up probes must skip the pads)
UNEVEN = [
    Question("a", "What is 2 + 2?"),
    Question("b", "Tom has 12 apples and eats 5 of them. How many are left now?"),
]


def _monitored(be, prompts, sampling, eas, monitor, batch_index=0):
    """Run one monitored batch; the monitor (finished samples) and the rows."""
    setup = online_setup(be.tokenizer, eas, monitor)
    watch = BatchMonitor(be.tokenizer, len(prompts) * sampling.n, setup, batch_probe_seed(eas.probe_seed, batch_index),
                         sampling.max_new_tokens)  # fmt: skip
    for _ in be.decode_watched(prompts, sampling, watch, batch_index):
        pass
    return watch, [online_row(be.tokenizer, watch.finished[r], setup) for r in range(len(prompts) * sampling.n)]


def _packed_trajectory(be, prompt, ids, suffix, answer_end, subset=None):
    """H_t of packed scoring over the given response ids (the reference)."""
    enc = EncodedRecord(Record("x", prompt, "x"), text_prompt_ids(be.tokenizer, prompt), list(ids), list(suffix),
                        answer_end, probe_subset=subset)  # fmt: skip
    return enc, be.measure([enc])[0]


@pytest.mark.parametrize("every", [1, 4])
def test_monitored_samples_equal_unmonitored(tiny_model, tokenizer, every):
    be = backend(tiny_model, tokenizer)
    prompts = [build_prompt(tokenizer, q, []) for q in QUESTIONS]
    config = SamplingConfig(n=3, temperature=1.0, max_new_tokens=16, batch_size=6, seed=5)
    plain = generate_samples(tiny_model, tokenizer, prompts, config)
    rows = sample_questions_online(QUESTIONS, be, config, EASConfig(end="response"), MonitorConfig(probe_every=every))
    assert [r["response"] for r in rows] == [s for per_q in plain for s in per_q]
    assert len({r["response"] for r in rows}) > 3  # sampled, not greedy


@pytest.mark.parametrize("share_head", [True, False])
def test_online_curve_equals_packed_probes_on_the_same_tokens(tiny_model, tokenizer, monkeypatch, share_head):
    from eas.backends.hf.online import TriggerProbe

    monkeypatch.setattr(TriggerProbe, "share_head", share_head)  # False: the hook + Float32Head path of bf16 models
    be = backend(tiny_model, tokenizer)
    prompts = [build_prompt(tokenizer, q, []) for q in UNEVEN]
    config = SamplingConfig(n=2, temperature=1.0, max_new_tokens=20, batch_size=4, seed=1)
    eas = EASConfig(end="response")
    watch, rows = _monitored(be, prompts, config, eas, MonitorConfig(trajectory=True))
    suffix = tokenizer(eas.trigger, add_special_tokens=False)["input_ids"]
    for r, row in enumerate(rows):
        ids = watch.finished[r].reasoning.ids
        _, m = _packed_trajectory(be, prompts[r // 2], ids, suffix, row["answer_end_token"])
        assert row["n_probes"] == row["answer_end_token"] - 1 == len(m.probe_entropies) > 5
        np.testing.assert_allclose(row["trajectory"], m.probe_entropies, atol=1e-3, rtol=0)
        assert row["eas"] == pytest.approx(float(np.sum(m.probe_entropies)), abs=1e-3 * row["n_probes"])
        # the generated tokens' own statistics are the teacher-forced ones
        np.testing.assert_allclose(watch.finished[r].logprobs, m.token_logprobs, atol=1e-4)
        assert row["ppl"] == pytest.approx(float(np.exp(-np.mean(m.token_logprobs))), rel=1e-4)


def test_probe_every_gives_the_stratified_estimate_of_its_positions(tiny_model, tokenizer):
    be = backend(tiny_model, tokenizer)
    prompts = [build_prompt(tokenizer, q, []) for q in UNEVEN]
    assert len(set(map(len, (tokenizer(p)["input_ids"] for p in prompts)))) == 2
    config = SamplingConfig(n=2, temperature=1.0, max_new_tokens=30, batch_size=4, seed=2)
    eas = EASConfig(end="response", probe_stride=4, trajectory=True)
    watch, rows = _monitored(be, prompts, config, eas, MonitorConfig(probe_every=4, trajectory=True), batch_index=3)
    suffix = tokenizer(eas.trigger, add_special_tokens=False)["input_ids"]
    seed = batch_probe_seed(eas.probe_seed, 3)
    for r, row in enumerate(rows):
        plan = probe_plan(row["answer_end_token"] - 1, 4, seed)
        assert row["trajectory_t"] == list(plan.positions) and row["probe_stride"] == 4
        ids = watch.finished[r].reasoning.ids
        enc, m = _packed_trajectory(be, prompts[r // 2], ids, suffix, row["answer_end_token"], plan.positions)
        ref = result_row(enc, m, eas)  # what --probe-stride 4 gives for these positions
        np.testing.assert_allclose(row["trajectory"], ref["trajectory"], atol=1e-3, rtol=0)
        for key in ("eas", "eas_se", "mean_eas", "n_probes", "n_probes_run", "final_entropy"):
            assert row[key] == pytest.approx(ref[key], abs=1e-3 * max(1, row["n_probes"])), key
        assert row["eas_se"] > 0 and row["n_probes_run"] < row["n_probes"]
    # one position a block for the whole batch: the steps in between carry no probe
    assert len(watch.planned) == 30 // 4 + (30 % 4 > 0)


def test_online_equals_eas_score_of_the_text(embedded_model, tokenizer):
    """The embedded model answers few-shot questions with a boxed answer: the online curve of
    each sample equals ``eas score --trajectory`` of its text (float32: within 1e-3 bits)."""
    be = backend(embedded_model, tokenizer)
    questions = load_questions(builtin_questions_path())[:3]
    config = SamplingConfig(n=2, temperature=0.7, max_new_tokens=32, batch_size=6, seed=0)
    rows = sample_questions_online(questions, be, config, EASConfig(), MonitorConfig(trajectory=True),
                                   load_fewshot(None))  # fmt: skip
    comparable = [r for r in rows if r["retokenizes"] and r["eas"] is not None]
    assert len(comparable) >= 3, [(r["response"], r.get("eas_error")) for r in rows]
    records = [Record(r["id"], r["prompt"], r["response"]) for r in comparable]
    scored = list(score_records(records, be, EASConfig(use_chat_template=False, trajectory=True)))
    for row, post in zip(comparable, scored, strict=True):
        assert row["answer_end_token"] == post["answer_end_token"] and row["token_spans"] == post["token_spans"]
        np.testing.assert_allclose(row["trajectory"], post["trajectory"], atol=1e-3, rtol=0)
        for key in ("eas", "mean_eas", "ppl", "mean_token_entropy", "hes", "final_entropy"):
            assert row[key] == pytest.approx(post[key], rel=1e-4, abs=1e-3), key


def test_sliding_window_model_online_equals_packed(tokenizer):
    """Gemma 3 style (sliding layers, window 8, traces of 24 tokens): correct, not refused."""
    model = make_tiny_gemma(len(tokenizer), window=8, seed=4)
    be = backend(model, tokenizer)
    prompts = [build_prompt(tokenizer, q, []) for q in QUESTIONS[:2]]
    config = SamplingConfig(n=2, temperature=1.0, max_new_tokens=24, batch_size=4, seed=3)
    eas = EASConfig(end="response")
    watch, rows = _monitored(be, prompts, config, eas, MonitorConfig(trajectory=True))
    suffix = tokenizer(eas.trigger, add_special_tokens=False)["input_ids"]
    for r, row in enumerate(rows):
        _, m = _packed_trajectory(be, prompts[r // 2], watch.finished[r].reasoning.ids, suffix, row["answer_end_token"])
        assert len(m.probe_entropies) > 8  # longer than the window
        np.testing.assert_allclose(row["trajectory"], m.probe_entropies, atol=1e-3, rtol=0)
    plain = generate_samples(model, tokenizer, prompts, config)
    assert [row["response"] for row in rows] == [s for per_q in plain for s in per_q]


def test_stream_yields_every_token_with_its_entropy_and_the_area(tiny_model, tokenizer):
    be = backend(tiny_model, tokenizer)
    events = stream(be, "What is 2 + 2?", sampling=SamplingConfig(temperature=1.0, max_new_tokens=12, seed=4),
                    eas=EASConfig(end="response"))  # fmt: skip
    seen = list(events)
    row = events.row
    assert len(seen) == row["tokens_generated"] == len([e for e in seen if e.phase == "reason"])
    assert "".join(e.text for e in seen).strip() == row["response"]
    probed = [e.entropy for e in seen if e.entropy is not None]
    assert len(probed) >= row["n_probes"] and all(h >= 0 for h in probed)
    assert seen[row["n_probes"] - 1].area == pytest.approx(row["eas"], rel=1e-9)
    np.testing.assert_allclose(np.cumsum(probed[: row["n_probes"]]), [e.area for e in seen[: row["n_probes"]]])
