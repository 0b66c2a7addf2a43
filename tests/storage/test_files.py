"""storage.files and storage.parts' file primitives: formats, round trips, atomic writes."""

from __future__ import annotations

import pytest

from eas.records import InputError
from eas.storage.files import check_output_path, errors_path, read_table, write_results, write_rows
from eas.storage.parts import fingerprint, write_atomic

ROWS = [
    {"id": "a", "eas": 1.5, "trajectory": [0.5, 1.0]},
    {"id": "b", "eas": 2.25, "trajectory": [2.25]},
]


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_rows_written_are_read_back_unchanged(tmp_path, suffix):
    path = write_rows(ROWS, tmp_path / f"r{suffix}")
    assert read_table(path) == ROWS


def test_parquet_ids_of_mixed_types_become_strings(tmp_path):
    rows = [{"id": 3, "eas": 1.0}, {"id": "x", "eas": 2.0}]
    assert [r["id"] for r in read_table(write_rows(rows, tmp_path / "m.parquet"))] == ["3", "x"]


def test_write_results_streams_several_batches_in_order(tmp_path):
    batches = [[{"id": i, "eas": float(i)}] for i in range(5)]
    write_results(tmp_path / "s.jsonl", lambda: iter(batches))
    assert [r["id"] for r in read_table(tmp_path / "s.jsonl")] == [0, 1, 2, 3, 4]


def test_errors_file_sits_beside_the_output():
    assert errors_path("runs/scored.jsonl").as_posix() == "runs/scored.errors.jsonl"
    assert errors_path("scored.parquet").name == "scored.errors.jsonl"


def test_bad_output_paths_are_refused(tmp_path):
    with pytest.raises(InputError, match="unknown output format"):
        check_output_path(tmp_path / "out.txt")
    with pytest.raises(InputError, match="does not exist"):
        check_output_path(tmp_path / "missing" / "out.jsonl")
    assert check_output_path(tmp_path / "out.PARQUET") == "parquet"


def test_read_table_refuses_a_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_table(tmp_path / "nothing.jsonl")


def test_write_atomic_leaves_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("old\n")

    def lines():
        yield "new\n"
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        write_atomic(path, lines())
    assert path.read_text() == "old\n"


def test_fingerprint_depends_on_content_not_key_order():
    assert fingerprint({"a": 1, "b": [1, 2]}) == fingerprint({"b": [1, 2], "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})
    assert len(fingerprint("x")) == 16
