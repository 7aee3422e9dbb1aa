"""``flowstab plan``: stability limits and a flow-control rate for a workload on a KV cache.

::

    flowstab plan  (--prompt SPEC --decode SPEC | --workload PRESET|FILE.toml|trace:PATH)
                   --memory M [--eps 1e-6] [--budget randomized] [--step-time SPEC]
                   [--arrival-rate λ] [--exact] [--json]

Prints :meth:`numerics.analysis.plan.Plan.report` (or, with ``--json``, the plan as one JSON object):
λ_max = M/E[W], the largest activation rate r*(ε) whose overflow bound is at most ε, and with a
step-time model the same rates per second.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from flowstab.cli._args import (
    add_eps_arg,
    add_memory_arg,
    add_workload_args,
    positive_float,
    resolve_workload,
)

if TYPE_CHECKING:
    from numerics.analysis.plan import Plan

__all__ = ["print_plan", "register"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``plan`` subcommand to the argparse sub-parsers ``sub``."""
    p = sub.add_parser("plan", help="stability limits and a flow-control rate for a workload")
    add_workload_args(p)
    add_memory_arg(p, "KV-cache size M in tokens")
    add_eps_arg(p)
    p.add_argument("--budget", choices=("randomized", "deterministic", "poisson"),
                   default="randomized", help="activation budget law (default randomized)")
    p.add_argument("--step-time", help="const:SECONDS, linear:c0=..,cb=..,ck=..[,cp=..] or "
                   "staircase:c=..,a=..,b0=..; adds per-second rates")
    p.add_argument("--arrival-rate", type=positive_float,
                   help="a total arrival rate (requests/slot) to check against the plan")
    p.add_argument("--exact", action="store_true",
                   help="choose r*(ε) under the exact overflow tail (slower; JSON bound \"exact\")")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_plan)


def print_plan(plan: Plan, as_json: bool) -> None:
    """The plan's readable report, or with ``as_json`` its dict as one JSON object."""
    if as_json:
        from flowstab.jsonify import json_default

        print(json.dumps(plan.to_dict(), default=json_default, allow_nan=True))
    else:
        print(plan.report())


def _cmd_plan(args: argparse.Namespace) -> int:
    from numerics.analysis.plan import make_plan
    from numerics.model.steptime import StepTimeModel

    workload = resolve_workload(args)
    step = StepTimeModel.from_spec(args.step_time) if args.step_time else None
    plan = make_plan(workload, args.memory, args.eps, args.budget, step, args.arrival_rate,
                     exact=args.exact)
    print_plan(plan, args.json)
    return 0
