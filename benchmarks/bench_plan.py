"""Speed of the planner and the tail bounds (measured and reported, never asserted).

Run: ``.venv/bin/python benchmarks/bench_plan.py`` — prints one line per case with the best of
three wall-clock times on this machine.
"""

from __future__ import annotations

from _common import best_of

from numerics.analysis.bounds import FlowTails
from numerics.analysis.plan import make_plan
from numerics.data.presets import load_preset
from numerics.model.specs import parse_law
from numerics.model.workload import Workload

CASES = {
    "geom mean 200 (138k stored ages), M=5e4": (
        lambda: Workload.single(parse_law("100"), parse_law("geom:mean=200")), 50_000),
    "uniform 1..100, s=20, M=65536": (
        lambda: Workload.single(parse_law("20"), parse_law("uniform:1,100")), 65_536),
    "preset azure-conv, M=131072": (lambda: load_preset("azure-conv"), 131_072),
    "preset mooncake, M=1e6": (lambda: load_preset("mooncake"), 1_000_000),
}


def main() -> None:
    for name, (build, memory) in CASES.items():
        wl = build()
        t_rate, _ = best_of(lambda wl=wl, memory=memory: FlowTails(wl, memory).flow_rate(1e-6))
        t_plan, _ = best_of(lambda wl=wl, memory=memory: make_plan(wl, memory), n=1)
        print(f"{name:<45} r*(1e-6) best-bound search {t_rate:7.3f} s   full plan {t_plan:7.3f} s")


if __name__ == "__main__":
    main()
