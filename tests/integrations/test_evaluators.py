"""``eas score FILE --from lm-eval|lighteval``: evaluator outputs as input, the AUROC summary.

The files in ``data/`` were written by the real evaluators (scripts/make_eval_fixtures.py,
the embedded SmolLM2-135M on 12 questions of eas's built-in set).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from support import read_jsonl, write_jsonl

from eas.cli import main
from eas.integrations.evaluators import lighteval_row, lighteval_source, lm_eval_rows, lm_eval_source
from eas.records import InputError, RecordError
from eas.storage.inputs import read_records

DATA = Path(__file__).parent / "data"
LM_EVAL = DATA / "lm_eval_samples.jsonl"
LIGHTEVAL = DATA / "lighteval_details.parquet"


def _auroc_by_hand(scores, wrong) -> float:
    """P(a wrong answer scores higher than a right one), ties one half: every pair counted."""
    pos = [s for s, w in zip(scores, wrong, strict=True) if w]
    neg = [s for s, w in zip(scores, wrong, strict=True) if not w]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def _summary_values(text: str) -> dict[str, float]:
    return {m[1].strip(): float(m[2]) for m in re.finditer(r"^  (.+?)  +([0-9.]+)$", text, re.M)}


def test_lm_eval_samples_become_records_with_the_metrics_kept():
    raw = read_jsonl(LM_EVAL)
    records = list(read_records(lm_eval_source(LM_EVAL)))
    assert len(records) == len(raw) == 12
    for rec, line in zip(records, raw, strict=True):
        assert rec.id == line["doc_id"]
        assert rec.prompt == line["arguments"]["gen_args_0"]["arg_0"]  # the chat-rendered context the model saw
        assert rec.response == line["resps"][0][0]
        assert rec.answer is None  # the task's target is empty
        assert rec.extra["exact_match"] == line["exact_match"] and rec.extra["metrics"] == ["exact_match"]
        assert rec.extra["filter"] == "none" and rec.extra["filtered_response"] == line["filtered_resps"][0]


def test_eas_score_from_lm_eval_reports_auroc_for_the_wrong_answers(tmp_path, tiny_dir, capsys):
    out = tmp_path / "scored.jsonl"
    assert main(["score", str(LM_EVAL), "--from", "lm-eval", "--model", str(tiny_dir), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    rows = read_jsonl(out)
    assert len(rows) == 12 and all("exact_match" in r and "doc_id" in r for r in rows)
    wrong = [r["exact_match"] == 0 for r in rows]
    assert 0 < sum(wrong) < len(rows)
    assert f"exact_match = 0: {sum(wrong)} of 12" in text
    got = _summary_values(text)
    assert got["EAS"] == pytest.approx(_auroc_by_hand([r["eas"] for r in rows], wrong), abs=5e-4)
    assert got["Max seq. log-prob"] == pytest.approx(
        _auroc_by_hand([-r["max_seq_logprob"] for r in rows], wrong), abs=5e-4
    )
    assert {"EAS", "Mean EAS", "PPL", "Length", "HES"} <= set(got)

    # the prompt is scored as the model saw it: the same as the raw records with --no-chat-template
    plain = write_jsonl(tmp_path / "plain.jsonl", [{"id": r.id, "prompt": r.prompt, "response": r.response}
                                                   for r in read_records(lm_eval_source(LM_EVAL))])  # fmt: skip
    for flag, same in (["--no-chat-template"], True), ([], False):
        ref = tmp_path / f"ref{len(flag)}.jsonl"
        assert main(["-q", "score", str(plain), "--model", str(tiny_dir), "--out", str(ref), *flag]) == 0
        match = [a["eas"] == pytest.approx(b["eas"], rel=1e-6) for a, b in zip(rows, read_jsonl(ref), strict=True)]
        assert all(match) if same else not any(match)


def test_lighteval_details_become_records_with_the_prompt_decoded(tokenizer):
    import pyarrow.parquet as pq

    raw = pq.read_table(LIGHTEVAL).to_pylist()
    records = list(read_records(lighteval_source(LIGHTEVAL, lambda: tokenizer)))
    assert len(records) == len(raw) == 12
    for rec, line in zip(records, raw, strict=True):
        response = line["model_response"]
        assert tokenizer(rec.prompt, add_special_tokens=False)["input_ids"] == response["input_tokens"]
        assert rec.prompt.endswith(f"<|im_start|>user\n{line['doc']['query']}<|im_end|>\n<|im_start|>assistant\n")
        assert rec.response == response["text"][0] and rec.answer == line["doc"]["choices"][0]
        assert rec.extra["extractive_match"] == line["metric"]["extractive_match"]
        assert rec.id == line["doc"]["id"]


def test_eas_score_from_lighteval(tmp_path, tiny_dir, capsys):
    out = tmp_path / "scored.parquet"
    assert main(["score", str(LIGHTEVAL), "--from", "lighteval", "--model", str(tiny_dir), "--out", str(out)]) == 0
    import pyarrow.parquet as pq

    rows = pq.read_table(out).to_pylist()
    wrong = [r["extractive_match"] == 0 for r in rows]
    text = capsys.readouterr().out
    assert f"extractive_match = 0: {sum(wrong)} of 12" in text
    assert _summary_values(text)["EAS"] == pytest.approx(_auroc_by_hand([r["eas"] for r in rows], wrong), abs=5e-4)


class _OtherTokenizer:
    """Decodes ids to text that does not encode back to them (another model's vocabulary)."""

    def decode(self, ids, skip_special_tokens=False):
        return " ".join(map(str, ids))

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [len(text)]}


