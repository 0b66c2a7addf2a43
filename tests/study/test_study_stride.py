"""The study under a probe stride: EAS is estimated, the per-position figures are left out."""

import math

from support import backend

from eas.config import EASConfig, SamplingConfig
from eas.study.study import StudyConfig, score_samples

SAMPLES = [
    {
        "id": "q1/0",
        "question_id": "q1",
        "sample": 0,
        "prompt": "What is 2+3?",
        "response": "2 plus 3 is 5. " * 6 + r"\boxed{5}",
        "answer": "5",
    },
    {
        "id": "m1/0",
        "question_id": "m1",
        "sample": 0,
        "prompt": "Pick one.",
        "response": "Option B fits best here. " * 5 + r"\boxed{B}",
        "answer": "B",
        "choices": ["x", "y"],
    },
]


def test_study_scores_with_a_stride(tiny_model, tokenizer):
    b = backend(tiny_model, tokenizer)
    sampling = SamplingConfig(n=1)
    exact = score_samples(SAMPLES, b, StudyConfig(sampling=sampling))
    strided = score_samples(SAMPLES, b, StudyConfig(sampling=sampling, eas=EASConfig(probe_stride=4)))
    for sid in ("q1/0", "m1/0"):
        x, s = exact[sid], strided[sid]
        assert x["probe_stride"] == 1 and "trajectory" in x
        n = x["n_probes"]
        assert s["probe_stride"] == 4 and s["n_probes"] == n and s["n_probes_run"] == math.ceil((n - 1) / 4) + 1 < n
        assert "trajectory" not in s and "option_probs" not in s
    assert "option_probs" in exact["m1/0"]
