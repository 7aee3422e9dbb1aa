"""``flowstab plan``: stability limits and a flow-control rate for a workload on a KV cache.

::

    flowstab plan  (--prompt SPEC --decode SPEC | --workload PRESET|FILE.toml|trace:PATH)
                   --memory M [--eps 1e-6 | --target eps:1e-6] [--target waste:0.01]
                   [--budget randomized|deterministic|poisson|(LAW)] [--step-time SPEC]
                   [--arrival-rate λ] [--exact] [--json]

Prints :meth:`numerics.analysis.plan.Plan.report` (or, with ``--json``, the plan as one JSON object):
λ_max = M/E[W], the largest activation rate r*(ε) whose overflow bound is at most ε, and with a
step-time model the same rates per second. ``--target KIND:VALUE`` (repeatable, one per kind)
names what to certify: ``eps:ε`` is the overflow target of ``--eps``; ``waste:δ`` adds the
waste-certified rate — the largest rate whose certified fraction of emitted tokens thrown away by
LIFO recompute evictions is at most δ (docs/theory.md §13) — beside r*(ε) (JSON key ``waste``).
``--budget "(LAW)"`` (any length law in parentheses, e.g. ``"(uniform:0,6)"``) fixes the rate at
the law's mean: the plan then reports the certificate at that rate (bounds, the exact tail with
``--exact``, admissible λ < r, the KV utilisation) instead of r*(ε).
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
from numerics.errors import SettingError

if TYPE_CHECKING:
    from numerics.analysis.plan import Plan

__all__ = ["TARGET_KINDS", "budget_arg", "parse_target", "print_plan", "register"]

#: What ``--target`` can certify: the overflow probability per slot, or the waste fraction.
TARGET_KINDS = ("eps", "waste")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``plan`` subcommand to the argparse sub-parsers ``sub``."""
    p = sub.add_parser("plan", help="stability limits and a flow-control rate for a workload")
    add_workload_args(p)
    add_memory_arg(p, "KV-cache size M in tokens")
    add_eps_arg(p)
    p.set_defaults(eps=None)  # None: not given (the default ε = 1e-6 is applied in _cmd_plan)
    p.add_argument("--target", type=parse_target, action="append", metavar="KIND:VALUE",
                   help="what to certify, repeatable: eps:ε (the overflow target, as --eps) or "
                   "waste:δ (the largest rate losing ≤ δ of emitted tokens to evictions)")
    p.add_argument("--budget", type=budget_arg, default="randomized", metavar="LAW",
                   help="activation budget law: randomized (default), deterministic, poisson, or a "
                   "length law in parentheses, e.g. \"(uniform:0,6)\", which fixes the rate at its "
                   "mean: the plan then certifies that rate instead of searching r*(ε)")
    p.add_argument("--step-time", help="const:SECONDS, linear:c0=..,cb=..,ck=..[,cp=..] or "
                   "staircase:c=..,a=..,b0=..; adds per-second rates")
    p.add_argument("--arrival-rate", type=positive_float,
                   help="a total arrival rate (requests/slot) to check against the plan")
    p.add_argument("--exact", action="store_true",
                   help="choose r*(ε) under the exact overflow tail (slower; JSON bound \"exact\")")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_plan)


def budget_arg(text: str) -> str:
    """``--budget``: a named law, or ``(LAW)`` (checked here, so a bad law is a usage error)."""
    from numerics.errors import FlowstabError
    from numerics.model.budget import BUDGET_LAWS, as_budget, is_law_spec

    text = text.strip()
    if not is_law_spec(text):
        if text not in BUDGET_LAWS:
            raise argparse.ArgumentTypeError(
                f"takes {', '.join(BUDGET_LAWS)} or a length law in parentheses such as "
                f"(uniform:0,6), got {text!r}")
        return text
    try:
        return as_budget(text).spec
    except FlowstabError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_target(text: str) -> tuple[str, float]:
    """``KIND:VALUE`` → (kind, value) with kind in :data:`TARGET_KINDS` and 0 < value < 1."""
    kind, sep, value = text.partition(":")
    kind = kind.strip().lower()
    if not sep or kind not in TARGET_KINDS:
        raise argparse.ArgumentTypeError(
            f"takes KIND:VALUE with KIND one of {', '.join(TARGET_KINDS)} "
            f"(e.g. waste:0.01), got {text!r}")
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{kind}: needs a number, got {value!r}") from None
    if not 0 < x < 1:
        raise argparse.ArgumentTypeError(f"{kind}: must lie in (0, 1), got {value}")
    return kind, x


def _targets(args: argparse.Namespace) -> tuple[float, float | None]:
    """(ε, δ or None) from ``--eps`` and ``--target``."""
    given: dict[str, float] = {}
    for kind, value in args.target or ():
        if kind in given:
            raise SettingError(f"--target {kind}: given twice; give each kind once")
        given[kind] = value
    if "eps" in given and args.eps is not None:
        raise SettingError("give the overflow target once: --eps or --target eps:, not both")
    eps = given.get("eps", args.eps if args.eps is not None else 1e-6)
    return eps, given.get("waste")


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
    eps, waste = _targets(args)
    plan = make_plan(workload, args.memory, eps, args.budget, step, args.arrival_rate,
                     exact=args.exact, waste_target=waste)
    print_plan(plan, args.json)
    return 0
