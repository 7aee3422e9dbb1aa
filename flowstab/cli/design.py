"""``flowstab design``: per-class activation rates (cvxpy/CLARABEL) or integer budgets (HiGHS MILP).

::

    flowstab design (--workload FILE.toml | --prompt SPEC --decode SPEC) --memory M
                    [--arrival-rate λ] [--eps 1e-6] [--gamma 0] [--objective throughput|maxmin]
                    [--method bernstein|cantelli|gaussian] [--budget randomized|poisson]
                    [--weights w1,w2,...] [--integer] [--verify] [--json]

The workload needs per-class arrival rates: a workload file whose classes give ``rate``, or a
total ``--arrival-rate`` (requests/slot; the class mix is kept). See :mod:`numerics.analysis.design` for
the model, the conservative convex restriction of the overflow constraint, and the MILP.
"""

from __future__ import annotations

import argparse

from flowstab.cli._args import (
    add_eps_arg,
    add_memory_arg,
    add_rate_arg,
    add_workload_args,
    memory_of,
    nonnegative_float,
    positive_float,
    resolve_workload,
)

__all__ = ["register"]


def _weights(text: str) -> tuple[float, ...]:
    """Comma-separated positive class weights ω_1, ω_2, ..."""
    return tuple(positive_float(part.strip()) for part in text.split(","))


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``design`` subcommand to the argparse sub-parsers ``sub``."""

    p = sub.add_parser("design", help="choose per-class activation rates or integer budgets "
                       "(convex design with a guaranteed overflow bound)")
    add_workload_args(p)
    add_memory_arg(p)
    add_rate_arg(p)
    add_eps_arg(p)
    p.add_argument("--gamma", type=nonnegative_float, default=0.0,
                   help="headroom: r_k ≥ (1 + γ)·λ_k (default 0)")
    p.add_argument("--objective", choices=("throughput", "maxmin"), default="throughput",
                   help="maximise weighted token throughput Σ ω_k r_k E[O_k] (default) or the "
                   "smallest weighted headroom min ω_k r_k/λ_k")
    p.add_argument("--method", choices=("bernstein", "cantelli", "gaussian"), default="bernstein",
                   help="overflow constraint: Bernstein (bounded laws; default), Cantelli (any "
                   "finite variance), or the Gaussian approximation (NOT a bound)")
    p.add_argument("--budget", choices=("randomized", "poisson"), default="randomized",
                   help="per-class activation budget law (default randomized)")
    p.add_argument("--weights", type=_weights, metavar="w1,w2,...",
                   help="positive class weights ω_k (default all 1)")
    p.add_argument("--integer", action="store_true",
                   help="Algorithm 1 integer budgets b_k by MILP (HiGHS): Σ b_k w_k ≤ M with "
                   "worst-case memory-times, b_k > (1+γ)λ_k; no ε")
    p.add_argument("--verify", action="store_true",
                   help="also compute the exact P(U > M) at the designed rates")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_design)


def _cmd_design(args: argparse.Namespace) -> int:
    import json

    from flowstab.jsonify import json_default
    from numerics.analysis.design import design_budgets, design_exact_overflow, design_rates

    workload = resolve_workload(args)
    if args.arrival_rate is not None:
        workload = workload.with_total_rate(args.arrival_rate)
    m = memory_of(args, workload)
    if args.integer:
        result = design_budgets(workload, m, gamma=args.gamma, objective=args.objective,
                                weights=args.weights)
    else:
        result = design_rates(workload, m, args.eps, gamma=args.gamma,
                              objective=args.objective, weights=args.weights,
                              method=args.method, budget=args.budget)
    out = result.to_dict()
    exact = None
    if args.verify and not args.integer:
        exact = design_exact_overflow(workload, m, result.rates, result.budget)
        out["exact_overflow"] = exact
    if args.json:
        print(json.dumps(out, default=json_default, allow_nan=False))
        return 0
    print(result.report())
    if exact is not None:
        verdict = "meets" if exact <= result.epsilon else "does NOT meet"
        print(f"  exact P(U > M) at the design: {exact:.3g} ({verdict} ε = {result.epsilon:g})")
    elif args.verify:
        print("  exact check: not needed, Algorithm 1 budgets never exceed M")
    return 0
