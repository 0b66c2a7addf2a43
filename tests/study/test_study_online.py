"""``eas study --online``: every sample's EAS measured while sampling, no second scoring pass."""

import json

import pytest
from support import backend, read_jsonl, write_jsonl

from eas.config import EASConfig, SamplingConfig
from eas.maths.metrics import METRICS
from eas.sampling.questions import load_fewshot, load_questions
from eas.study.study import StudyConfig, run_study

QUESTIONS = [
    {"id": "a", "question": "What is 2 + 2?", "answer": "4"},
    {"id": "b", "question": "What is 10 - 3?", "answer": "7"},
    {"id": "m1", "question": "Which is a colour?", "choices": ["Red", "Dog", "Run", "Six"], "answer": "A"},
]


def _study(be, tmp, online, sampling, eas):
    questions = load_questions(write_jsonl(tmp / "q.jsonl", QUESTIONS))
    config = StudyConfig(sampling=sampling, eas=eas, extract=("boxed", "last-number"), online=online)
    out = tmp / ("online" if online else "posthoc")
    run_study(questions, be, config, out, load_fewshot(None))
    return (
        read_jsonl(out / "samples.jsonl"),
        read_jsonl(out / "per_question.jsonl"),
        json.loads((out / "settings.json").read_text()),
    )


def test_online_study_has_every_sample_scored(tiny_model, tokenizer, tmp_path):
    be = backend(tiny_model, tokenizer)
    sampling = SamplingConfig(n=2, max_new_tokens=12, temperature=1.0, batch_size=4)
    samples, table, settings = _study(be, tmp_path, True, sampling, EASConfig(end="response"))
    plain, _, _ = _study(be, tmp_path, False, sampling, EASConfig(end="response"))
    assert [s["response"] for s in samples] == [s["response"] for s in plain]  # the same samples
    assert settings["online"] is True
    assert all(s["online"] and s["eas"] is not None and s["n_probes"] >= 1 for s in samples)
    for r in table:
        assert r["scored_samples"] == 1 and all(m in r for m in METRICS)
        assert r["eas"] == pytest.approx(sum(r["trajectory"]), rel=1e-9)
        assert len(r["token_spans"]) == r["response_tokens"]
    assert set(table[-1]["option_probs"]) == {"A", "B", "C", "D"} and "option_probs" not in table[0]


@pytest.mark.slow
def test_online_study_equals_the_post_hoc_study(embedded_model, tokenizer, tmp_path):
    be = backend(embedded_model, tokenizer)
    sampling = SamplingConfig(n=2, max_new_tokens=40, temperature=0.7, batch_size=6)
    samples, table, _ = _study(be, tmp_path, True, sampling, EASConfig())
    plain, post, _ = _study(be, tmp_path, False, sampling, EASConfig())
    assert [s["response"] for s in samples] == [s["response"] for s in plain]
    by_id = {s["id"]: s for s in samples}
    compared = 0
    for on, off in zip(table, post, strict=True):
        if off.get("eas") is None or not by_id[f"{on['id']}/{on['scored_sample']}"]["retokenizes"]:
            continue
        compared += 1
        for m in METRICS:
            assert on[m] == pytest.approx(off[m], rel=1e-4, abs=1e-3), (on["id"], m)
    assert compared >= 2
