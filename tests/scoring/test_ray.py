"""The Ray engine gives the rows of the single-process run, in input order (local Ray)."""

import os
import signal
import subprocess
import sys
import time

import pytest
from support import arithmetic_records, count_parts, make_tiny_llama, read_jsonl, write_jsonl

from eas.backends.load import load_backend
from eas.backends.spec import BackendSpec
from eas.config import EASConfig
from eas.scoring.batches import ScoreError
from eas.scoring.runs import score_records
from eas.storage.inputs import FieldMap, read_records

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
    from eas.scoring.ray import _local_runtime_env

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
            if k == "token_spans":  # character offsets: exact
                assert r[k] == v, k
            elif isinstance(v, (float, list)):
                assert r[k] == pytest.approx(v, **TOL), k
            else:
                assert r[k] == v, k


def test_rows_come_back_in_input_order_when_a_later_batch_finishes_first(ray_local):
    from eas.scoring.ray import RayOptions, in_input_order, score_batches

    class SlowFirstBatch:  # defined here, so Ray ships it by value to the actors
        """A stand-in actor: the first batch takes 3 s, the others none; results are the batch."""

        def __init__(self, backend_kwargs, config):
            pass

        def score(self, index, batch):
            import time

            if index == 0:
                time.sleep(3.0)
            return index, batch

    batches = ((i, [i]) for i in range(8))
    done = list(score_batches(batches, {}, EASConfig(), RayOptions(workers=2), scorer=SlowFirstBatch))
    assert [i for i, _ in done] != list(range(8))  # batch 0 finished last, or at least late
    rows = list(in_input_order(iter(done)))
    assert rows == list(range(8))


def test_ray_two_workers_equal_single_process(ray_local, tiny_dir, tmp_path):
    from eas.scoring.ray import RayOptions, score_with_ray

    src = write_jsonl(tmp_path / "in.jsonl", ROWS)
    config = EASConfig(trajectory=True)
    ref = list(score_records(read_records(src, FieldMap()), load_backend(str(tiny_dir)), config))
    spec = BackendSpec(model=str(tiny_dir))
    rows = list(score_with_ray(read_records(src, FieldMap()), spec, config, RayOptions(workers=2, batch_records=2)))
    assert [getattr(r, "id", None) or r["id"] for r in rows] == ["a", 7, "bad", "c", "d", "e"]
    assert isinstance(rows[2], ScoreError) and "boxed" in rows[2].reason
    _same(rows, ref)


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_cli_engine_ray_writes_the_rows_of_a_local_run(ray_local, tiny_dir, tmp_path, fmt):
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
    assert read_jsonl(tmp_path / "ray.errors.jsonl") == read_jsonl(tmp_path / "local.errors.jsonl")
    assert [e["id"] for e in read_jsonl(tmp_path / "ray.errors.jsonl")] == (["bad", 5] if fmt == "jsonl" else ["bad"])

    kept = tmp_path / "kept.parquet"
    assert main([*common, "--out", str(kept), "--engine", "ray", "--workers", "2", "--keep-input"]) == 3
    by_id = {str(i if r["id"] is None else r["id"]): r for i, r in enumerate(rows)}  # ids as written
    for k, d in zip(pq.read_table(kept).to_pylist(), pq.read_table(dist).to_pylist(), strict=True):
        assert {n: k[n] for n in d} == d  # the same results, plus the input's fields
        assert (k["prompt"], k["response"]) == (by_id[k["id"]]["prompt"], by_id[k["id"]]["response"])


def test_cli_engine_ray_bad_model_is_reported(ray_local, tmp_path, capsys):
    from eas.cli import main

    src = write_jsonl(tmp_path / "in.jsonl", ROWS[:1])
    (tmp_path / "no-model").mkdir()  # a folder passes the fail-fast name check; loading it fails in the actor
    args = ["-q", "score", str(src), "--model", str(tmp_path / "no-model"), "--engine", "ray", "--workers", "1"]
    assert main([*args, "--out", str(tmp_path / "o.jsonl")]) == 2
    # Ray Data logs the actor's traceback itself; our last line is a one-line message.
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("eas score: error: the ray engine failed:") and "no-model" in last


def _ray_cmd(src, out, model, *extra):
    return [sys.executable, "-m", "eas.cli", "-q", "score", str(src), "--out", str(out), "--model", str(model),
            "--engine", "ray", "--workers", "2", "--batch-tokens", "300", *extra]  # fmt: skip


def test_ray_run_killed_with_sigkill_then_rerun_equals_an_uninterrupted_run(tmp_path, tiny_dir):
    """The driver and its local Ray die at once; a rerun resumes from the stored parts."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    src = write_jsonl(tmp_path / "in.jsonl", arithmetic_records(40))
    ref = tmp_path / "ref.jsonl"
    done = subprocess.run(_ray_cmd(src, ref, tiny_dir), capture_output=True, text=True, env=env)
    assert done.returncode == 3, done.stderr  # two bad records

    out = tmp_path / "scored.jsonl"
    proc = subprocess.Popen(
        _ray_cmd(src, out, tiny_dir), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while count_parts(out) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and every process of its session (local Ray)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not out.exists() and count_parts(out) >= 2

    changed = subprocess.run(_ray_cmd(src, out, tiny_dir, "--trigger", "The answer is "), capture_output=True,
                             text=True, env=env)  # fmt: skip
    assert changed.returncode == 2 and "other settings" in changed.stderr and "trigger" in changed.stderr

    again = subprocess.run(_ray_cmd(src, out, tiny_dir), capture_output=True, text=True, env=env)
    assert again.returncode == 3, again.stderr
    assert out.read_text() == ref.read_text()
    assert (tmp_path / "scored.errors.jsonl").read_text() == (tmp_path / "ref.errors.jsonl").read_text()
    assert not out.with_name(out.name + ".parts").exists()
