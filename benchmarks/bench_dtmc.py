"""Size and speed of the exact small-system Markov chain (:func:`numerics.chains.dtmc.exact_system`).

For a ladder of configurations (prompt S, decode support, M, policy, arrivals, queue cap N) it
reports the number of reachable states, the transitions stored, the enumeration time (pure
Python breadth-first search from the empty state) and the stationary-solve time (``solver="auto"``:
SuperLU on Pᵀ − I with one row replaced by the normalisation up to 3000 states, power iteration
beyond), plus the overflow probability for reference. For the largest case of the M ladder the
direct solve is timed too (``--direct``, on the largest greedy case with ≤ 25,000 states), to
show why power iteration takes over.
Measured and reported, never asserted.

Run: ``.venv/bin/python benchmarks/bench_dtmc.py [--quick]`` — prints a table and writes
``benchmarks/results/bench_dtmc.json`` (git-ignored) with the versions and git revision.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from _common import provenance

from numerics.chains.dtmc import exact_system
from numerics.model.laws import TokenLaw
from numerics.model.workload import Workload
from numerics.sim.policies import FlowControl, Greedy

RESULTS = Path(__file__).resolve().parent / "results" / "bench_dtmc.json"
#: ``--direct`` times the LU solve on the largest greedy case up to this many states (the LU
#: fill-in makes larger ones take many minutes: ≈ 7 min at 5·10⁴ states on a shared 2-core box).
DIRECT_COMPARE_MAX = 25_000


def _uniform(k: int) -> TokenLaw:
    return TokenLaw.from_pmf(list(range(1, k + 1)), [1 / k] * k, label=f"uniform:1,{k}")


def cases(quick: bool) -> list[dict]:
    out = []
    # M ladder, decode {1,2,3}, S = 2, greedy and flow, Poisson arrivals near capacity
    for memory in (12, 16, 20) if quick else (12, 16, 20, 24, 28):
        for name, policy in (("greedy", Greedy(watermark=0.0)), ("flow r=1.2", FlowControl(rate=1.2))):
            out.append({"prompt": 2, "decode": 3, "memory": memory, "policy_name": name,
                        "policy": policy, "rate": 1.0, "arrivals": "poisson", "cap": 30})
    # decode support ladder at M = 20, Poisson arrivals at 70 % of the necessary bound M/E[W]
    for k in (2, 3) if quick else (2, 3, 4):
        wl = Workload.single(TokenLaw.deterministic(2), _uniform(k))
        rate = round(0.7 * 20 / wl.mean_memory_time, 3)
        out.append({"prompt": 2, "decode": k, "memory": 20, "policy_name": "greedy",
                    "policy": Greedy(watermark=0.0), "rate": rate, "arrivals": "poisson",
                    "cap": 30})
    # queue-cap ladder (flow, Poisson budget: the widest branching)
    for cap in (10, 30) if quick else (10, 30, 60):
        out.append({"prompt": 2, "decode": 3, "memory": 14, "policy_name": "flow poisson r=1",
                    "policy": FlowControl(rate=1.0, budget="poisson"), "rate": 0.7,
                    "arrivals": "bernoulli", "cap": cap})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a smaller ladder (a smoke test)")
    ap.add_argument("--direct", action="store_true", help="also time the direct solve of the "
                    "largest greedy case")
    args = ap.parse_args()
    rows = []
    head = (f"{'S':>2} {'|O|':>3} {'M':>3} {'policy':<17} {'λ':>5} {'arrivals':<9} {'N':>3} "
            f"{'states':>8} {'transitions':>11} {'build s':>8} {'solve s':>8} {'P(overflow)':>11}")
    print(head)
    print("-" * len(head))
    for c in cases(args.quick):
        wl = Workload.single(TokenLaw.deterministic(c["prompt"]), _uniform(c["decode"]))
        t0 = time.perf_counter()
        law = exact_system(wl, c["memory"], c["policy"], c["rate"], arrivals=c["arrivals"],
                           queue_cap=c["cap"])
        wall = time.perf_counter() - t0
        row = {k: v for k, v in c.items() if k != "policy"} | {
            "policy": c["policy"].spec(),
            "n_states": law.n_states,
            "n_transitions": law.n_transitions,
            "build_s": law.timings["build_s"],
            "solve_s": law.timings["solve_s"],
            "wall_s": wall,
            "overflow_probability": law.overflow_probability,
            "loss_probability": law.loss_probability,
        }
        rows.append(row)
        print(f"{c['prompt']:>2} {c['decode']:>3} {c['memory']:>3} {c['policy_name']:<17} "
              f"{c['rate']:>5} {c['arrivals']:<9} {c['cap']:>3} {law.n_states:>8,} "
              f"{law.n_transitions:>11,} {row['build_s']:>8.2f} "
              f"{row['solve_s']:>8.3f} {law.overflow_probability:>11.3e}", flush=True)
    direct = None
    if args.direct:
        small_enough = [r for r in rows if r["policy_name"] == "greedy"
                        and r["n_states"] <= DIRECT_COMPARE_MAX]
        big = max(small_enough, key=lambda r: r["n_states"])
        wl = Workload.single(TokenLaw.deterministic(big["prompt"]), _uniform(big["decode"]))
        policy = Greedy(watermark=0.0)
        law_p = exact_system(wl, big["memory"], policy, big["rate"], arrivals=big["arrivals"],
                             queue_cap=big["cap"], solver="power")
        law_d = exact_system(wl, big["memory"], policy, big["rate"], arrivals=big["arrivals"],
                             queue_cap=big["cap"], solver="direct")
        direct = {"memory": big["memory"], "n_states": law_d.n_states,
                  "power_solve_s": law_p.timings["solve_s"],
                  "direct_solve_s": law_d.timings["solve_s"],
                  "l1_difference": float(np.abs(law_p.pmf - law_d.pmf).sum())}
        print(f"largest greedy case (M = {big['memory']}, {law_d.n_states:,} states): power "
              f"{direct['power_solve_s']:.2f} s, direct {direct['direct_solve_s']:.2f} s, "
              f"‖π_power − π_direct‖₁ = {direct['l1_difference']:.1e}")
    out = {"provenance": provenance("scipy"), "quick": args.quick, "rows": rows, "direct_vs_power": direct}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
