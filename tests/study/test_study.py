"""The study end to end on a tiny in-process model, and its pieces on hand-made rows."""

import csv
import json
import math
import re

import pytest
from support import backend, read_jsonl, write_jsonl

from eas.config import EASConfig, SamplingConfig
from eas.maths.metrics import METRICS
from eas.maths.reference import answer_entropy
from eas.sampling.questions import Question, load_fewshot, load_questions
from eas.sampling.sample import grade_samples
from eas.study.study import StudyConfig, run_study
from eas.study.tables import correlation_rows, markdown_table

QUESTIONS = [
    {"id": "a", "question": "What is 2 + 2?", "answer": "4"},
    {"id": "b", "question": "What is half of 1?", "answer": "0.5"},
    {"id": "c", "question": "What is 10 - 3?", "answer": "7"},
    {"id": "m1", "question": "Which is a colour?", "choices": ["Red", "Dog", "Run", "Six"], "answer": "A"},
    {"id": "m2", "question": "2 * 3?", "choices": ["5", "6", "7", "8"], "answer": "b"},
]
PER_QUESTION_COLUMNS = {
    "id",
    "question",
    "answer",
    "kind",
    "n_samples",
    "answer_entropy",
    "correctness_entropy",
    "pass_rate",
    "n_classes",
    "answer_counts",
    "sample0_answer",
    "sample0_correct",
    "scored_samples",
    "trajectory",
    "token_spans",
    "prompt",
    "response",
    *METRICS,
}


