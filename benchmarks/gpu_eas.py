"""GPU benchmark: packed EAS probes on Qwen2-1.5B- and 7B-shaped models, and a pool's throughput.

The models have the shapes of Qwen2-1.5B (28 layers, hidden 1536, 12 heads / 2 KV heads,
vocab 151,936) and Qwen2-7B (28 layers, hidden 3584, 28 heads / 4 KV heads, vocab
152,064), with random weights in bf16: only the cost is measured, not the values. Each
trace is random token ids (64 prompt tokens + the rest response, x_T = the last token,
a 4-token trigger). Printed per model and length (Qwen2-1.5B at T = 4096 and 16384,
7B at 4096), all with the default engine (``EngineConfig()``: ``--attention auto``, chunks
sized from free memory, the bf16 head on CUDA) unless said:

* plain: seconds of one plain forward pass over prompt + response (no cache, logits of
  the last position only), the unit of cost;
* packed/plain: the packed method's time for all T-1 probes over plain;
* naive/packed: the naive method (one forward pass per probe) timed on a sample of
  ``--naive-sample`` probes spread over the trace and scaled to T-1 probes (an
  estimate, not a full naive run), over the packed time;
* stride8/packed: the cost of stratified probing at k = 8 (one seeded probe per block
  of 8, ``eas.maths.stratified``) relative to exact packed EAS;
* peak memory of the packed run (CUDA only);
* flex_vs_sdpa: the packed time with ``attention="sdpa"`` over that with ``"flex"``
  (above 1: flex is faster);
* packed_vs_naive_max_diff: the largest difference, in bits, between the packed and the
  naive entropies on the sampled probes.

Then, per model, the throughput of a pool of ``--pool-traces`` traces of ``--pool-length``
tokens (64 of 4096 by default), in traces per hour, with today's default engine and with
the round-2 default it replaces (SDPA with dense masks, chunks of 8192 query tokens,
batches of 2048 tokens of work, the float32 head), and their ratio (the goal: >= 3).
The pool is batched as ``eas.scoring.batches.plan_batches`` batches records, counted in
tokens here (the traces have no text).

    python benchmarks/gpu_eas.py            # CUDA, bf16: the figures above
    python benchmarks/gpu_eas.py --smoke    # tiny models on CPU, short traces: it runs
    python benchmarks/gpu_eas.py --profile 4096   # also: where one packed run's time goes

``--profile T`` runs torch.profiler over one packed run of the 1.5B-shaped model at
length T and prints the operators that took the most device time (CPU time on a CPU).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

PROMPT_TOKENS = 64
SUFFIX_TOKENS = 4
SHAPES = {
    "qwen2-1.5b": {"vocab_size": 151936, "hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28}
    | {"num_attention_heads": 12, "num_key_value_heads": 2},
    "qwen2-7b": {"vocab_size": 152064, "hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28}
    | {"num_attention_heads": 28, "num_key_value_heads": 4},
}
SMOKE_SHAPES = {
    "qwen2-1.5b": {"vocab_size": 1024, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2}
    | {"num_attention_heads": 4, "num_key_value_heads": 2},
    "qwen2-7b": {"vocab_size": 1024, "hidden_size": 96, "intermediate_size": 192, "num_hidden_layers": 3}
    | {"num_attention_heads": 4, "num_key_value_heads": 2},
}
RUNS = (("qwen2-1.5b", 4096), ("qwen2-1.5b", 16384), ("qwen2-7b", 4096))
SMOKE_RUNS = (("qwen2-1.5b", 80), ("qwen2-1.5b", 112), ("qwen2-7b", 80))


def build_model(shape: dict[str, int], device: str, dtype: Any) -> Any:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        **shape,
        max_position_embeddings=32768,
        rope_theta=1_000_000.0,
        tie_word_embeddings=True,
        use_sliding_window=False,
        attn_implementation="sdpa",
    )
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2ForCausalLM(config)
    return model.to(dtype).eval()


def make_trace(length: int, vocab: int, seed: int) -> Any:
    import numpy as np

    from eas.backends.base import EncodedRecord
    from eas.records import Record

    rng = np.random.default_rng(seed)
    ids = rng.integers(100, vocab, size=length + SUFFIX_TOKENS).tolist()
    prompt, response, suffix = ids[:PROMPT_TOKENS], ids[PROMPT_TOKENS:length], ids[length:]
    return EncodedRecord(Record(f"len{length}-{seed}", "", ""), prompt, response, suffix, answer_end=len(response))


def engines(args: argparse.Namespace) -> dict[str, Any]:
    """The engines compared: today's default, its SDPA and flex variants, and the round-2 default."""
    from eas.config import EngineConfig

    chunk = {"chunk_size": args.chunk_size}
    return {
        "default": EngineConfig(**chunk),
        "sdpa": EngineConfig(attention="sdpa", **chunk),
        "flex": EngineConfig(attention="flex", **chunk),
        # round 2: dense masks, 8192 query tokens a chunk, 2048-token batches, float32 head
        "round2": EngineConfig(attention="sdpa", chunk_size=8192 // SUFFIX_TOKENS, batch_tokens=2048, head="float32"),
    }


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(device: str, fn: Any) -> tuple[float, Any]:
    _sync(device)
    t0 = time.perf_counter()
    out = fn()
    _sync(device)
    return time.perf_counter() - t0, out


def _peak_reset(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak_gib(device: str) -> float:
    import torch

    return torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else float("nan")


def run_length(model: Any, length: int, args: argparse.Namespace) -> dict[str, float]:
    from dataclasses import replace

    import numpy as np
    import torch

    from eas.backends.hf.backend import HFBackend
    from eas.config import EngineConfig
    from eas.maths.stratified import probe_plan

    enc = make_trace(length, model.config.vocab_size, seed=length)
    dev = args.device
    eng = engines(args)
    full = torch.tensor([enc.prompt_ids + enc.response_ids], device=dev)
    with torch.inference_mode():
        model(input_ids=full[:, :256], use_cache=False, logits_to_keep=1)  # warm-up
        plain = min(  # the best of 3: the unit of cost should not carry a one-off stall
            _timed(dev, lambda: model(input_ids=full, use_cache=False, logits_to_keep=1))[0] for _ in range(3)
        )
    times = {}
    for name in ("sdpa", "flex"):
        backend = HFBackend(model, None, eng[name])
        backend.measure([make_trace(min(length, 256), model.config.vocab_size, seed=1)])  # warm-up (compiles flex)
        times[name] = _timed(dev, lambda backend=backend: backend.measure([enc]))[0]
    packed = HFBackend(model, None, eng["default"])
    packed.measure([make_trace(min(length, 256), model.config.vocab_size, seed=1)])
    _peak_reset(dev)
    packed_s, (m,) = _timed(dev, lambda: packed.measure([enc]))
    peak = _peak_gib(dev)
    strided = replace(enc, probe_subset=probe_plan(enc.n_probes, 8, seed=0).positions)
    stride8_s = _timed(dev, lambda: packed.measure([strided]))[0]

    naive = HFBackend(model, None, EngineConfig(method="naive"))
    ts = np.unique(np.linspace(1, enc.answer_end - 1, args.naive_sample).round().astype(int))

    def naive_probes() -> list[float]:
        with torch.inference_mode():
            return [
                naive.head.stats(naive._hidden(torch.tensor(enc.probe_context(int(t)), device=dev))[-1:]).entropies[0]
                for t in ts
            ]

    naive_s, naive_h = _timed(dev, naive_probes)
    diff = float(np.max(np.abs(np.asarray(naive_h, dtype=float) - m.probe_entropies[ts - 1])))
    return {
        "length": length,
        "probes": enc.n_probes,
        "attention": packed.attention,
        "plain_s": plain,
        "packed_s": packed_s,
        "stride8_s": stride8_s,
        "naive_est_s": naive_s / len(ts) * enc.n_probes,
        "naive_sample": len(ts),
        "sdpa_s": times["sdpa"],
        "flex_s": times["flex"],
        "peak_gib": peak,
        "mean_h": float(m.probe_entropies.mean()),
        "max_diff_bits": diff,
    }


def pool_batches(encs: list[Any], batch_tokens: int) -> list[list[Any]]:
    """Consecutive traces grouped as ``plan_batches`` groups records (tokens of work: context + suffixes)."""
    batches: list[list[Any]] = [[]]
    size = 0
    for e in encs:
        n = len(e.prompt_ids) + len(e.response_ids) * (1 + len(e.suffix_ids))
        if batches[-1] and size + n > batch_tokens:
            batches.append([])
            size = 0
        batches[-1].append(e)
        size += n
    return batches


def run_pool(model: Any, args: argparse.Namespace) -> dict[str, float]:
    """Traces per hour of a pool, with today's default engine and with the round-2 default."""
    from eas.backends.hf.backend import HFBackend

    pool = [make_trace(args.pool_length, model.config.vocab_size, seed=1000 + i) for i in range(args.pool_traces)]
    eng = engines(args)
    out: dict[str, float] = {"traces": len(pool), "length": args.pool_length}
    for name in ("default", "round2"):
        backend = HFBackend(model, None, eng[name])
        backend.measure(pool[:1])  # warm-up
        batches = pool_batches(pool, backend.batch_tokens)
        seconds = _timed(args.device, lambda backend=backend, batches=batches: [backend.measure(b) for b in batches])[0]
        out[f"{name}_per_hour"] = len(pool) / seconds * 3600
        out[f"{name}_batches"] = len(batches)
    return out


def profile_packed(model: Any, length: int, args: argparse.Namespace) -> None:
    """Print the operators that take one packed run's time (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile

    from eas.backends.hf.backend import HFBackend

    enc = make_trace(length, model.config.vocab_size, seed=length)
    packed = HFBackend(model, None, engines(args)["default"])
    cuda = args.device.startswith("cuda")
    packed.measure([enc])  # warm-up
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        packed.measure([enc])
        _sync(args.device)
    key = "device_time_total" if cuda else "cpu_time_total"
    print(f"profile of one packed run at T={length} ({packed.attention}), top operators by {key}:")
    print(prof.key_averages().table(sort_by=key, row_limit=25, max_name_column_width=60))


def _line(name: str, r: dict[str, Any]) -> str:
    peak = f"{r['peak_gib']:.2f}GiB" if r["peak_gib"] == r["peak_gib"] else "n/a(cpu)"
    return (
        f"{name} T={r['length']} probes={r['probes']} attention={r['attention']} plain={r['plain_s']:.3f}s "
        f"packed={r['packed_s']:.3f}s packed/plain={r['packed_s'] / r['plain_s']:.2f} "
        f"naive/packed={r['naive_est_s'] / r['packed_s']:.1f} (naive timed on {r['naive_sample']} probes, scaled) "
        f"stride8/packed={r['stride8_s'] / r['packed_s']:.2f} peak_mem={peak} "
        f"flex_vs_sdpa={r['sdpa_s'] / r['flex_s']:.2f}x packed_vs_naive_max_diff={r['max_diff_bits']:.2e}bits"
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny models on CPU, short traces (checks that it runs)")
    parser.add_argument("--device", default=None, help="default: cuda (cpu with --smoke)")
    parser.add_argument("--chunk-size", type=int, default=None, help="probes per chunk (default: the engine's)")
    parser.add_argument("--naive-sample", type=int, default=16, help="naive probes timed, then scaled to T-1")
    parser.add_argument("--pool-traces", type=int, default=None, help="traces in the pool (default 64; 3 with --smoke)")
    parser.add_argument(
        "--pool-length", type=int, default=None, help="tokens a pool trace (default 4096; 80 with --smoke)"
    )
    parser.add_argument("--profile", type=int, default=None, metavar="T", help="also profile one packed run at T")
    args = parser.parse_args(argv)
    args.device = args.device or ("cpu" if args.smoke else "cuda")
    args.pool_traces = args.pool_traces or (3 if args.smoke else 64)
    args.pool_length = args.pool_length or (80 if args.smoke else 4096)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("CUDA is not available (use --smoke for a CPU run)")
    dtype = torch.float32 if args.smoke else torch.bfloat16
    shapes, runs = (SMOKE_SHAPES, SMOKE_RUNS) if args.smoke else (SHAPES, RUNS)
    card = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    kind = "smoke (tiny models: the figures only show that it runs)" if args.smoke else "random weights"
    print(f"{kind}, {str(dtype).removeprefix('torch.')}, {card}")
    results: dict[str, Any] = {"lengths": [], "pools": {}}
    for name in dict.fromkeys(n for n, _ in runs):
        model = build_model(shapes[name], args.device, dtype)
        for length in (t for n, t in runs if n == name):
            r = run_length(model, length, args)
            results["lengths"].append({"model": name, **r})
            print(_line(name, r))
        p = run_pool(model, args)
        results["pools"][name] = p
        print(
            f"{name} pool of {p['traces']} traces of T={p['length']}: default {p['default_per_hour']:.0f} traces/h "
            f"({p['default_batches']} batches), round-2 default {p['round2_per_hour']:.0f} traces/h "
            f"({p['round2_batches']} batches), ratio {p['default_per_hour'] / p['round2_per_hour']:.2f} (goal >= 3)"
        )
        if args.profile and name == "qwen2-1.5b":
            profile_packed(model, args.profile, args)
        del model
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()
    return results


if __name__ == "__main__":
    main()
