"""Reasoning-trace layouts -> eas rows: messages, problem + generations, prompt/completion."""

from __future__ import annotations

import pytest
from support import read_jsonl, write_jsonl

from eas.cli import main
from eas.integrations.layouts import apply_layout, check_layout, choose_layout
from eas.records import InputError, RecordError


def _rows(layout, rows):
    return list(apply_layout(layout, iter(enumerate(rows))))


def test_messages_become_prompt_and_response_and_keep_the_chat():
    chat = [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4, so \\boxed{4}"}]
    ((index, row),) = _rows("messages", [{"messages": chat, "source": "x"}])
    assert index == 0
    assert row == {"messages": chat, "source": "x", "id": 0, "prompt": "What is 2+2?", "response": "4, so \\boxed{4}"}


@pytest.mark.parametrize(
    ("messages", "reason"),
    [
        ([{"role": "system", "content": "s"}, {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
         "expected [user, assistant], found [system, user, assistant]"),
        ([{"role": "assistant", "content": "a"}, {"role": "user", "content": "q"}], "expected a user message"),
        ([{"role": "user", "content": ["a", "b"]}, {"role": "assistant", "content": "a"}], "content is a list"),
        ("not a list", "expected a list of role/content messages"),
    ],
)  # fmt: skip
def test_a_bad_chat_is_a_row_error_naming_what_was_expected(messages, reason):
    ((_, row),) = _rows("messages", [{"id": "r1", "messages": messages}])
    assert isinstance(row, RecordError) and reason in row.reason and row.record_id == "r1"


def test_generations_give_one_row_each_with_their_own_correctness():
    row = {
        "id": "p7",
        "problem": "What is 1+1?",
        "answer": "2",
        "generations": ["\\boxed{2}", "\\boxed{3}", "\\boxed{2}"],
        "correctness_math_verify": [True, False, True],
        "source": "synthetic",
    }
    out = [r for _, r in _rows("generations", [row])]
    assert [r["id"] for r in out] == ["p7/0", "p7/1", "p7/2"]
    assert [r["response"] for r in out] == row["generations"]
    assert [r["correctness_math_verify"] for r in out] == [True, False, True]
    assert all(r["prompt"] == "What is 1+1?" and r["answer"] == "2" and "generations" not in r for r in out)
    # output indices count rows made, so ids from the index stay unique across input rows
    indices = [i for i, _ in _rows("generations", [{"problem": "a", "generations": ["x", "y"]}] * 2)]
    assert indices == [0, 1, 2, 3]


def test_prompt_completion_as_strings_or_conversational():
    plain = {"prompt": "q", "completion": "a \\boxed{1}"}
    chat = {"prompt": [{"role": "user", "content": "q"}], "completion": [{"role": "assistant", "content": "a"}]}
    (_, a), (_, b) = _rows("prompt-completion", [plain, chat])
    assert (a["prompt"], a["response"], "completion" in a) == ("q", "a \\boxed{1}", False)
    assert (b["prompt"], b["response"]) == ("q", "a")


def test_layout_detection_and_the_line_for_a_missing_column():
    assert choose_layout({"prompt", "response"}) == "fields"
    assert choose_layout({"messages", "prompt"}) == "messages"
    assert choose_layout({"problem", "generations", "answer"}) == "generations"
    assert choose_layout({"prompt", "completion"}) == "prompt-completion"
    assert choose_layout({"question", "trace"}) == "fields"
    assert choose_layout({"prompt", "response"}, "messages") == "messages"  # a layout named is kept
    with pytest.raises(InputError, match=r"layout 'generations' needs the column\(s\) problem, generations; missing"):
        check_layout("generations", {"problem", "answer"}, "pool.jsonl")


def test_eas_select_reads_a_jsonl_file_in_a_preset_layout(tmp_path):
    rows = [
        {"id": "a", "problem": "q1", "generations": ["short", "a much longer response here"]},
        {"id": "b", "problem": "q2", "generations": ["mid size one"]},
    ]
    src = write_jsonl(tmp_path / "gens.jsonl", rows)
    out = tmp_path / "picked.jsonl"
    assert main(["-q", "select", str(src), "--strategy", "random", "--budget", "3", "--out", str(out)]) == 0
    picked = read_jsonl(out)
    assert sorted(r["id"] for r in picked) == ["a/0", "a/1", "b/0"]
    # an explicit layout that does not fit: one line naming the columns it needs
    assert main(["-q", "select", str(src), "--strategy", "random", "--budget", "1", "--out", str(out),
                 "--layout", "messages"]) == 2  # fmt: skip
    # field options contradict a preset
    bad = ["-q", "select", str(src), "--strategy", "random", "--budget", "1", "--out", str(out)]
    assert main([*bad, "--layout", "generations", "--prompt-field", "problem"]) == 2


def test_layout_error_lines(tmp_path, capsys):
    src = write_jsonl(tmp_path / "gens.jsonl", [{"problem": "q1", "generations": ["x"]}])
    out = tmp_path / "picked.jsonl"
    main(["-q", "select", str(src), "--strategy", "random", "--budget", "1", "--out", str(out), "--layout", "messages"])
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert (
        "layout 'messages' needs the column(s) messages; missing messages (columns found: generations, problem)" in err
    )
