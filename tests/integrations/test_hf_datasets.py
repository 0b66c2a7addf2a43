"""Hugging Face datasets in (save_to_disk folder, Parquet shards, the local cache; streamed) and out."""

from __future__ import annotations

import inspect

import pytest
from support import arithmetic_records, read_jsonl, write_jsonl

datasets = pytest.importorskip("datasets")

from eas.cli import main  # noqa: E402
from eas.integrations import hf_datasets  # noqa: E402
from eas.storage.inputs import read_records  # noqa: E402

RESULT_KEYS = ("eas", "mean_eas", "ppl", "response_tokens")


def _score(src, out, model, *extra) -> int:
    return main(["-q", "score", str(src), "--out", str(out), "--model", str(model), *extra])


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_dir):
    """The records scored from a plain JSONL file: what every data-set path must reproduce."""
    tmp = tmp_path_factory.mktemp("reference")
    rows = arithmetic_records(12)
    src = write_jsonl(tmp / "in.jsonl", rows)
    assert _score(src, tmp / "ref.jsonl", tiny_dir) == 0
    return rows, {r["id"]: r for r in read_jsonl(tmp / "ref.jsonl")}


def test_save_to_disk_in_and_out_adds_the_eas_columns(tmp_path, tiny_dir, reference, monkeypatch):
    monkeypatch.setattr(hf_datasets, "ROW_BATCH", 5)  # 12 rows: three batches in, three out
    rows, ref = reference
    src = tmp_path / "traces"
    datasets.Dataset.from_list([{**r, "source": "arith"} for r in rows]).save_to_disk(str(src))
    out = tmp_path / "scored"
    assert _score(src, f"{out}/", tiny_dir) == 0
    ds = datasets.load_from_disk(str(out))
    assert len(ds) == len(rows) and ds["id"] == [r["id"] for r in rows]
    assert {"prompt", "response", "source", *RESULT_KEYS} <= set(ds.column_names)
    by_id = {r["id"]: r for r in rows}
    for got in ds:
        assert (got["prompt"], got["response"], got["source"]) == (
            by_id[got["id"]]["prompt"],
            by_id[got["id"]]["response"],
            "arith",
        )
        for key in RESULT_KEYS:
            assert got[key] == pytest.approx(ref[got["id"]][key], rel=1e-6)
    # rerun: already complete, the data set is written again from the stored results
    assert _score(src, f"{out}/", tiny_dir) == 0 and len(datasets.load_from_disk(str(out))) == len(rows)


def test_parquet_shards_and_a_cached_data_set_by_name(tmp_path, tiny_dir, reference, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows, ref = reference
    shards = tmp_path / "shards" / "data"
    shards.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows[:5]), shards / "train-00000-of-00002.parquet")
    pq.write_table(pa.Table.from_pylist(rows[5:]), shards / "train-00001-of-00002.parquet")
    assert _score(tmp_path / "shards", tmp_path / "from_shards.jsonl", tiny_dir) == 0
    got = read_jsonl(tmp_path / "from_shards.jsonl")
    assert [r["id"] for r in got] == [r["id"] for r in rows]  # shards in name order
    assert all(r["eas"] == pytest.approx(ref[r["id"]]["eas"], rel=1e-6) for r in got)

    # NAME:SPLIT from the local datasets cache (put there by loading the local repository once)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf_cache"))
    datasets.load_dataset(str(tmp_path / "shards"), split="train")
    assert _score("shards:train", tmp_path / "from_cache.jsonl", tiny_dir) == 0
    assert [r["eas"] for r in read_jsonl(tmp_path / "from_cache.jsonl")] == [r["eas"] for r in got]


class _CountingDataset:
    """A stand-in data set that counts the rows handed out, batch by batch."""

    column_names = ("id", "prompt", "response")

    def __init__(self, rows):
        self.rows, self.pulled = rows, 0

    def iter(self, batch_size):
        for start in range(0, len(self.rows), batch_size):
            batch = self.rows[start : start + batch_size]
            self.pulled += len(batch)
            yield {c: [r[c] for r in batch] for c in self.column_names}


def test_reading_is_streamed_one_batch_at_a_time(monkeypatch):
    rows = arithmetic_records(30)
    fake = _CountingDataset(rows)
    monkeypatch.setattr(hf_datasets, "ROW_BATCH", 4)
    monkeypatch.setattr(hf_datasets, "open_dataset", lambda spec: fake)
    source, columns = hf_datasets.dataset_source("fake:train")
    assert columns == {"id", "prompt", "response"}
    assert inspect.isgenerator(source.open_rows())
    fake.pulled = 0
    records = read_records(source)
    for consumed, rec in enumerate(records, start=1):
        # never more than one batch ahead of what was consumed: the table is never held whole
        assert consumed <= fake.pulled <= consumed + 4 - 1, (consumed, fake.pulled)
        assert rec.id == rows[consumed - 1]["id"]
    assert consumed == len(rows) > 4


