"""Speed of the budget design (measured and reported, never asserted).

Run: ``.venv/bin/python benchmarks/bench_design.py`` — for K = 2, 8, 32 bounded classes it times
the conic rate design (:func:`numerics.analysis.design.design_rates`: convex–concave iterations of an LP
solved by CLARABEL, problem construction included) and the Algorithm 1 integer-budget MILP
(:func:`numerics.analysis.design.design_budgets`, HiGHS), best of three wall-clock runs, and prints a table.

Class k has S = 4 + (7k mod 40), O ~ uniform{1..8 + (5k mod 40)}, arrival rates set so that
Σ λ_k E[W_k] = 0.4·M with M = 200 000 tokens and equal λ_k E[W_k]; ε = 1e-6.
"""

from __future__ import annotations

import numpy as np
from _common import best_of

from numerics.analysis.design import design_budgets, design_rates
from numerics.model.specs import parse_law
from numerics.model.workload import RequestClass, Workload

MEMORY = 200_000
EPSILON = 1e-6
LOAD = 0.4


def workload(n_classes: int) -> Workload:
    classes = []
    for k in range(n_classes):
        c = RequestClass.independent(parse_law(str(4 + (7 * k) % 40)),
                                     parse_law(f"uniform:1,{8 + (5 * k) % 40}"), 1.0, f"c{k}")
        rate = LOAD * MEMORY / n_classes / c.mean_memory_time
        classes.append(RequestClass(c.lengths, rate, c.name))
    return Workload(tuple(classes), f"K={n_classes}")


def main() -> None:
    design_rates(workload(2), MEMORY, EPSILON)  # import cvxpy and warm the solvers once
    design_budgets(workload(2), MEMORY)
    print(f"{'K':>3} {'objective':>10} {'conic s':>9} {'iters':>5} {'load':>6} "
          f"{'MILP s':>8} {'MILP load':>9}")
    for k in (2, 8, 32):
        wl = workload(k)
        for objective in ("throughput", "maxmin"):
            t_conic, d = best_of(lambda wl=wl, o=objective: design_rates(wl, MEMORY, EPSILON, objective=o))
            t_milp, b = best_of(lambda wl=wl, o=objective: design_budgets(wl, MEMORY, objective=o))
            load = d.saturated_mean / MEMORY
            milp_load = float(np.dot(b.rates, b.memory_times)) / MEMORY  # worst-case peak / M
            print(f"{k:>3} {objective:>10} {t_conic:>9.3f} {d.iterations:>5} {load:>6.3f} "
                  f"{t_milp:>8.3f} {milp_load:>9.3f}")


if __name__ == "__main__":
    main()
