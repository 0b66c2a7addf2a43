"""Stratified probing (--probe-stride k) against exact EAS, on the embedded model (CPU).

On a seeded, varied pool of traces (default 40, 100-1400 probes each; ``make_pool``)
it scores every trace exactly (k = 1) and at k = 2, 4, 8, 16, interleaved trace by
trace so that the load of a shared machine weighs on every k alike, and prints one
line per k:

* cost: wall time of k over the wall time of exact (the same traces, the whole
  ``Exact.score_batch``: encode, measure, figures);
* spearman / spearman_mean: Spearman rho of the estimated vs the exact EAS, and of
  the estimated vs the exact mean EAS (EAS ranks are dominated by length, so the mean
  is the honest test of the estimate);
* top25_overlap: the share of the exact top-25 % (by EAS) that the estimate's
  top-25 % also holds;
* rel_err: mean |EAS_hat - EAS| / EAS;
* cover2se: the share of traces whose error is within 2 eas_se (the stated error).

Then a check line: the largest |H_t| difference between a strided run's probes and
the exact run's at the same t (the strided runs measure the same numbers), and the
last line ``stride8: cost=<x> spearman=<y> spearman_mean=<m> top25_overlap=<z>``.

Usage: python benchmarks/bench_stride.py [--traces 40] [--min-probes 100]
[--max-probes 1400] [--strides 1,2,4,8,16] [--seed 0]
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time

PROMPTS = (
    "Tom has some boxes of apples. Work out the total, step by step, and give the final answer.",
    "A train leaves at noon at a steady speed. How far has it gone? Reason carefully.",
    "Solve the puzzle and put the final answer in a box.",
    "Which number completes the pattern? Explain your reasoning.",
)
WORDS = [
    "maybe",
    "however",
    "apple",
    "river",
    "seven",
    "quietly",
    "window",
    "because",
    "garden",
    "yellow",
    "perhaps",
    "number",
    "wait",
    "again",
    "check",
    "carry",
    "bridge",
    "orange",
    "think",
    "whether",
    "twelve",
    "clock",
    "paper",
    "unless",
    "doubt",
    "result",
    "other",
    "method",
    "count",
    "flower",
    "rather",
    "simple",
    "hmm",
    "recall",
    "circle",
    "strange",
    "try",
]


def _arithmetic(rng: random.Random, i: int) -> str:
    a, b = rng.randint(2, 99), rng.randint(2, 99)
    return f"Step {i}: {a} plus {b} is {a + b}. "


def _doubt(rng: random.Random, i: int) -> str:
    words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 12)))
    return f"Hmm, {words}? "


def _digits(rng: random.Random, i: int) -> str:
    return " ".join(str(rng.randint(0, 9999)) for _ in range(rng.randint(3, 8))) + ". "


def _settled(rng: random.Random, i: int) -> str:
    return f"So the answer is {rng.choice((42, 42, 42, 17))}. "


STYLES = (_arithmetic, _doubt, _digits, _settled)


def make_pool(tokenizer, n: int = 40, min_probes: int = 100, max_probes: int = 1400, seed: int = 0) -> list:
    """``n`` seeded traces of ``min_probes``..``max_probes`` probes (T-1), varied in kind.

    Each trace draws its own mixture of four kinds of sentence (arithmetic steps,
    hesitant word salad, lists of numbers, a settled answer restated), so mean EAS
    varies across the pool as well as length; lengths are spread evenly over the range
    (a shuffled grid), and every trace ends in ``\\boxed{...}``.
    """
    from eas.records import Record

    rng = random.Random(seed)
    lengths = [min_probes + round(i * (max_probes - min_probes) / max(1, n - 1)) for i in range(n)]
    rng.shuffle(lengths)
    pool = []
    for j, target in enumerate(lengths):
        mix = [rng.random() ** 2 for _ in STYLES]
        tail = f" The final answer is \\boxed{{{rng.randint(1, 999)}}}."
        tail_len = len(tokenizer(tail, add_special_tokens=False)["input_ids"])
        # T-1 probes: x_T is the last token of the boxed content ("}." follow it).
        want = target - (tail_len - 2)
        parts, ids = [], []
        while len(ids) < want:
            for _ in range(8):
                parts.append(rng.choices(STYLES, weights=mix)[0](rng, len(parts) + 1))
            ids = tokenizer("".join(parts), add_special_tokens=False)["input_ids"]
        body = tokenizer.decode(ids[:want]).rstrip()
        pool.append(Record(f"s{j:02d}", PROMPTS[j % len(PROMPTS)], body + tail))
    return pool


def spearman(x, y) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic)


def top_overlap(exact, est, share: float = 0.25) -> float:
    """|top(exact) & top(est)| / |top|, the top ``share`` of the traces by value."""
    m = max(1, round(share * len(exact)))
    top = lambda v: set(sorted(range(len(v)), key=lambda i: -v[i])[:m])  # noqa: E731
    return len(top(exact) & top(est)) / m


def main(argv: list[str] | None = None) -> dict[int, dict[str, float]]:
    from eas.backends.hf.heap import claim_for_scoring

    claim_for_scoring()  # scoring on a CPU as the eas score process does (eas.backends.hf.heap)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--traces", type=int, default=40)
    p.add_argument("--min-probes", type=int, default=100)
    p.add_argument("--max-probes", type=int, default=1400)
    p.add_argument("--strides", default="1,2,4,8,16")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", default="embedded")
    args = p.parse_args(argv)

    import numpy as np
    import torch

    from eas.backends.load import load_backend
    from eas.config import EASConfig
    from eas.scoring.batches import ScoreError
    from eas.scoring.estimators.exact import Exact

    torch.manual_seed(0)
    strides = sorted({int(k) for k in args.strides.split(",")} | {1})
    backend = load_backend(args.model, device="cpu", dtype="float32")
    pool = make_pool(backend.tokenizer, args.traces, args.min_probes, args.max_probes, args.seed)
    estimators = {k: Exact(EASConfig(trajectory=True, probe_stride=k, probe_seed=args.seed)) for k in strides}
    estimators[1].score_batch(pool[:1], backend)  # warm-up

    rows: dict[int, list[dict]] = {k: [] for k in strides}
    seconds = dict.fromkeys(strides, 0.0)
    for i, rec in enumerate(pool):
        for k in strides[i % len(strides) :] + strides[: i % len(strides)]:  # rotate the order too
            t0 = time.perf_counter()
            (row,) = estimators[k].score_batch([rec], backend)
            seconds[k] += time.perf_counter() - t0
            if isinstance(row, ScoreError):
                raise SystemExit(f"trace {rec.id} was not scored: {row.reason}")
            rows[k].append(row)
        print(f"  trace {i + 1}/{len(pool)} done", file=sys.stderr, flush=True)

    exact = rows[1]
    eas = [r["eas"] for r in exact]
    mean = [r["mean_eas"] for r in exact]
    probes = [r["n_probes"] for r in exact]
    print(
        f"pool: {len(pool)} traces, {min(probes)}-{max(probes)} probes (median {int(np.median(probes))}), "
        f"mean EAS {min(mean):.2f}-{max(mean):.2f} bits; exact scoring took {seconds[1]:.1f} s"
    )
    results: dict[int, dict[str, float]] = {}
    drift = 0.0
    for k in strides:
        est = rows[k]
        err = np.array([abs(e["eas"] - x) for e, x in zip(est, eas, strict=True)])
        se = [e["eas_se"] for e in est]
        covered = [s is not None and d <= 2 * s + 1e-9 for d, s in zip(err, se, strict=True)]
        res = {
            "cost": seconds[k] / seconds[1],
            "probes_run": sum(e["n_probes_run"] for e in est) / sum(probes),
            "spearman": spearman([e["eas"] for e in est], eas),
            "spearman_mean": spearman([e["mean_eas"] for e in est], mean),
            "top25_overlap": top_overlap(eas, [e["eas"] for e in est]),
            "rel_err": float(np.mean(err / np.array(eas))),
            "cover2se": sum(covered) / len(covered),
        }
        results[k] = res
        for e, x in zip(est, exact, strict=True):
            full = np.asarray(x["trajectory"])
            t = np.asarray(e.get("trajectory_t") or range(1, full.size + 1))
            drift = max(drift, float(np.max(np.abs(np.asarray(e["trajectory"]) - full[t - 1]))))
        print(
            f"k={k:<3d} cost={res['cost']:.3f} probes_run={res['probes_run']:.3f} "
            f"spearman={res['spearman']:.4f} spearman_mean={res['spearman_mean']:.4f} "
            f"top25_overlap={res['top25_overlap']:.3f} rel_err={res['rel_err']:.4f} cover2se={res['cover2se']:.3f}"
        )
    print(f"check: max |H_t(strided run) - H_t(exact run)| at the same t = {drift:.2e} bits")
    if 8 in results:
        r = results[8]
        print(
            f"stride8: cost={r['cost']:.3f} spearman={r['spearman']:.4f} "
            f"spearman_mean={r['spearman_mean']:.4f} top25_overlap={r['top25_overlap']:.3f}"
        )
    if not all(math.isfinite(v) for r in results.values() for v in r.values()):
        raise SystemExit("a figure is not finite")
    return results


if __name__ == "__main__":
    main()
