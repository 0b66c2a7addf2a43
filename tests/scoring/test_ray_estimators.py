"""Every estimator runs on the Ray engine: `--amortised auto` and `--probe-stride 8` give the rows of a
local run, and a Ray run killed with SIGKILL resumes to the uninterrupted Ray run's output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from support import arithmetic_records, count_parts, read_jsonl, write_jsonl
from test_ray import _same

pytestmark = pytest.mark.ray

CASES = {
    "auto": ["--amortised", "auto", "--calibrate-fraction", "0.3", "--calibrate-seed", "1"],
    "stride8": ["--probe-stride", "8"],
}


def _cmd(src, out, model, extra, ray: bool) -> list[str]:
    engine = ["--engine", "ray", "--workers", "2"] if ray else []
    return [sys.executable, "-m", "eas.cli", "-q", "score", str(src), "--out", str(out), "--model", str(model),
            "--batch-tokens", "300", "--trajectory", *extra, *engine]  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_ray_gives_the_local_rows_and_resumes_after_sigkill(tmp_path, tiny_dir, case):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    src = write_jsonl(tmp_path / "in.jsonl", arithmetic_records(24))
    local, ref, out = tmp_path / "local.jsonl", tmp_path / "ref.jsonl", tmp_path / "scored.jsonl"
    extra = CASES[case]
    for path, ray in ((local, False), (ref, True)):
        done = subprocess.run(_cmd(src, path, tiny_dir, extra, ray), capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stderr
    _same(read_jsonl(ref), read_jsonl(local))
    if case == "auto":
        methods = [r["eas_method"] for r in read_jsonl(ref)]
        assert methods.count("exact") == 8 and methods.count("amortised") == 16  # ceil(0.3 * 24) exact
    else:
        assert {r["probe_stride"] for r in read_jsonl(ref)} == {8}

    proc = subprocess.Popen(
        _cmd(src, out, tiny_dir, extra, True), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while count_parts(out) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its local Ray
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not out.exists() and count_parts(out) >= 2
    again = subprocess.run(_cmd(src, out, tiny_dir, extra, True), capture_output=True, text=True, env=env)
    assert again.returncode == 0, again.stderr
    assert out.read_text() == ref.read_text()
    assert not out.with_name(out.name + ".parts").exists()
