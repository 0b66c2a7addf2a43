"""Amortised EAS against exact EAS and stratified probing, in one run (embedded model, CPU).

Pools (``amortised_pools.py``): an ``arithmetic`` pool (multi-step sums with slips, about
80-1,400 response tokens) and a ``shift`` pool (other problem kinds, prose, long
digressions). The arithmetic pool is split in two halves: ``eas.scoring.calibration.calibrate``
fits a head on the first (exact packed EAS + one feature pass each); then, on

* ``in``:    the held-out half of the arithmetic pool,
* ``shift``: the other-style pool,

it scores every trace exactly (``score_records``), with the head (``Amortised.score_batch``:
one pass per record) and with ``--probe-stride`` 4 and 8 (same traces, interleaved batch by
batch with the others so that the load of a shared machine weighs on all alike), and prints,
for each: cost (wall time over exact's), per-position r (amortised only: stratified probing
predicts no position), Spearman of EAS and of mean EAS, top-25 % overlap (by mean EAS), and
mean |error| / EAS.

``--amortised auto`` on a mixed pool (the held-out arithmetic half + the shift pool): for
calibration fractions f, the seeded slice ``calibration_slice`` is fitted with
``fit_ridge_cv`` on the slice's exact trajectories and features (computed once for the
pool; the slice keeps its exact values, the rest is predicted, as ``eas score --amortised
auto`` writes it); printed: the whole pool's agreement with exact, the head's own CV
estimate, and the cost ``(f (exact + pass) + (1 - f) pass) / exact`` from the measured
times. A layer line compares feature sets by their cross-validated figures on the
calibration half.

Last line: ``amortised: cost=<x> spearman_mean_in=<a> spearman_mean_shift=<b>``.

Usage: python benchmarks/bench_amortised.py [--arith 40] [--shift 20] [--threads N]
[--fractions 0.1,0.2,0.3,0.5] [--tiny]   (--tiny: a tiny seeded model, for the tests)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from amortised_pools import make_pool

STRIDES = (4, 8)
LAYER_SETS = {"entropy only": (), "last": (30,), "15,30 (default)": (15, 30), "10,20,30": (10, 20, 30), "15": (15,)}


def _records(rows):
    from eas.records import Record

    return [Record(r["id"], r["prompt"], r["response"], r["answer"]) for r in rows]


def _backend(tiny: bool):
    from eas.backends.load import load_backend

    if not tiny:
        return load_backend("embedded", device="cpu", dtype="float32")
    from eas.backends.hf.backend import HFBackend
    from eas.backends.load import load_tokenizer
    from eas.testing.models import make_tiny_llama

    tok = load_tokenizer("embedded")
    return HFBackend(make_tiny_llama(len(tok)), tok)


def _timed(fn, clock: dict, key: str):
    t0 = time.perf_counter()
    out = fn()
    clock[key] = clock.get(key, 0.0) + time.perf_counter() - t0
    return out


def compare(records, backend, head, clock: dict) -> dict:
    """Exact, amortised and strided scores of ``records``, one small batch at a time."""
    from dataclasses import replace

    from eas.config import EASConfig
    from eas.scoring.batches import ScoreError, plan_batches
    from eas.scoring.estimators.amortised import Amortised
    from eas.scoring.estimators.exact import Exact

    exact_cfg = EASConfig(trajectory=True)
    exact, amortised = Exact(exact_cfg), Amortised(head, exact_cfg)
    strided = {k: Exact(replace(exact_cfg, probe_stride=k)) for k in STRIDES}
    out = {"exact": [], "amortised": [], **{f"stride{k}": [] for k in STRIDES}}
    for batch in plan_batches(records, 2048):
        out["exact"] += _timed(lambda b=batch: exact.score_batch(b, backend), clock, "exact")
        out["amortised"] += _timed(lambda b=batch: amortised.score_batch(b, backend), clock, "amortised")
        for k, est in strided.items():
            out[f"stride{k}"] += _timed(lambda b=batch, e=est: e.score_batch(b, backend), clock, f"stride{k}")
    errors = [f"{r.id}: {r.reason}" for rows in out.values() for r in rows if isinstance(r, ScoreError)]
    if errors:
        raise RuntimeError(f"benchmark traces failed to score: {errors[:3]}")
    return out


def report(name: str, scored: dict, clock: dict) -> dict:
    from eas.maths.agreement import agreement, spearman, top_overlap

    exact = [np.asarray(r["trajectory"]) for r in scored["exact"]]
    probes = [t.size for t in exact]
    print(f"{name}: {len(exact)} traces, {min(probes)}-{max(probes)} probes; exact {clock['exact']:.1f} s")
    results = {}
    fig = agreement([np.asarray(r["trajectory"]) for r in scored["amortised"]], exact)
    results["amortised"] = {**fig, "cost": clock["amortised"] / clock["exact"]}
    eas, mean = [r["eas"] for r in scored["exact"]], [r["mean_eas"] for r in scored["exact"]]
    for k in STRIDES:
        rows = scored[f"stride{k}"]
        est, est_mean = [r["eas"] for r in rows], [r["mean_eas"] for r in rows]
        rel = np.mean([abs(a - b) / b for a, b in zip(est, eas, strict=True)])
        results[f"stride{k}"] = {
            "cost": clock[f"stride{k}"] / clock["exact"],
            "per_position_r": float("nan"),
            "spearman_eas": spearman(est, eas),
            "spearman_mean_eas": spearman(est_mean, mean),
            "top25_overlap": top_overlap(est_mean, mean),
            "mean_rel_error": float(rel),
        }
    for method, f in results.items():
        print(
            f"  {method:<10} cost={f['cost']:.3f} per_position_r={f['per_position_r']:.3f} "
            f"spearman_eas={f['spearman_eas']:.3f} spearman_mean={f['spearman_mean_eas']:.3f} "
            f"top25_overlap={f['top25_overlap']:.2f} rel_err={f['mean_rel_error']:.4f}"
        )
    return results


def layer_check(cal_records, backend, cal_rows) -> None:
    """Cross-validated figures of several feature sets on the calibration half (one extra pass each)."""
    from eas.backends.hf.features import n_layers, position_features
    from eas.config import EASConfig
    from eas.maths.agreement import agreement
    from eas.maths.ridge import fit_ridge_cv
    from eas.scoring.probes import encode_record

    n = n_layers(backend.model)
    sets = {name: tuple(round(k * n / 30) or 1 for k in ks) for name, ks in LAYER_SETS.items()}
    used = sorted({k for ks in sets.values() for k in ks})
    by_id = {r["id"]: np.asarray(r["trajectory"]) for r in cal_rows}
    encs = [encode_record(backend.tokenizer, r, EASConfig(), backend.max_context) for r in cal_records]
    feats = position_features(backend, encs, used)
    width = backend.model.config.hidden_size
    targets = [by_id[e.record.id] for e in encs]
    groups = [str(e.record.id) for e, t in zip(encs, targets, strict=True) for _ in range(t.size)]
    parts = []
    for name, ks in sets.items():
        cols = [c for k in ks for c in range(used.index(k) * width, (used.index(k) + 1) * width)] + [len(used) * width]
        x = np.concatenate([f.features[:, cols] for f in feats])
        cv = fit_ridge_cv(x, np.concatenate(targets), groups)
        fig = agreement(np.split(cv.out_of_fold, np.cumsum([t.size for t in targets])[:-1]), targets)
        parts.append(f"{name}: r={fig['per_position_r']:.3f} sp_mean={fig['spearman_mean_eas']:.3f}")
    print("layers (CV on the calibration half; + next-token entropy): " + "; ".join(parts))


def auto_mixed(records, backend, scored_parts, clock_parts, fractions) -> None:
    """``--amortised auto`` on the mixed pool, per calibration fraction (see the module docstring)."""
    from eas.config import EASConfig
    from eas.maths.agreement import agreement
    from eas.maths.ridge import fit_ridge_cv
    from eas.scoring.calibration import calibration_slice
    from eas.scoring.probes import encode_record

    exact = [np.asarray(r["trajectory"]) for part in scored_parts for r in part["exact"]]
    t_exact = sum(c["exact"] for c in clock_parts)
    t_pass = sum(c["amortised"] for c in clock_parts)
    encs = [encode_record(backend.tokenizer, r, EASConfig(), backend.max_context) for r in records]
    feats = [f.features for f in backend.features(encs, backend.feature_layers())]
    print(f"auto on the mixed pool ({len(records)} traces, both styles):")
    for f in fractions:
        chosen = calibration_slice(len(records), f, seed=0)
        rest = [i for i in range(len(records)) if i not in set(chosen)]
        groups = [str(i) for i in chosen for _ in range(exact[i].size)]
        cv = fit_ridge_cv(
            np.concatenate([feats[i] for i in chosen]), np.concatenate([exact[i] for i in chosen]), groups
        )
        cv_fig = agreement(
            np.split(cv.out_of_fold, np.cumsum([exact[i].size for i in chosen])[:-1]), [exact[i] for i in chosen]
        )
        out = {i: exact[i] for i in chosen} | {i: cv.head.predict(feats[i]) for i in rest}
        whole = agreement([out[i] for i in range(len(records))], exact)
        share = len(chosen) / len(records)
        cost = (share * (t_exact + t_pass) + (1 - share) * t_pass) / t_exact
        print(
            f"  f={f:.2f} ({len(chosen)} exact) cost={cost:.3f} spearman_eas={whole['spearman_eas']:.3f} "
            f"spearman_mean={whole['spearman_mean_eas']:.3f} top25_overlap={whole['top25_overlap']:.2f} "
            f"rel_err={whole['mean_rel_error']:.4f} | head's CV estimate: r={cv_fig['per_position_r']:.3f} "
            f"spearman_mean={cv_fig['spearman_mean_eas']:.3f}"
        )


def main(argv=None) -> dict:
    from eas.backends.hf.heap import claim_for_scoring

    claim_for_scoring()  # scoring on a CPU as the eas score process does (eas.backends.hf.heap)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arith", type=int, default=40, help="arithmetic traces (half calibrate, half test)")
    ap.add_argument("--shift", type=int, default=20, help="traces of the other style")
    ap.add_argument("--fractions", default="0.1,0.2,0.3,0.5")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--tiny", action="store_true", help="a tiny seeded model (smoke test of the script)")
    args = ap.parse_args(argv)
    import torch

    from eas.config import EASConfig
    from eas.scoring.calibration import calibrate
    from eas.storage.heads import HeadFile

    if args.threads:
        torch.set_num_threads(args.threads)
    backend = _backend(args.tiny)
    arith = _records(make_pool("arithmetic", args.arith))
    if args.tiny:  # the tiny model's context is 1,024 tokens
        arith = [r for r in arith if len(r.response) < 1500]
    cal_records, test_records = arith[0::2], arith[1::2]
    shift = _records(make_pool("shift", args.shift))
    t0 = time.perf_counter()
    cal = calibrate(cal_records, backend, EASConfig(trajectory=True))
    cv = cal.manifest["cv"]
    print(
        f"calibration: {len(cal_records)} arithmetic traces in {time.perf_counter() - t0:.1f} s; "
        f"CV r={cv['per_position_r']:.3f} spearman_mean={cv['spearman_mean_eas']:.3f} alpha={cal.head.alpha:.3g}"
    )
    head = HeadFile(cal.head, cal.manifest, "benchmark")
    results, parts, clocks = {}, [], []
    for name, records in (("in", test_records), ("shift", shift)):
        clock: dict = {}
        scored = compare(records, backend, head, clock)
        results[name] = report(name, scored, clock)
        parts.append(scored)
        clocks.append(clock)
    auto_mixed(test_records + shift, backend, parts, clocks, [float(x) for x in args.fractions.split(",")])
    layer_check(cal_records, backend, cal.exact_rows)
    a_in, a_shift = results["in"]["amortised"], results["shift"]["amortised"]
    print(
        f"amortised: cost={a_in['cost']:.3f} spearman_mean_in={a_in['spearman_mean_eas']:.3f} "
        f"spearman_mean_shift={a_shift['spearman_mean_eas']:.3f}"
    )
    return results


if __name__ == "__main__":
    main()