def test_a_real_data_set_is_memory_mapped_or_streamed(tmp_path):
    datasets.Dataset.from_list(arithmetic_records(6)).save_to_disk(str(tmp_path / "disk"))
    on_disk = hf_datasets.open_dataset(str(tmp_path / "disk"))
    assert on_disk.cache_files and all(f["filename"].startswith(str(tmp_path)) for f in on_disk.cache_files)
    (tmp_path / "pq").mkdir()
    datasets.Dataset.from_list(arithmetic_records(6)).to_parquet(str(tmp_path / "pq" / "a.parquet"))
    assert isinstance(hf_datasets.open_dataset(str(tmp_path / "pq")), datasets.IterableDataset)


def test_messages_data_set_scored_and_selected_into_a_data_set(tmp_path, tiny_dir, reference):
    rows, ref = reference
    chats = [
        {"id": r["id"], "messages": [{"role": "user", "content": r["prompt"]}, {"role": "assistant", "content": r["response"]}]}
        for r in rows
    ]  # fmt: skip
    src = tmp_path / "chats"
    datasets.Dataset.from_list(chats).save_to_disk(str(src))
    assert _score(src, tmp_path / "scored.jsonl", tiny_dir) == 0
    assert all(r["eas"] == pytest.approx(ref[r["id"]]["eas"], rel=1e-6) for r in read_jsonl(tmp_path / "scored.jsonl"))
    out = tmp_path / "picked"
    args = ["-q", "select", str(src), "--strategy", "length", "--budget", "3", "--model", str(tiny_dir)]
    assert main([*args, "--out", f"{out}/"]) == 0
    picked = datasets.load_from_disk(str(out))
    assert len(picked) == 3 and picked["selection_rank"] == [1, 2, 3]
    assert {"messages", "prompt", "response", "selection_score"} <= set(picked.column_names)
    longest = sorted(rows, key=lambda r: len(r["prompt"]) + len(r["response"]), reverse=True)[:3]
    assert set(picked["id"]) == {r["id"] for r in longest}


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.mkdir(), "not a data set (expected a save_to_disk folder with state.json, or *.parquet"),
        (
            lambda p: datasets.DatasetDict(
                {"train": datasets.Dataset.from_list([{"a": 1}]), "test": datasets.Dataset.from_list([{"a": 2}])}
            ).save_to_disk(str(p)),
            "holds the splits test, train; name one as",
        ),
        (
            lambda p: datasets.Dataset.from_list([{"question": "q", "trace": "t"}]).save_to_disk(str(p)),
            "columns question, trace fit no layout: expected prompt + response",
        ),
    ],
)
def test_a_bad_data_set_gets_one_line_naming_what_was_expected(tmp_path, tiny_dir, capsys, make, message):
    make(tmp_path / "in")
    capsys.readouterr()  # the progress bars of save_to_disk above
    assert _score(tmp_path / "in", tmp_path / "out.jsonl", tiny_dir) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_a_name_not_in_the_cache_and_a_bad_split(tmp_path, tiny_dir, capsys, monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf_cache"))
    assert _score("nobody/nothing:train", tmp_path / "out.jsonl", tiny_dir) == 2
    err = capsys.readouterr().err.strip()
    assert "nobody/nothing: not in the local datasets cache" in err and "\n" not in err
    (tmp_path / "repo").mkdir()
    write_jsonl(tmp_path / "repo" / "train.jsonl", arithmetic_records(2))
    datasets.load_dataset(str(tmp_path / "repo"), split="train")
    capsys.readouterr()
    assert _score("repo:validation", tmp_path / "out.jsonl", tiny_dir) == 2
    err = capsys.readouterr().err.strip()
    assert "repo:validation: Bad split: validation. Available splits: ['train']" in err and "\n" not in err


def test_out_folder_must_not_be_the_input_or_a_foreign_folder(tmp_path, tiny_dir, capsys):
    src = tmp_path / "traces"
    datasets.Dataset.from_list(arithmetic_records(2)).save_to_disk(str(src))
    capsys.readouterr()
    assert _score(src, f"{src}/", tiny_dir) == 2
    assert "--out must not be the input data set" in capsys.readouterr().err
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    assert _score(src, f"{tmp_path / 'busy'}/", tiny_dir) == 2
    assert "exists and is not a data set written by eas" in capsys.readouterr().err
