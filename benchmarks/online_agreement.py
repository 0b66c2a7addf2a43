"""Online EAS against post-hoc scoring and against an unmonitored run, per dtype (embedded model, CPU).

For each dtype it samples ``--questions`` built-in questions (few-shot prompts) ``--n``
times with online probes at every token, then:

* flips: the same batch and seed without the monitor; a sample "differs" when its text
  is not identical (the wider monitored step can round x_t's logits differently and so,
  rarely, draw another token); printed as samples that differ out of all, and the first
  position where they part;
* |dH|: each online H_t against packed scoring of the same generated tokens
  (``HFBackend.measure``; the staircase of ``eas score``): the largest and the mean
  absolute difference per position, in bits;
* text: for the samples whose text re-tokenizes to the generated ids, the same against
  ``eas score --trajectory`` of the text (``score_records``).

The last line: ``agreement: float32_max=<bits> bfloat16_max=<bits> float32_flips=<a>/<n>
bfloat16_flips=<b>/<n>``.

Usage: python benchmarks/online_agreement.py [--questions 8] [--n 4] [--max-new-tokens 64]
[--dtypes float32,bfloat16] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

# Idle OpenMP threads sleep instead of spinning (set before torch loads; see cli.study._passive_openmp):
# on cores shared with other processes, spinning threads made a small matmul 100x slower.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _measure(be, dtype: str, args: argparse.Namespace) -> dict:
    import numpy as np

    from eas.backends.base import EncodedRecord
    from eas.backends.hf.generate import generate_samples
    from eas.backends.prompts import text_prompt_ids
    from eas.config import EASConfig, MonitorConfig, SamplingConfig
    from eas.records import Record
    from eas.sampling.online import BatchMonitor, online_setup
    from eas.sampling.online.rows import online_row
    from eas.sampling.online.sample import batch_probe_seed
    from eas.sampling.questions import build_prompt, builtin_questions_path, load_fewshot, load_questions
    from eas.scoring.runs import score_records

    tok = be.tokenizer
    questions = load_questions(builtin_questions_path())[: args.questions]
    prompts = [build_prompt(tok, q, load_fewshot(None)) for q in questions]
    sampling = SamplingConfig(n=args.n, temperature=0.7, max_new_tokens=args.max_new_tokens, seed=args.seed,
                              batch_size=args.n * 2)  # fmt: skip
    eas = EASConfig(end="response", trajectory=True)
    setup = online_setup(tok, eas, MonitorConfig(trajectory=True))
    per_batch = max(1, sampling.batch_size // sampling.n)
    rows, ids, row_prompts = [], [], []
    started = time.perf_counter()
    for b, start in enumerate(range(0, len(prompts), per_batch)):
        group = prompts[start : start + per_batch]
        watch = BatchMonitor(tok, len(group) * sampling.n, setup, batch_probe_seed(0, b), sampling.max_new_tokens)
        for _ in be.decode_watched(group, sampling, watch, b):
            pass
        for r in range(len(group) * sampling.n):
            rows.append(online_row(tok, watch.finished[r], setup))
            ids.append(watch.finished[r].reasoning.ids)
            row_prompts.append(group[r // sampling.n])
    online_s = time.perf_counter() - started
    plain = [s for per_q in generate_samples(be.model, tok, prompts, sampling) for s in per_q]
    differ = [i for i, (r, p) in enumerate(zip(rows, plain, strict=True)) if r["response"] != p]
    first = []
    for i in differ:
        a, b = rows[i]["response"], plain[i]
        first.append(next((j for j, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))))
    diffs, text_diffs, n_text = [], [], 0
    for row, gen, prompt in zip(rows, ids, row_prompts, strict=True):
        if row.get("trajectory") is None or row["n_probes"] < 1:
            continue
        enc = EncodedRecord(Record("x", prompt, "x"), text_prompt_ids(tok, prompt), list(gen), list(setup.suffix_ids),
                            row["answer_end_token"])  # fmt: skip
        ref = be.measure([enc])[0].probe_entropies
        diffs += list(np.abs(np.asarray(row["trajectory"]) - ref))
        if row["retokenizes"]:
            post = next(score_records([Record("x", prompt, row["response"])], be, EASConfig(use_chat_template=False,
                                      end="response", trajectory=True)))  # fmt: skip
            if isinstance(post, dict) and len(post["trajectory"]) == len(row["trajectory"]):
                n_text += 1
                text_diffs += list(np.abs(np.asarray(row["trajectory"]) - np.asarray(post["trajectory"])))
    d, td = np.asarray(diffs), np.asarray(text_diffs)
    return {
        "dtype": dtype,
        "samples": len(rows),
        "differ": len(differ),
        "first_char": first,
        "positions": int(d.size),
        "max": float(d.max()) if d.size else float("nan"),
        "mean": float(d.mean()) if d.size else float("nan"),
        "text_samples": n_text,
        "text_max": float(td.max()) if td.size else float("nan"),
        "online_s": online_s,
    }


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="embedded")
    p.add_argument("--questions", type=int, default=8)
    p.add_argument("--n", type=int, default=4)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--dtypes", default="float32,bfloat16")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    from eas.backends.load import load_backend

    results = []
    for dtype in args.dtypes.split(","):
        be = load_backend(args.model, device="cpu", dtype=dtype)
        r = _measure(be, dtype, args)
        results.append(r)
        print(
            f"{dtype}: samples={r['samples']} differ={r['differ']} (first differing character {r['first_char']}) "
            f"positions={r['positions']} max|dH|={r['max']:.3g} mean|dH|={r['mean']:.3g} bits; "
            f"eas score of the text: {r['text_samples']} samples, max|dH|={r['text_max']:.3g} bits",
            flush=True,
        )
    by = {r["dtype"]: r for r in results}
    parts = [f"{d}_max={by[d]['max']:.3g}" for d in by] + [
        f"{d}_flips={by[d]['differ']}/{by[d]['samples']}" for d in by
    ]
    print("agreement: " + " ".join(parts))
    return results


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
