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


def test_gpu_eas_smoke_runs_on_cpu(capsys):
    """Every figure the GPU run prints, from tiny models on a CPU (values not checked beyond sanity)."""
    results = _load("gpu_eas").main(["--smoke", "--naive-sample", "4", "--pool-traces", "2"])
    assert [(r["model"], r["length"]) for r in results["lengths"]] == [
        ("qwen2-1.5b", 80),
        ("qwen2-1.5b", 112),
        ("qwen2-7b", 80),
    ]
    for r in results["lengths"]:
        assert r["probes"] == r["length"] - 64 - 1 and r["attention"] == "sdpa"  # auto on a CPU
        assert all(r[k] > 0 for k in ("plain_s", "packed_s", "stride8_s", "naive_est_s", "sdpa_s", "flex_s"))
        assert math.isfinite(r["mean_h"]) and 0 < r["mean_h"] <= math.log2(1024) + 1e-3
        assert r["max_diff_bits"] < 1e-3
    for pool in results["pools"].values():
        assert pool["traces"] == 2 and pool["default_per_hour"] > 0 and pool["round2_per_hour"] > 0
    out = capsys.readouterr().out
    for figure in (" plain=", "packed/plain=", "naive/packed=", "stride8/packed=", "peak_mem=", "flex_vs_sdpa="):
        assert out.count(figure) == 3, figure
    assert out.count("traces/h") == 4 and "(goal >= 3)" in out


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
