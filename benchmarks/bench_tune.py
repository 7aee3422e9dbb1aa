"""Issue 14's Done-when table for ``flowstab tune``: does the policy it picks hold up on fresh seeds?

For each cell — workload × load (0.95 and 1.1 λ_max) × eviction (``recompute``, ``keep-progress``):

1. run :func:`numerics.sim.tune.tune` on seed set A (root seed 0);
2. evaluate tune's pick and the references — ``greedy`` and ``flow`` at 0.9, 0.95 and 0.98 λ_max —
   on a fresh seed set B (root :data:`EVAL_SEED`, ≥ 5 seeds; the same seeds for every policy:
   common random numbers), with 95 % Student-t intervals;
3. check the criteria: (T) the pick serves ≥ 98 % of the requests per slot of the best reference;
   (L) its p99 latency is ≤ 1.15 × the smallest p99 of the references that serve ≥ 98 % of the best;
   (C) it does not collapse: its queue slope is ≤ max(0, the smallest reference slope) + 0.02 λ.

Workloads: (a) deterministic S = 20, O = 100, M = 20 000; (b) Dong & Cao §4.1's three classes
(10, 20), (10, 40), (10, 60), equal rates, M = 16 492; (c) S = 20, decode geometric mean 100
(max 1 000), M = 20 000; (d) the ``azure-conv`` preset at M = 131 072.

One JSON per cell in ``results/bench_tune/`` (``results/bench_tune_quick/`` with ``--quick``);
finished cells are skipped (``--force`` reruns them), so an interrupted run resumes. At the end
``results/bench_tune.json`` and ``results/bench_tune.md`` (``bench_tune_quick.*``) collect the
cells. Progress goes to stderr.

    .venv/bin/python benchmarks/bench_tune.py [--quick] [--only det:0.95:recompute,...]
                                               [--lookahead] [--force]

``lookahead`` (the state-aware policy) is left out of tune's candidates unless ``--lookahead``:
it runs on the Python engine at 10–40 s per 20 000 slots, which alone would take the full table
past 30 minutes.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from _common import provenance

HERE = Path(__file__).resolve().parent
#: Root seed of the evaluation seed set B (tune runs on root 0).
EVAL_SEED = 1_000
LOADS = (0.95, 1.1)
EVICTIONS = ("recompute", "keep-progress")
REF_FACTORS = (0.9, 0.95, 0.98)
FULL = {"tune_slots": 20_000, "tune_seeds": 3, "eval_slots": 40_000, "eval_seeds": 5}
QUICK = {"tune_slots": 4_000, "tune_seeds": 2, "eval_slots": 8_000, "eval_seeds": 3}


def workloads() -> dict:
    """name → (workload, M, description)."""
    from numerics.data.loaders import load_workload
    from numerics.model.specs import parse_law
    from numerics.model.workload import IndependentLengths, RequestClass, Workload

    dong = Workload(tuple(RequestClass(IndependentLengths(parse_law("10"), parse_law(str(o))), 1.0,
                                       f"(10, {o})") for o in (20, 40, 60)), "dong-cao-4.1")
    return {
        "det": (Workload.single(parse_law("20"), parse_law("100")), 20_000,
                "deterministic S=20, O=100, M=20 000"),
        "dong41": (dong, 16_492, "§4.1 three classes (10,20),(10,40),(10,60), M=16 492"),
        "geom": (Workload.single(parse_law("20"), parse_law("geom:mean=100,max=1000")), 20_000,
                 "S=20, O geometric mean 100 (max 1000), M=20 000"),
        "azure": (load_workload("azure-conv"), 131_072, "azure-conv preset, M=131 072"),
    }


def _stats(df, key: str) -> dict:
    from numerics.sim import ci

    t = ci(df[[key]])
    return {"mean": float(t.loc[key, "mean"]), "hw": float(t.loc[key, "half_width"])}


def run_cell(name: str, load: float, eviction: str, size: dict, families: list[str] | None) -> dict:
    """Tune on seed set A, evaluate the pick and the references on seed set B, check criteria."""
    from numerics.analysis.conditions import lambda_max
    from numerics.sim import SimConfig, parse_policy, replicate
    from numerics.sim.tune import tune

    wl, m, desc = workloads()[name]
    lam_max = lambda_max(wl, m)
    lam = load * lam_max
    t0 = time.perf_counter()
    res = tune(wl, m, lam, eviction=eviction, slots=size["tune_slots"], seeds=size["tune_seeds"],
               seed=0, families=families,
               progress=lambda text: print(f"  {name} {load} {eviction}: {text}", file=sys.stderr,
                                           flush=True))
    t_tune = time.perf_counter() - t0
    refs = {"greedy": "greedy", **{f"flow {f:g} λ_max": f"flow:rate={f * lam_max:.6g}"
                                   for f in REF_FACTORS}}
    specs = dict.fromkeys([res.spec, *refs.values()])
    evals = {}
    t0 = time.perf_counter()
    for spec in specs:
        cfg = SimConfig(wl, m, parse_policy(spec), slots=size["eval_slots"],
                        warmup=size["eval_slots"] // 10, arrival_rate=lam, eviction=eviction)
        df = replicate(cfg, size["eval_seeds"], EVAL_SEED, processes=1)
        evals[spec] = {k: _stats(df, k) for k in ("throughput_requests_per_slot",
                                                   "latency_p99_slots", "queue_slope",
                                                   "completed_fraction", "evictions")}
        evals[spec]["throughput_per_seed"] = df["throughput_requests_per_slot"].tolist()
    t_eval = time.perf_counter() - t0
    thr = {s: evals[s]["throughput_requests_per_slot"]["mean"] for s in specs}
    p99 = {s: evals[s]["latency_p99_slots"]["mean"] for s in specs}
    slope = {s: evals[s]["queue_slope"]["mean"] for s in specs}
    ref_specs = list(refs.values())
    best_ref = max(ref_specs, key=lambda s: thr[s])
    good = [s for s in ref_specs if thr[s] >= 0.98 * thr[best_ref]]
    lat_ref = min(good, key=lambda s: p99[s])
    pick = res.spec
    share = [a / b for a, b in zip(evals[pick]["throughput_per_seed"],
                                   evals[best_ref]["throughput_per_seed"], strict=True)]
    slope_limit = max(0.0, min(slope[s] for s in ref_specs)) + 0.02 * lam
    return {
        "workload": name, "description": desc, "load": load, "eviction": eviction,
        "lambda_max": lam_max, "arrival_rate": lam, "pick": pick, "reason": res.reason,
        "meets_slo": res.meets_slo, "best_ref": best_ref, "latency_ref": lat_ref,
        "references": refs, "eval": evals,
        "throughput_ratio": thr[pick] / thr[best_ref],
        "throughput_ratio_paired_min": min(share),
        "latency_ratio": p99[pick] / p99[lat_ref],
        "slope_limit": slope_limit,
        "criteria": {"throughput": thr[pick] >= 0.98 * thr[best_ref],
                     "latency": p99[pick] <= 1.15 * p99[lat_ref],
                     "no_collapse": slope[pick] <= slope_limit},
        "seconds": {"tune": t_tune, "eval": t_eval},
        "size": size, "families": families, "tune_table": res.to_dict()["table"],
    }


def _fmt(x: float, hw: float | None = None) -> str:
    s = f"{x:,.4g}"
    return s if hw is None or not math.isfinite(hw) else f"{s} ± {hw:,.2g}"


def markdown(cells: list[dict]) -> str:
    head = ("| workload | load | eviction | tune's pick | pick req/slot | best ref (req/slot) | ratio "
            "| pick p99 | ref p99 (of ≥ 98 %) | ratio | pick q-slope | T | L | C |")
    lines = [head, "| --- | ---: | --- | --- | ---: | --- | ---: | ---: | --- | ---: | ---: | --- | --- "
                   "| --- |"]
    for c in cells:
        e, p, b, lr = c["eval"], c["pick"], c["best_ref"], c["latency_ref"]
        ok = {k: "✓" if flag else "✗" for k, flag in c["criteria"].items()}

        def v(spec: str, key: str, e: dict = e) -> str:
            return _fmt(e[spec][key]["mean"], e[spec][key]["hw"])

        thr, lat = "throughput_requests_per_slot", "latency_p99_slots"
        lines.append(
            f"| {c['workload']} | {c['load']:g} | {c['eviction']} | `{p}` | {v(p, thr)} | "
            f"`{b}` ({v(b, thr)}) | {c['throughput_ratio']:.3f} | {v(p, lat)} | `{lr}` ({v(lr, lat)}) | "
            f"{c['latency_ratio']:.3f} | {e[p]['queue_slope']['mean']:.3g} | "
            f"{ok['throughput']} | {ok['latency']} | {ok['no_collapse']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="short runs (a smoke test of the table)")
    ap.add_argument("--only", help="cells NAME:LOAD:EVICTION, comma-separated (default: all)")
    ap.add_argument("--lookahead", action="store_true", help="let tune try lookahead (slow)")
    ap.add_argument("--force", action="store_true", help="rerun finished cells")
    args = ap.parse_args(argv)
    size = QUICK if args.quick else FULL
    stem = "bench_tune_quick" if args.quick else "bench_tune"
    folder = HERE / "results" / stem
    folder.mkdir(parents=True, exist_ok=True)
    families = None if args.lookahead else ["greedy", "flow", "flowfit", "adaptive"]
    cells = [(n, ld, ev) for n in workloads() for ld in LOADS for ev in EVICTIONS]
    if args.only:
        want = {tuple(x.split(":")) for x in args.only.split(",")}
        cells = [c for c in cells if (c[0], f"{c[1]:g}", c[2]) in want]
    done = []
    for i, (name, load, ev) in enumerate(cells, start=1):
        path = folder / f"{name}_{load:g}_{ev}.json"
        if path.exists() and not args.force:
            print(f"[{i}/{len(cells)}] {path.name}: done before, skipped", file=sys.stderr)
            done.append(json.loads(path.read_text()))
            continue
        t0 = time.perf_counter()
        cell = run_cell(name, load, ev, size, families)
        path.write_text(json.dumps(cell, indent=1))
        done.append(cell)
        ok = all(cell["criteria"].values())
        print(f"[{i}/{len(cells)}] {name} {load:g} {ev}: {cell['pick']} "
              f"T×{cell['throughput_ratio']:.3f} L×{cell['latency_ratio']:.3f} "
              f"{'ok' if ok else 'FAILS ' + str(cell['criteria'])} ({time.perf_counter() - t0:.0f} s)",
              file=sys.stderr, flush=True)
    out = {"provenance": provenance("pandas", "numba"), "size": size, "families": families,
           "eval_seed": EVAL_SEED, "cells": done}
    (HERE / "results" / f"{stem}.json").write_text(json.dumps(out, indent=1))
    (HERE / "results" / f"{stem}.md").write_text(
        f"# flowstab tune, Done-when table ({'quick' if args.quick else 'full'})\n\n"
        f"tune: {size['tune_seeds']} seeds × {size['tune_slots']:,} slots (seed set A); "
        f"evaluation: {size['eval_seeds']} seeds × {size['eval_slots']:,} slots (seed set B, root "
        f"{EVAL_SEED}), 95 % Student-t half-widths. T: pick ≥ 0.98 × best reference throughput; "
        "L: pick p99 ≤ 1.15 × the best p99 of the references serving ≥ 98 %; C: no collapse "
        "(queue slope ≤ max(0, smallest reference slope) + 0.02 λ).\n\n" + markdown(done) + "\n")
    bad = [c for c in done if not all(c["criteria"].values())]
    print(f"{len(done) - len(bad)}/{len(done)} cells meet every criterion", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
