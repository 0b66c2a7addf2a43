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


def test_bench_stride_pool_meets_the_spec(tokenizer):
    from eas.config import EASConfig
    from eas.scoring.probes import encode_record

    pool = _load("bench_stride").make_pool(tokenizer)
    n = sorted(encode_record(tokenizer, r, EASConfig()).n_probes for r in pool)
    assert len(pool) == 40 and n[0] == 100 and n[-1] == 1400 and len(set(n)) == 40


def test_bench_stride_runs_small(capsys, embedded_dir):
    results = _load("bench_stride").main(
        ["--traces", "4", "--min-probes", "30", "--max-probes", "60", "--strides", "1,8"]
    )
    assert math.isclose(results[1]["spearman"], 1.0) and results[1]["rel_err"] == 0.0 and results[1]["cover2se"] == 1.0
    assert 0 < results[8]["probes_run"] < 0.25
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1].startswith("stride8: cost=") and "max |H_t(strided run)" in out


def test_amortised_pools_are_scorable_and_varied(tokenizer):
    from eas.config import EASConfig
    from eas.records import Record
    from eas.scoring.probes import encode_record

    pools = _load("amortised_pools")
    for style, low, high in (("arithmetic", 80, 1600), ("shift", 25, 320)):
        rows = pools.make_pool(style, 40)
        assert rows == pools.make_pool(style, 40)  # seeded
        encs = [encode_record(tokenizer, Record(r["id"], r["prompt"], r["response"]), EASConfig()) for r in rows]
        probes = [e.n_probes for e in encs]
        assert low <= min(probes) and max(probes) <= high and max(probes) > 3 * min(probes)


def test_bench_online_runs_small(capsys, embedded_dir):
    r = _load("bench_online").main(["--questions", "1", "--n", "2", "--max-new-tokens", "6"])
    assert r["every"] > 0 and r["every4"] > 0 and r["online_over_posthoc"] > 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("online: every=")


def test_online_agreement_runs_small(capsys, embedded_dir):
    (r,) = _load("online_agreement").main(
        ["--questions", "1", "--n", "2", "--max-new-tokens", "8", "--dtypes", "float32"]
    )
    assert r["samples"] == 2 and r["positions"] >= 2 and r["max"] < 1e-3  # float32: online == packed
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("agreement: float32_max=")
