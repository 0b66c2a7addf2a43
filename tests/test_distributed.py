"""The Ray engine gives the rows of the single-process run, in input order (local Ray)."""

import json

import pytest
from helpers import make_tiny_llama, write_jsonl

from eas.config import EASConfig
from eas.io import FieldMap, read_records
from eas.scoring import ScoreError, load_backend, score_records

pytestmark = pytest.mark.ray

ROWS = [
    {"id": "a", "prompt": "What is 2+3?", "response": r"We add 2 and 3 to get 5. So the answer is \boxed{5}."},
    {"id": 7, "prompt": "What is 12*3?", "response": r"12*3 = 36. Final: \boxed{36}. Done"},
    {"id": "bad", "prompt": "q", "response": "no boxed answer"},
    {"id": "c", "prompt": "Compute 7-4.", "response": r"7 minus 4 leaves 3, \boxed{3}"},
    {"id": "d", "prompt": "What is 9+9?", "response": r"Nine and nine make eighteen: \boxed{18}"},
    {"id": "e", "prompt": "What is 1+1?", "response": r"One plus one is two, \boxed{2}."},
]
# Actors pack other groups of records (batch_records) and use other torch thread counts
# than the local run, so float32 entropies may differ by rounding: measured up to 1.05e-5
# bits at 5.85 bits (relative 1.8e-6) on one probe of twelve, but a tighter bound than
# packed vs naive's 1e-3 bits failed once under load; relative 1e-4 for PPL-like figures.
TOL = {"rel": 1e-4, "abs": 1e-3}


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    from eas.distributed import _local_runtime_env

    ray.init(num_cpus=2, include_dashboard=False, runtime_env=_local_runtime_env(), log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory, tokenizer):
    path = tmp_path_factory.mktemp("tiny")
    make_tiny_llama(len(tokenizer)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _same(rows, ref):
    assert len(rows) == len(ref)
    for r, e in zip(rows, ref, strict=True):
        if isinstance(e, ScoreError):
            assert r == e
            continue
        assert list(r) == list(e) and r["id"] == e["id"]
        for k, v in e.items():
            if isinstance(v, (float, list)):
                assert r[k] == pytest.approx(v, **TOL), k
            else:
                assert r[k] == v, k


def test_rows_come_back_in_input_order_when_a_later_batch_finishes_first(ray_local):
    from eas.distributed import RayOptions, _stream, init_ray

    # A dataset snapshots the DataContext when it is created: the order must be asked
    # for before then (init_ray does), not only when the map runs.
    ray_local.data.DataContext.get_current().execution_options.preserve_order = False
    init_ray(RayOptions())

    class SlowFirstBatch:  # defined here, so Ray ships it by value to the actors
        def __init__(self, delay_s):
            self.delay_s = delay_s

        def __call__(self, batch):
            import time

            if int(batch["i"][0]) == 0:
                time.sleep(self.delay_s)
            return batch

    ds = ray_local.data.from_items([{"i": i} for i in range(8)]).repartition(8).materialize()
    options = RayOptions(workers=2, batch_records=1)
    rows = list(_stream(ds, SlowFirstBatch, {"delay_s": 3.0}, options, "numpy"))
    assert [int(r["i"]) for r in rows] == list(range(8))


def test_ray_two_workers_equal_single_process(ray_local, tiny_dir, tmp_path):
    from eas.distributed import RayOptions, score_with_ray

    src = write_jsonl(tmp_path / "in.jsonl", ROWS)
    config = EASConfig(trajectory=True)
    ref = list(score_records(read_records(src, FieldMap()), load_backend(str(tiny_dir)), config))
    kwargs = {"model": str(tiny_dir)}
    rows = list(score_with_ray(read_records(src, FieldMap()), kwargs, config, RayOptions(workers=2, batch_records=2)))
    assert [getattr(r, "id", None) or r["id"] for r in rows] == ["a", 7, "bad", "c", "d", "e"]
    assert isinstance(rows[2], ScoreError) and "boxed" in rows[2].reason
    _same(rows, ref)


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_cli_engine_ray_reads_the_file_with_ray_data(ray_local, tiny_dir, tmp_path, fmt):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from eas.cli import main

    rows = [r for r in ROWS if r["id"] != 7]
    rows[3] = {**rows[3], "id": None}  # falls back to the row index
    if fmt == "jsonl":
        src = write_jsonl(tmp_path / "in.jsonl", rows)
        with src.open("a") as f:
            f.write("\n{not json\n")  # a blank line (skipped) and a bad line (row index 5)
    else:
        src = tmp_path / "in.parquet"
        pq.write_table(pa.Table.from_pylist(rows), src)
    local, dist = tmp_path / "local.parquet", tmp_path / "ray.parquet"
    common = ["-q", "score", str(src), "--model", str(tiny_dir), "--trajectory"]
    assert main([*common, "--out", str(local)]) == 3
    assert main([*common, "--out", str(dist), "--engine", "ray", "--workers", "2"]) == 3
    _same(pq.read_table(dist).to_pylist(), pq.read_table(local).to_pylist())
    assert [r["id"] for r in pq.read_table(dist).to_pylist()] == ["a", "c", "3", "e"]
    read = lambda name: [json.loads(x) for x in (tmp_path / name).read_text().splitlines()]  # noqa: E731
    assert read("ray.errors.jsonl") == read("local.errors.jsonl")
    assert [e["id"] for e in read("ray.errors.jsonl")] == (["bad", 5] if fmt == "jsonl" else ["bad"])

    kept = tmp_path / "kept.parquet"
    assert main([*common, "--out", str(kept), "--engine", "ray", "--workers", "2", "--keep-input"]) == 3
    by_id = {str(i if r["id"] is None else r["id"]): r for i, r in enumerate(rows)}  # ids as written
    for k, d in zip(pq.read_table(kept).to_pylist(), pq.read_table(dist).to_pylist(), strict=True):
        assert {n: k[n] for n in d} == d  # the same results, plus the input's fields
        assert (k["prompt"], k["response"]) == (by_id[k["id"]]["prompt"], by_id[k["id"]]["response"])


def test_cli_engine_ray_bad_model_is_reported(ray_local, tmp_path, capsys):
    from eas.cli import main

    src = write_jsonl(tmp_path / "in.jsonl", ROWS[:1])
    args = ["-q", "score", str(src), "--model", str(tmp_path / "no-model"), "--engine", "ray", "--workers", "1"]
    assert main([*args, "--out", str(tmp_path / "o.jsonl")]) == 2
    # Ray Data logs the actor's traceback itself; our last line is a one-line message.
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("eas score: error: the ray engine failed:") and "no-model" in last