def test_lighteval_prompt_ids_that_do_not_round_trip_are_a_row_error():
    raw = {"doc": {"query": "q"}, "model_response": {"input_tokens": [5, 6], "text": ["a"]}, "metric": {}}
    with pytest.raises(RecordError, match="score with the model lighteval evaluated"):
        lighteval_row(raw, 0, lambda: _OtherTokenizer())
    with pytest.raises(RecordError, match="a tokenizer is needed"):
        lighteval_row(raw, 0, None)
    text_input = {**raw, "model_response": {"input": "the prompt", "text": ["a"]}, "metric": {"acc": True}}
    assert lighteval_row(text_input, 3) == {
        "id": 3,
        "prompt": "the prompt",
        "response": "a",
        "metrics": ["acc"],
        "acc": True,
    }


def test_lm_eval_layout_variants():
    base = {"doc_id": 4, "target": "12", "exact_match": 1.0, "metrics": ["exact_match"], "filter": "none"}
    old = lm_eval_rows({**base, "arguments": [["ctx", {"until": []}]], "resps": [["resp"]]}, 0)
    assert old == [{"id": 4, "prompt": "ctx", "response": "resp", "answer": "12", "doc_id": 4, "filter": "none",
                    "filtered_response": None, "metrics": ["exact_match"], "exact_match": 1.0}]  # fmt: skip
    repeats = lm_eval_rows({**base, "arguments": {"gen_args_0": {"arg_0": "c"}}, "resps": [["a", "b"]]}, 0)
    assert [(r["id"], r["response"]) for r in repeats] == [("4/0", "a"), ("4/1", "b")]
    with pytest.raises(RecordError, match="a log-likelihood task such as multiple choice"):
        lm_eval_rows({**base, "arguments": {"gen_args_0": {"arg_0": "c"}}, "resps": [[[-1.5, False]]]}, 0)


def test_lm_eval_filters_one_read_at_a_time(tmp_path, capsys):
    raw = read_jsonl(LM_EVAL)[:3]
    lines = [{**r, "filter": "strict"} for r in raw] + [{**r, "filter": "flexible", "exact_match": 0.5} for r in raw]
    path = write_jsonl(tmp_path / "samples_two_filters.jsonl", lines)
    first = list(read_records(lm_eval_source(path)))
    assert [(r.id, r.extra["filter"]) for r in first] == [(0, "strict"), (1, "strict"), (2, "strict")]
    other = list(read_records(lm_eval_source(path, "flexible")))
    assert [r.extra["exact_match"] for r in other] == [0.5] * 3
    with pytest.raises(InputError, match=r"no rows with filter 'loose' \(filters: flexible, strict\)"):
        list(read_records(lm_eval_source(path, "loose")))


