"""``flowstab compare``: several policies on the same arrivals, one table (and a figure).

::

    flowstab compare   WORKLOAD --memory M [--arrival-rate λ] [same run flags as simulate]
                       [--policies "SPEC;SPEC;..."] [--json] [--plot FILE.png]

Every policy runs with the same seed, so the same requests arrive at the same slots (common random
numbers). The default line-up is :func:`numerics.sim.lineup.planned_lineup`: flow control at the
plan's r*(ε = 10⁻⁶), greedy, α-protection 0.1, reserve and the clairvoyant MC-SF reference.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from flowstab.cli._args import (
    Progress,
    add_run_args,
    add_workload_args,
    fmt,
    hard_cap_note,
    header,
    parse_policy_for,
    resolve_workload,
    run_settings,
    total_rate,
)

__all__ = ["register"]

#: (summary key, column header, unit) of the compare table.
COLUMNS = (
    ("throughput_requests_per_slot", "req/slot", ""),
    ("throughput_tokens_per_slot", "tok/slot", ""),
    ("latency_mean_slots", "lat mean", ""),
    ("latency_p95_slots", "lat p95", ""),
    ("ttft_mean_slots", "TTFT", ""),
    ("kv_util_mean", "KV mean", "of M"),
    ("kv_util_std", "KV std", "of M"),
    ("evictions", "evict", ""),
    ("wasted_tokens", "wasted", ""),
    ("queue_slope", "q slope", ""),
)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``compare`` subcommand to the argparse sub-parsers ``sub``."""
    p = sub.add_parser("compare", help="simulate several policies on the same arrivals")
    add_workload_args(p)
    add_run_args(p)
    p.add_argument("--policies", metavar="SPEC;SPEC;...",
                   help="policies to run (default: flow at the plan's r*(1e-6), greedy, "
                   "alpha:0.1, reserve, mcsf)")
    p.add_argument("--json", action="store_true", help="print a JSON list of summaries")
    p.add_argument("--plot", metavar="FILE.png",
                   help="save a figure: KV utilisation over time and latency CDFs")
    p.set_defaults(func=_cmd_compare)


def _table(rows: list[tuple[str, dict[str, Any]]]) -> list[str]:
    head = ["policy", *(h for _, h, _ in COLUMNS)]
    body = [[label, *(fmt(s.get(k), u) for k, _, u in COLUMNS)] for label, s in rows]
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    lines = []
    for r in [head, *body]:
        cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)]
        lines.append("  " + "  ".join(cells))
    return lines


def _cmd_compare(args: argparse.Namespace) -> int:
    from flowstab.jsonify import json_ready
    from flowstab.plotting import check_plot_path, plot_compare
    from numerics.errors import SpecError
    from numerics.sim import SimConfig, simulate
    from numerics.sim.lineup import planned_lineup

    workload = resolve_workload(args)
    settings = run_settings(args, workload)
    plot_path = check_plot_path(args.plot) if args.plot else None
    if args.policies is not None:
        specs = [s.strip() for s in args.policies.split(";") if s.strip()]
        if not specs:
            raise SpecError("--policies: give at least one policy spec, e.g. 'greedy;alpha:0.1'")
        policies, notes = [(s, parse_policy_for(s, workload)) for s in specs], []
    else:
        policies, notes = planned_lineup(workload, settings["memory_tokens"],
                                         total_rate(settings["arrival_rate"], workload), settings["slots"])
    configs = [(label, SimConfig(policy=policy, **settings)) for label, policy in policies]
    hard_cap_note(workload, settings["memory_tokens"])
    progress = Progress("compare")
    results = []
    for i, (label, config) in enumerate(configs, start=1):
        with progress.ticking(f"{label} ({i}/{len(configs)}) still running"):
            results.append((label, simulate(config)))
        progress.say(f"{label} done ({i}/{len(configs)})")
    if plot_path is not None:
        plot_compare(results, plot_path,
                     title=f"{workload.name}, M = {settings['memory_tokens']:,} tokens, "
                     f"λ = {configs[0][1].total_rate:g} requests/slot" if configs else "")
    summaries = [(label, res.summary) for label, res in results]
    if args.json:
        for note in notes:
            print(f"flowstab: note: {note}", file=sys.stderr)
        print(json.dumps(json_ready([s for _, s in summaries])))
        return 0
    print("flowstab compare — the same arrivals (seed "
          f"{settings['seed']}) under each policy")
    first = summaries[0][1] if summaries else {"arrival_rate_per_slot": None}
    print("\n".join(header(first, workload, settings)))
    print()
    print("\n".join(_table(summaries)))
    print("  (per slot; latency and TTFT in slots; KV as % of M; evictions and wasted tokens in "
          "the window after warm-up)")
    for note in notes:
        print(f"note: {note}")
    if plot_path is not None:
        print(f"figure saved to {plot_path}")
    return 0