@pytest.fixture(scope="module")
def tiny_study(tiny_model, tokenizer, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("study")
    questions = load_questions(write_jsonl(tmp / "q.jsonl", QUESTIONS))
    config = StudyConfig(
        sampling=SamplingConfig(n=2, max_new_tokens=12, temperature=1.0, batch_size=4),
        # The tiny model writes no \boxed{}: probe the whole response so every sample is scored.
        eas=EASConfig(end="response"),
        extract=("boxed", "last-number"),
        label="tiny",
    )
    result = run_study(questions, backend(tiny_model, tokenizer), config, tmp / "out", load_fewshot(None))
    return tmp / "out", result


def test_study_writes_every_file(tiny_study):
    out, result = tiny_study
    for name in ("samples.jsonl", "per_question.jsonl", "correlations.csv", "report.md", "report.html"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "fig1_trajectory.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "fig2_metrics_vs_answer_entropy.png").is_file()
    assert (out / "fig3_option_probabilities.png").is_file()
    assert set(result.figures) == {"trajectory", "metrics_vs_answer_entropy", "options"}


def test_samples_file(tiny_study):
    out, _ = tiny_study
    rows = read_jsonl(out / "samples.jsonl")
    assert len(rows) == len(QUESTIONS) * 2
    assert [r["id"] for r in rows[:2]] == ["a/0", "a/1"]
    for r in rows:
        assert {"prompt", "response", "extracted", "correct", "answer_class", "question_id", "sample"} <= set(r)
        assert "What is 3 + 4?" in r["prompt"] or "Which animal can fly?" in r["prompt"]  # few-shot shown
    assert rows[-1]["choices"] == ["5", "6", "7", "8"] and rows[-1]["answer"] == "B"


def test_per_question_file(tiny_study):
    out, _ = tiny_study
    rows = read_jsonl(out / "per_question.jsonl")
    samples = read_jsonl(out / "samples.jsonl")
    assert [r["id"] for r in rows] == ["a", "b", "c", "m1", "m2"]
    for r in rows:
        assert set(r) >= PER_QUESTION_COLUMNS
        mine = [s for s in samples if s["question_id"] == r["id"]]
        assert r["n_samples"] == 2 and r["scored_samples"] == 1
        assert r["answer_entropy"] == pytest.approx(answer_entropy([s["answer_class"] for s in mine]))
        assert r["pass_rate"] == sum(s["correct"] for s in mine) / 2
        assert sum(r["answer_counts"].values()) == 2
        assert r["eas"] == pytest.approx(sum(r["trajectory"]), rel=1e-9)
        assert r["response_tokens"] >= len(r["trajectory"])
        sample0 = next(s for s in mine if s["sample"] == 0)  # what eas view shows of the question
        assert (r["prompt"], r["response"]) == (sample0["prompt"], sample0["response"])
        assert len(r["token_spans"]) == r["response_tokens"]
        assert "".join(r["response"][a:b] for a, b in r["token_spans"]) == r["response"]  # SmolLM2: no gaps
    for r in rows[3:]:
        assert r["kind"] == "choice"
        assert set(r["option_probs"]) == {"A", "B", "C", "D"}
        for probs in r["option_probs"].values():
            assert len(probs) == len(r["trajectory"]) and all(0 <= p <= 1 for p in probs)
        assert sum(p[0] for p in r["option_probs"].values()) <= 1 + 1e-6


def test_correlations_file(tiny_study):
    out, _ = tiny_study
    with (out / "correlations.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * len(METRICS)
    assert {r["reference"] for r in rows} == {"answer_entropy", "correctness_entropy"}
    assert {r["metric"] for r in rows} == set(METRICS)
    assert all(r["n"] == "5" and r["label"] == "tiny" for r in rows)
    report = (out / "report.html").read_text()
    assert report.count("data:image/png;base64,") == 3


def _table():
    # 6 questions: EAS rises with answer entropy; sample 0 is wrong on the uncertain ones.
    ref = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    eas = [1.0, 2.0, 2.5, 4.0, 5.5, 5.0]
    wrong = [False, False, True, False, True, True]
    return [
        {"id": i, "answer_entropy": h, "correctness_entropy": 0.5, "sample0_correct": not w, "eas": e}
        | {"max_seq_logprob": -e}
        for i, (h, e, w) in enumerate(zip(ref, eas, wrong, strict=True))
    ]


def test_correlation_rows_on_a_known_table():
    from scipy import stats

    rows = {r["metric"]: r for r in correlation_rows(_table(), "answer_entropy", "x")}
    assert set(rows) == {"eas", "max_seq_logprob"}  # metrics absent from the table are skipped
    r = stats.pearsonr([0.0, 0.5, 1.0, 1.5, 2.0, 2.5], [1.0, 2.0, 2.5, 4.0, 5.5, 5.0]).statistic
    assert rows["eas"]["pearson_r"] == pytest.approx(r)
    assert rows["max_seq_logprob"]["pearson_r"] == pytest.approx(-r)
    half = stats.norm.ppf(0.975) / math.sqrt(6 - 3)  # the Fisher-z interval, n = 6
    assert rows["eas"]["ci_low"] == pytest.approx(math.tanh(math.atanh(r) - half))
    assert rows["eas"]["ci_high"] == pytest.approx(math.tanh(math.atanh(r) + half))
    assert "ci_dropped" not in rows["eas"]
    # wrong: eas 2.5, 5.5, 5.0 vs right 1.0, 2.0, 4.0 -> 8 of 9 pairs ordered
    assert rows["eas"]["auroc"] == pytest.approx(8 / 9)
    assert rows["max_seq_logprob"]["auroc"] == pytest.approx(8 / 9)  # signed: low log-prob = uncertain
    const = correlation_rows(_table(), "correctness_entropy", "x")
    assert all(math.isnan(r["pearson_r"]) for r in const)
    md = markdown_table(correlation_rows(_table(), label="x"))
    assert "| EAS | 0.9" in md and "| metric | x |" in md


def test_grading_merges_equivalent_answers_and_letters():
    qs = [Question("h", "half?", "1/2"), Question("m", "pick", "B", ("1", "2", "3", "4"))]
    samples = [
        {"id": "h/0", "question_id": "h", "sample": 0, "response": r"\boxed{0.5}"},
        {"id": "h/1", "question_id": "h", "sample": 1, "response": r"\boxed{\frac{1}{2}}"},
        {"id": "h/2", "question_id": "h", "sample": 2, "response": "no idea"},
        {"id": "m/0", "question_id": "m", "sample": 0, "response": r"\boxed{(b)}"},
        {"id": "m/1", "question_id": "m", "sample": 1, "response": r"\boxed{2}"},
        {"id": "m/2", "question_id": "m", "sample": 2, "response": r"\boxed{C}"},
    ]
    g = grade_samples(qs, samples)
    assert [r["answer_class"] for r in g] == [0, 0, 1, 0, 0, 1]
    assert [r["correct"] for r in g] == [True, True, False, True, True, False]
    assert [r["extracted"] for r in g[3:]] == ["B", "B", "C"]


def test_study_config_checks():
    with pytest.raises(ValueError, match="score_samples"):
        StudyConfig(sampling=SamplingConfig(n=2), score_samples=3)
    with pytest.raises(ValueError):
        SamplingConfig(top_p=0)


def _sample_rows():
    """Question q: sample 0 has no boxed answer, samples 1 and 2 have one (graded rows)."""
    responses = ["I think it is 4.", "So \\boxed{4}.", "So \\boxed{5}.", "\\boxed{}"]
    return [
        {"id": f"q/{k}", "question_id": "q", "sample": k, "prompt": "p", "response": text, "answer": "4"}
        | {"extracted": None if k in (0, 3) else text[-3], "answer_class": k, "correct": k == 1}
        for k, text in enumerate(responses)
    ]


def test_the_first_sample_with_a_boxed_answer_is_scored_not_sample_0():
    from eas.study.tables import per_question_rows, samples_to_score

    rows = _sample_rows()
    assert [r["sample"] for r in samples_to_score(rows, 1)] == [1]
    assert [r["sample"] for r in samples_to_score(rows, 3)] == [1, 2]  # "\\boxed{}" is empty: unscoreable
    assert [r["sample"] for r in samples_to_score(rows, 1, first_boxed=False)] == [0]
    scores = {f"q/{k}": {"id": f"q/{k}", "trajectory": [k], **dict.fromkeys(METRICS, float(k))} for k in (1, 2)}
    scores["q/0"] = {"id": "q/0", "error": "no \\boxed{...} final answer"}
    question = [Question("q", "What is 2 + 2?", "4")]
    row = per_question_rows(question, rows, scores, 1)[0]
    assert (row["scored_sample"], row["scored_correct"], row["eas"], row["trajectory"]) == (1, True, 1.0, [1])
    assert row["sample0_correct"] is False
    paper = per_question_rows(question, rows, scores, 1, first_boxed=False)[0]
    assert paper["scored_sample"] == 0 and paper["eas"] is None and paper["scored_samples"] == 0


def test_traces_page_and_the_report_link_to_it(tiny_study):
    from eas.view.page import read_study
    from eas.view.trace import trace_anchor

    out, result = tiny_study
    assert result.traces_html == out / "traces.html"
    page = result.traces_html.read_text(encoding="utf-8")
    ids = re.findall(r'<details class="item" data-i="\d+"><summary><span>#\d+</span><span>([^<]+)</span>', page)
    table = read_jsonl(out / "per_question.jsonl")
    assert ids == [r["id"] for r in sorted(table, key=lambda r: -r["eas"])]  # every question, by EAS
    assert page.count('"tok":[') == len(table) and "tiny" in page
    report = (out / "report.html").read_text()
    for row in table:  # 5 questions: each is among the 5 most and the 5 least uncertain
        assert report.count(f'href="traces.html{trace_anchor(row["id"])}"') == 2
    rows, model = read_study(out)
    assert [r["id"] for r in rows] == [r["id"] for r in table]
    assert model == json.loads((out / "settings.json").read_text())["model"]["model"] and model in page
