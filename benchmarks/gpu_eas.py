"""GPU benchmark: packed EAS probes on Qwen2-1.5B-shaped models, 4k and 16k-token traces.

The model has the shape of Qwen2-1.5B (28 layers, hidden 1536, 12 heads / 2 KV heads,
vocab 151,936) with random weights in bf16: only the cost is measured, not the values.
Each trace is random token ids (64 prompt tokens + the rest response, x_T = the last
token, a 4-token trigger). Printed per length:

* packed: seconds for all T-1 probes with the packed method (prefill + probe chunks);
* packed/plain: packed time over one plain forward pass over prompt + response (no
  cache, logits of the last position only), i.e. how many forward passes EAS costs;
* naive/packed: the naive method (one forward pass per probe) timed on a sample of
  ``--naive-sample`` probes spread over the trace and scaled to T-1 probes (an
  estimate, not a full naive run), over the packed time;
* stride8/packed and stride8/plain: the cost of stratified probing at k = 8 (one seeded
  probe per block of 8, ``eas.maths.stratified``) relative to exact packed EAS and to a
  plain forward pass;
* peak GPU memory of the packed run (CUDA only);
* packed_vs_naive_max_diff: the largest difference, in bits, between the packed and the
  naive entropies on the sampled probes.

    python benchmarks/gpu_eas.py                 # CUDA, bf16, lengths 4096 16384
    python benchmarks/gpu_eas.py --tiny          # a tiny model on CPU, to check it runs
    python benchmarks/gpu_eas.py --profile 4096  # also: where one packed run's time goes

``--profile T`` runs torch.profiler over one packed run at length T and prints the
operators that took the most device time (CPU time on a CPU), and the time of the
prefill, the probe chunks and the float32 head.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

PROMPT_TOKENS = 64
SUFFIX_TOKENS = 4


def build_model(tiny: bool, device: str, dtype: Any) -> Any:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    if tiny:
        shape = {"vocab_size": 1024, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2}
        shape |= {"num_attention_heads": 4, "num_key_value_heads": 2}
    else:  # Qwen2-1.5B
        shape = {"vocab_size": 151936, "hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28}
        shape |= {"num_attention_heads": 12, "num_key_value_heads": 2}
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
    return EncodedRecord(Record(f"len{length}", "", ""), prompt, response, suffix, answer_end=len(response))


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def packed_backend(model: Any, args: argparse.Namespace) -> Any:
    """The packed hf backend the benchmark times: one record per batch, ``--chunk-size`` or the device's default."""
    from eas.backends.hf.backend import HFBackend
    from eas.config import EngineConfig

    return HFBackend(model, None, EngineConfig(chunk_size=args.chunk_size, batch_tokens=0))


def run_length(model: Any, length: int, args: argparse.Namespace) -> dict[str, float]:
    from dataclasses import replace

    import numpy as np
    import torch

    from eas.backends.hf.backend import HFBackend
    from eas.config import EngineConfig
    from eas.maths.stratified import probe_plan

    enc = make_trace(length, model.config.vocab_size, seed=length)
    dev = args.device
    packed = packed_backend(model, args)
    naive = HFBackend(model, None, EngineConfig(method="naive"))
    full = torch.tensor([enc.prompt_ids + enc.response_ids], device=dev)
    with torch.inference_mode():
        model(input_ids=full[:, :256], use_cache=False, logits_to_keep=1)  # warm-up
        plain = float("inf")
        for _ in range(3):  # the best of 3: the unit of cost should not carry a one-off stall
            _sync(dev)
            t0 = time.perf_counter()
            model(input_ids=full, use_cache=False, logits_to_keep=1)
            _sync(dev)
            plain = min(plain, time.perf_counter() - t0)

    if dev.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    _sync(dev)
    t0 = time.perf_counter()
    (m,) = packed.measure([enc])
    _sync(dev)
    packed_s = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() / 2**30 if dev.startswith("cuda") else float("nan")

    plan = probe_plan(enc.n_probes, 8, seed=0)  # stratified probing, one probe per block of 8
    strided = replace(enc, probe_subset=plan.positions)
    _sync(dev)
    t0 = time.perf_counter()
    packed.measure([strided])
    _sync(dev)
    stride8_s = time.perf_counter() - t0

    ts = np.unique(np.linspace(1, enc.answer_end - 1, args.naive_sample).round().astype(int))
    with torch.inference_mode():
        _sync(dev)
        t0 = time.perf_counter()
        naive_h = []
        for t in ts:
            ids = torch.tensor(enc.probe_context(int(t)), device=dev)
            naive_h.append(naive.head.stats(naive._hidden(ids)[-1:]).entropies[0])  # the naive method's probe t
        _sync(dev)
        naive_est = (time.perf_counter() - t0) / len(ts) * enc.n_probes
    # packed vs naive on the sampled probes (the same model and dtype: only the rounding differs)
    diff = float(np.max(np.abs(np.asarray(naive_h, dtype=float) - m.probe_entropies[ts - 1])))
    return {
        "length": length,
        "probes": enc.n_probes,
        "plain_s": plain,
        "packed_s": packed_s,
        "stride8_s": stride8_s,
        "naive_est_s": naive_est,
        "naive_sample": len(ts),
        "peak_gib": peak,
        "mean_h": float(m.probe_entropies.mean()),
        "max_diff_bits": diff,
    }


