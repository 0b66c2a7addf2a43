"""CSV input: fields past csv's 128 KiB default are read, and the module-wide limit stays the caller's."""

from __future__ import annotations

import csv

from eas.storage.files import iter_rows


def _big_csv(tmp_path, size=300_000):
    path = tmp_path / "in.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "prompt", "response"])
        w.writerow(["a", "q", "x" * size + r" \boxed{1}"])
        w.writerow(["b", "q", "short"])
    return path


def test_long_fields_are_read_and_the_limit_is_put_back_between_reads(tmp_path):
    before = csv.field_size_limit()
    rows = iter_rows(_big_csv(tmp_path), "csv")
    index, first = next(rows)
    assert index == 0 and len(first["response"]) > 300_000
    assert csv.field_size_limit() == before  # while the reader waits between rows too
    assert [i for i, _ in rows] == [1]
    assert csv.field_size_limit() == before


def test_a_platform_whose_c_long_is_32_bits(tmp_path, monkeypatch):
    """64-bit Windows: csv.field_size_limit(sys.maxsize) raises OverflowError."""
    real = csv.field_size_limit

    def limit(*new):
        if new and new[0] > 2**31 - 1:
            raise OverflowError("Python int too large to convert to C long")
        return real(*new)

    monkeypatch.setattr(csv, "field_size_limit", limit)
    before = real()
    rows = list(iter_rows(_big_csv(tmp_path), "csv"))
    assert [len(r["response"]) > 300_000 for _, r in rows] == [True, False]
    assert real() == before
