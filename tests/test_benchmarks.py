"""The benchmark scripts run (tiny settings); their figures are not checked, only produced."""

import importlib.util
import math
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_eas_runs_tiny_on_cpu(capsys):
    results = _load("gpu_eas").main(["--tiny", "--lengths", "80", "--naive-sample", "4"])
    (r,) = results
    assert r["probes"] == 80 - 64 - 1
    assert all(r[k] > 0 for k in ("plain_s", "packed_s", "naive_est_s"))
    assert math.isfinite(r["mean_h"]) and 0 < r["mean_h"] <= math.log2(1024) + 1e-3
    assert "packed/plain=" in capsys.readouterr().out


def test_bench_backends_traces_are_scorable(tokenizer):
    from eas.config import EASConfig
    from eas.scoring.probes import encode_record

    traces = _load("bench_backends").make_traces(20)
    assert len({t.id for t in traces}) == 20
    encs = [encode_record(tokenizer, t, EASConfig()) for t in traces]
    assert all(e.n_probes > 10 for e in encs)