def profile_packed(model: Any, length: int, args: argparse.Namespace) -> None:
    """Print the operators and phases that take one packed run's time (torch.profiler)."""
    import torch
    from torch.profiler import ProfilerActivity, profile, record_function

    enc = make_trace(length, model.config.vocab_size, seed=length)
    packed = packed_backend(model, args)
    cuda = args.device.startswith("cuda")
    phases = {"hidden (body)": packed._hidden, "head": packed.head.stats, "probes": packed._run_probes}

    def labelled(name: str, fn: Any) -> Any:
        def run(*a: Any, **k: Any) -> Any:
            with record_function(name):
                return fn(*a, **k)

        return run

    packed.measure([enc])  # warm-up
    for name, fn in phases.items():
        target = packed.head if name == "head" else packed
        setattr(target, fn.__name__, labelled(name, fn))
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        packed.measure([enc])
        _sync(args.device)
    key = "device_time_total" if cuda else "cpu_time_total"
    print(f"profile of one packed run at T={length}, top operators by {key}:")
    print(prof.key_averages().table(sort_by=key, row_limit=25, max_name_column_width=60))
    full = torch.tensor([enc.prompt_ids + enc.response_ids], device=args.device)
    with torch.inference_mode(), profile(activities=activities) as prof:
        model(input_ids=full, use_cache=False, logits_to_keep=1)
        _sync(args.device)
    print(f"profile of one plain forward pass at T={length}:")
    print(prof.key_averages().table(sort_by=key, row_limit=10, max_name_column_width=60))


def main(argv: list[str] | None = None) -> list[dict[str, float]]:
    import torch

    from eas.config import EngineConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny Qwen2 on CPU, short traces (a smoke test)")
    parser.add_argument("--lengths", type=int, nargs="+", default=None, help="trace lengths (default 4096 16384)")
    parser.add_argument("--device", default=None, help="default: cuda (cpu with --tiny)")
    parser.add_argument(
        "--chunk-size", type=int, default=None, help="probes per chunk (default: EngineConfig's for the device)"
    )
    parser.add_argument("--naive-sample", type=int, default=16, help="naive probes timed, then scaled to T-1")
    parser.add_argument("--profile", type=int, default=None, metavar="T", help="also profile one packed run at T")
    args = parser.parse_args(argv)
    args.device = args.device or ("cpu" if args.tiny else "cuda")
    lengths = args.lengths or ([96, 160] if args.tiny else [4096, 16384])
    dtype = torch.float32 if args.tiny else torch.bfloat16
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("CUDA is not available (use --tiny for a CPU smoke run)")
    model = build_model(args.tiny, args.device, dtype)
    name = "tiny Qwen2" if args.tiny else "Qwen2-1.5B-shaped (random weights)"
    chunk = (
        args.chunk_size or f"default ({EngineConfig().probes_per_chunk(args.device.startswith('cuda'), SUFFIX_TOKENS)})"
    )
    print(f"{name}, {str(dtype).removeprefix('torch.')}, {args.device}, chunk {chunk} probes")
    run_length(model, min(lengths[0], 512), args)  # warm-up (kernels, allocator), not printed
    results = []
    for length in lengths:
        r = run_length(model, length, args)
        results.append(r)
        print(
            f"T={r['length']:>6} probes={r['probes']:>6} packed={r['packed_s']:.3f}s "
            f"packed/plain={r['packed_s'] / r['plain_s']:.2f} "
            f"naive/packed={r['naive_est_s'] / r['packed_s']:.1f} (naive timed on {r['naive_sample']} probes, scaled) "
            f"stride8/packed={r['stride8_s'] / r['packed_s']:.2f} stride8/plain={r['stride8_s'] / r['plain_s']:.2f} "
            + (f"peak_gpu_mem={r['peak_gib']:.2f}GiB" if r["peak_gib"] == r["peak_gib"] else "peak_gpu_mem=n/a (cpu)")
            + f" packed_vs_naive_max_diff={r['max_diff_bits']:.2e}bits"
        )
    if args.profile:
        profile_packed(model, args.profile, args)
    return results


if __name__ == "__main__":
    main()
