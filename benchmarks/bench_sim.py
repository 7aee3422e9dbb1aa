"""Speed of the slot simulator: simulated decode tokens and requests per wall-clock second.

Two cases (measured and reported, never asserted):

a. one class, prompt 20, decode geometric mean 50, M = 8000, flow control r = 1.5 at λ = 1.2
   (load λ·E[W]/M ≈ 0.53, no overflow in practice);
b. the ``azure-conv`` preset, M = 131072, λ = 0.9·λ_max, flow control at the plan's r*(1e-6)
   raised to λ when it is below it (r* ≈ 0.47·λ_max for this workload, so r = λ: a critically
   loaded flow controller, the hardest case for the queue), ~10⁶ requests; a run projected to
   take longer than ``BUDGET_S`` is scaled down and the output says so.

Each case runs on every engine :func:`numerics.sim.simulate` offers (``fast``: the compiled numba
kernel; ``python``: the reference engine). Times are of the whole ``simulate`` call (request
generation, the slot loop, the records and the summary); the numba compile of the first fast
call is measured separately and excluded.

Run: ``.venv/bin/python benchmarks/bench_sim.py [--quick]`` — prints a table and writes
``benchmarks/results/bench_sim.json`` (git-ignored) with the versions, git revision and configs.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from _common import provenance

from numerics.analysis.plan import make_plan
from numerics.data.presets import load_preset
from numerics.model.specs import parse_law
from numerics.model.workload import Workload
from numerics.sim import SimConfig, parse_policy, simulate
from numerics.sim.policies import FlowControl

#: Wall-clock budget of one measured run (seconds); longer projected runs are scaled down.
BUDGET_S = 120.0
#: Fraction of the target size used by the pilot run that projects the full run's time.
PILOT_FRACTION = 0.02
ENGINES = ("fast", "python")
SEED = 0
RESULTS = Path(__file__).resolve().parent / "results" / "bench_sim.json"


def case_geometric(quick: bool) -> dict:
    wl = Workload.single(parse_law("20"), parse_law("geom:mean=50"), name="geom50-s20")
    slots = 100_000 if quick else 1_000_000
    return {
        "name": "a: geom mean 50, S=20, M=8000, flow r=1.5, λ=1.2",
        "workload": wl, "memory": 8000, "rate": 1.2, "policy": parse_policy("flow:rate=1.5"),
        "target_slots": slots, "target_requests": None,
    }


def case_azure(quick: bool) -> dict:
    wl = load_preset("azure-conv")
    memory = 131_072
    plan = make_plan(wl, memory, 1e-6)
    lam = 0.9 * plan.lambda_max
    rate = max(plan.flow_rate, lam)
    target = 100_000 if quick else 1_000_000
    return {
        "name": "b: azure-conv, M=131072, λ=0.9·λ_max, flow r=max(r*, λ)",
        "workload": wl, "memory": memory, "rate": lam, "policy": FlowControl(rate=rate),
        "target_slots": int(np.ceil(target / lam)), "target_requests": target,
        "plan_flow_rate": plan.flow_rate, "lambda_max": plan.lambda_max,
    }


def config(case: dict, slots: int) -> SimConfig:
    return SimConfig(case["workload"], case["memory"], case["policy"], slots=slots,
                     arrival_rate=case["rate"], warmup=slots // 10, seed=SEED)


def timed(cfg: SimConfig, engine: str):
    t0 = time.perf_counter()
    res = simulate(cfg, engine=engine)
    return res, time.perf_counter() - t0


def measure(case: dict, engine: str) -> dict:
    target = case["target_slots"]
    pilot_slots = max(1000, int(target * PILOT_FRACTION))
    _, pilot_s = timed(config(case, pilot_slots), engine)
    projected = pilot_s * target / pilot_slots
    slots = target
    note = ""
    if projected > BUDGET_S:
        slots = max(pilot_slots, int(target * BUDGET_S / projected))
        note = (f"scaled down from {target:,} slots (projected {projected:.0f} s > "
                f"{BUDGET_S:.0f} s budget)")
    res, wall = timed(config(case, slots), engine)
    tokens = int(res.timeseries["active"].sum())  # every token emitted, wasted ones included
    completed = int(res.summary["completed"])
    return {
        "case": case["name"], "engine": engine, "slots": slots, "arrived": int(res.summary["arrived"]),
        "completed": completed, "decode_tokens": tokens, "wall_s": wall,
        "decode_tokens_per_s": tokens / wall, "requests_per_s": completed / wall,
        "slots_per_s": slots / wall, "evictions": int(res.summary["evictions"]),
        "kv_util_mean": float(res.summary["kv_util_mean"]), "note": note,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="10x smaller runs (a smoke test)")
    args = ap.parse_args()
    cases = [case_geometric(args.quick), case_azure(args.quick)]
    # the first fast call compiles (or loads from numba's cache) the kernel: time it apart
    t0 = time.perf_counter()
    simulate(config(cases[0], 1000), engine="fast")
    compile_s = time.perf_counter() - t0
    rows = []
    for case in cases:
        for engine in ENGINES:
            rows.append(measure(case, engine))
            r = rows[-1]
            print(f"  measured {r['case'][:2]} {engine:<6} {r['wall_s']:8.2f} s", flush=True)
    head = f"{'case':<58} {'engine':<7} {'slots':>10} {'requests':>10} {'tokens':>12} " \
           f"{'wall s':>8} {'tokens/s':>12} {'requests/s':>11} {'slots/s':>11}"
    print()
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['case']:<58} {r['engine']:<7} {r['slots']:>10,} {r['completed']:>10,} "
              f"{r['decode_tokens']:>12,} {r['wall_s']:>8.2f} {r['decode_tokens_per_s']:>12,.0f} "
              f"{r['requests_per_s']:>11,.0f} {r['slots_per_s']:>11,.0f}")
        if r["note"]:
            print(f"    note: {r['note']}")
    print(f"\nfirst fast call (numba compile or cache load): {compile_s:.2f} s, excluded above")
    azure = cases[1]
    print(f"case b: λ_max = {azure['lambda_max']:.6g}, λ = {azure['rate']:.6g}, plan r*(1e-6) = "
          f"{azure['plan_flow_rate']:.6g} < λ, so flow runs at r = λ")
    out = {
        "provenance": provenance("scipy", "pandas", "numba", seed=SEED),
        "quick": args.quick,
        "budget_s": BUDGET_S,
        "first_fast_call_s": compile_s,
        "cases": [
            {k: (v.spec() if k == "policy" else v) for k, v in c.items() if k != "workload"}
            | {"workload": c["workload"].name}
            for c in cases
        ],
        "rows": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
