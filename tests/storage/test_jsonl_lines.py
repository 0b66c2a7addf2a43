"""A broken JSONL line is reported with its line number in the file, once, readably."""

from __future__ import annotations

import pytest

from eas.records import InputError, RecordError
from eas.storage.files import read_table
from eas.storage.inputs import read_records

LINES = [
    '{"id": "a", "prompt": "q", "response": "r"}',
    "",  # a blank line still counts as a line of the file
    '{"id": "b", "prompt": "q", "response": "r"}',
    '{"id": "c", "prompt": "q", "response": "unterminated',
    "[1, 2]",
    '{"id": "d", "prompt": "q", "response": "r"}',
]


@pytest.fixture
def broken(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(LINES) + "\n")
    return path


def test_records_name_the_line_of_the_file(broken):
    rows = list(read_records(broken))
    errors = [r for r in rows if isinstance(r, RecordError)]
    assert [e.reason.split(" ", 2)[:2] for e in errors] == [["line", "4"], ["line", "5"]]
    assert [e.record_id for e in errors] == [2, 3]  # the row index stays the id of a row without one
    assert "not valid JSON" in errors[0].reason and "at at" not in errors[0].reason
    assert errors[0].reason == "line 4 is not valid JSON (Unterminated string starting at column 40)"
    assert errors[1].reason == "line 5 holds a JSON list, not an object"
    assert [r.id for r in rows if not isinstance(r, RecordError)] == ["a", "b", "d"]


def test_a_results_file_names_the_line(broken):
    with pytest.raises(InputError) as exc:
        read_table(broken)
    message = str(exc.value)
    assert message == f"{broken}: line 4 is not valid JSON (Unterminated string starting at column 40)"
    assert "row" not in message and "at at" not in message


def test_a_message_of_json_ending_in_at_is_not_doubled(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"id": "a", "prompt": "q", "response": "never closed}')
    (error,) = list(read_records(path))
    assert error.reason == "line 1 is not valid JSON (Unterminated string starting at column 40)"
