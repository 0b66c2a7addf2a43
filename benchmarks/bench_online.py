"""Online EAS: what probing inside the decoding loop costs (embedded model, CPU).

Per question (the built-in few-shot prompts), one sampler batch of ``--n`` samples
(default 8, one question a batch) is decoded, interleaved so that the load of a shared
machine weighs on every variant alike:

* plain: unmonitored sampling (``Backend.sample``'s loop);
* every: online probes after every generated token (``--monitor``);
* every4: one probe per block of 4 tokens (``--probe-every 4``);
* posthoc: plain sampling, then ``eas score`` of the samples (packed scoring, every position).

Same batch and seed everywhere, so every variant generates the same tokens (checked).
Printed: decode tokens/s of each (whole batches: prefill, decoding, probes, rows), the
ratios monitored/unmonitored, and the cost of online EAS against generation + packed
scoring. Last line: ``online: every=<ratio> every4=<ratio>`` (tokens/s monitored over
unmonitored; goals >= 0.4 and >= 0.75 on a CPU).

Usage: python benchmarks/bench_online.py [--questions 4] [--n 8] [--max-new-tokens 96]
[--rounds 1] [--model embedded] [--dtype float32] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

# Idle OpenMP threads sleep instead of spinning (set before torch loads; see cli.study._passive_openmp):
# on cores shared with other processes, spinning threads made a small matmul 100x slower.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _time(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t, out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="embedded")
    p.add_argument("--questions", type=int, default=4)
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=96)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)

    from eas.backends.load import load_backend
    from eas.config import EASConfig, MonitorConfig, SamplingConfig
    from eas.records import Record
    from eas.sampling.online import online_setup
    from eas.sampling.online.sample import monitor_batch
    from eas.sampling.questions import build_prompt, builtin_questions_path, load_fewshot, load_questions
    from eas.scoring.runs import score_records

    be = load_backend(args.model, device=args.device, dtype=args.dtype)
    tok = be.tokenizer
    sampling = SamplingConfig(n=args.n, batch_size=args.n, temperature=0.7, max_new_tokens=args.max_new_tokens)
    eas = EASConfig(end="response")
    setups = {k: online_setup(tok, eas, MonitorConfig(probe_every=k)) for k in (1, 4)}
    questions = load_questions(builtin_questions_path())[: args.questions]
    prompts = [build_prompt(tok, q, load_fewshot(None)) for q in questions]
    spent = {"plain": 0.0, "every": 0.0, "every4": 0.0, "posthoc": 0.0}
    tokens = 0
    posthoc = EASConfig(end="response", use_chat_template=False)
    for _ in range(args.rounds):
        for b, prompt in enumerate(prompts):
            s_plain, texts = _time(be.sample, [prompt], sampling, first_batch=b)
            s1, rows1 = _time(monitor_batch, be, [prompt], sampling, setups[1], b)
            s4, rows4 = _time(monitor_batch, be, [prompt], sampling, setups[4], b)
            if [r["response"] for r in rows1] != texts[0] or [r["response"] for r in rows4] != texts[0]:
                print(f"warning: question {b}: monitored samples differ from the unmonitored ones", file=sys.stderr)
            records = [Record(f"{b}/{k}", prompt, t) for k, t in enumerate(texts[0]) if t.strip()]
            s_score, _ = _time(lambda recs: list(score_records(recs, be, posthoc)), records)
            spent["plain"] += s_plain
            spent["every"] += s1
            spent["every4"] += s4
            spent["posthoc"] += s_plain + s_score
            tokens += sum(r["tokens_generated"] for r in rows1)
    rate = {k: tokens / v for k, v in spent.items()}
    device = f"{args.device}, {args.dtype}"
    print(f"model={args.model} ({device}) batches={len(prompts) * args.rounds} samples/batch={args.n} tokens={tokens}")
    for k in ("plain", "every", "every4", "posthoc"):
        print(f"{k}: {rate[k]:.1f} tokens/s ({spent[k]:.1f} s)")
    every, every4 = rate["every"] / rate["plain"], rate["every4"] / rate["plain"]
    cost = spent["every"] / spent["posthoc"]
    print(f"online/(generate+packed scoring) time: every={cost:.3f} every4={spent['every4'] / spent['posthoc']:.3f}")
    print(f"online: every={every:.3f} every4={every4:.3f}")
    return {"every": every, "every4": every4, "online_over_posthoc": cost, **rate}


if __name__ == "__main__":
    main()