@pytest.mark.parametrize(
    ("name", "content", "source", "message"),
    [
        ("plain.jsonl", [{"prompt": "p", "response": "r"}], "lm-eval",
         "not an lm_eval --log_samples file (expected the keys doc_id, arguments, resps; found prompt, response)"),
        ("samples.parquet", None, "lm-eval", "lm_eval --log_samples files are .jsonl"),
        ("details.jsonl", [{"a": 1}], "lighteval", "lighteval details files are .parquet"),
        ("details.parquet", [{"prompt": "p", "response": "r"}], "lighteval",
         "not a lighteval details file (expected the columns doc, model_response, metric; found prompt, response)"),
        ("x.jsonl", [{"a": 1}], "helm", "unknown --from 'helm' (use lm-eval, lm-eval:FILTER or lighteval)"),
    ],
)  # fmt: skip
def test_a_file_without_the_evaluator_layout_gets_one_line(tmp_path, tiny_dir, capsys, name, content, source, message):
    path = tmp_path / name
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(content or [{"a": 1}]), path)
    else:
        write_jsonl(path, content)
    assert (
        main(["-q", "score", str(path), "--from", source, "--model", str(tiny_dir), "--out", str(tmp_path / "o.jsonl")])
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_option_conflicts_and_a_bad_sample_in_the_middle(tmp_path, tiny_dir, capsys):
    out = str(tmp_path / "o.jsonl")
    args = ["-q", "score", str(LM_EVAL), "--model", str(tiny_dir), "--out", out]
    assert main([*args, "--from", "lm-eval", "--prompt-field", "question"]) == 2
    assert "--from lm-eval names the fields itself: drop --prompt-field" in capsys.readouterr().err
    assert main([*args, "--correct-field", "exact_match"]) == 2
    assert "--correct-field needs --from" in capsys.readouterr().err
    assert main([*args, "--from", "lm-eval", "--correct-field", "filter"]) == 2
    assert "--correct-field 'filter' is not 0/1" in capsys.readouterr().err

    lines = read_jsonl(LM_EVAL)[:4]
    lines[2]["resps"] = [[[-2.0, True]]]  # a log-likelihood line among generations
    path = write_jsonl(tmp_path / "samples_mixed.jsonl", lines)
    mixed = tmp_path / "mixed.jsonl"
    assert main(["-q", "score", str(path), "--from", "lm-eval", "--model", str(tiny_dir), "--out", str(mixed)]) == 3
    errors = read_jsonl(tmp_path / "mixed.errors.jsonl")
    assert [e["id"] for e in errors] == [2] and "EAS needs a generate_until task" in errors[0]["error"]
    assert [r["id"] for r in read_jsonl(mixed)] == [0, 1, 3]


def test_lm_eval_runs_live_on_a_tiny_model_and_its_file_is_read(tmp_path, tiny_dir):
    """The real lm_eval writes the file this time (3 documents, a tiny seeded model)."""
    pytest.importorskip("lm_eval")
    if shutil.which("lm_eval") is None and not (Path(__import__("sys").executable).parent / "lm_eval").is_file():
        pytest.skip("the lm_eval command is not installed")
    import runpy

    script = runpy.run_path(str(Path(__file__).parents[2] / "scripts" / "make_eval_fixtures.py"))
    assert script["main"](["--lm-eval", "--model", str(tiny_dir), "--limit", "3", "--out", str(tmp_path)]) == 0
    raw = read_jsonl(tmp_path / "lm_eval_samples.jsonl")
    records = list(read_records(lm_eval_source(tmp_path / "lm_eval_samples.jsonl")))
    assert [r.id for r in records] == [0, 1, 2] and all(r.extra["exact_match"] in (0.0, 1.0) for r in records)
    assert [r.response for r in records] == [line["resps"][0][0] for line in raw]
    assert all(r.prompt.endswith("<|im_start|>assistant\n") for r in records)  # --apply_chat_template
