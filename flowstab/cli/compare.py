"""``flowstab compare``: several policies on the same arrivals, one table (and a figure).

::

    flowstab compare   WORKLOAD --memory M [--arrival-rate λ] [same run and batching flags as
                       simulate]
                       [--policies "SPEC;SPEC;..."] [--json] [--plot FILE.png]

Every policy runs with the same seed, so the same requests arrive at the same slots (common random
numbers). The default line-up is :func:`numerics.sim.lineup.tuned_lineup`: the pick of a quick
:func:`numerics.sim.tune.tune` (greedy and flow control at the theory's rates, labelled
``tuned: SPEC``), then :func:`~numerics.sim.lineup.planned_lineup`'s flow control at the plan's
r*(ε = 10⁻⁶), greedy, α-protection 0.1, reserve and the clairvoyant MC-SF reference.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from flowstab.cli._args import (
    METRICS,
    Progress,
    add_overwrite_arg,
    add_run_args,
    fmt,
    header,
    parse_policy_for,
    run_config,
    run_settings,
    start_runs,
    total_rate,
)

__all__ = ["register"]

#: (summary key, column header) of the compare table; the units are those of :data:`METRICS`.
COLUMNS = (
    ("throughput_requests_per_slot", "req/slot"),
    ("throughput_tokens_per_slot", "tok/slot"),
    ("latency_mean_slots", "lat mean"),
    ("latency_p95_slots", "lat p95"),
    ("latency_p99_slots", "lat p99"),
    ("ttft_mean_slots", "TTFT"),
    ("ttft_p99_slots", "TTFT p99"),
    ("completed_fraction", "done"),
    ("kv_util_mean", "KV mean"),
    ("kv_util_std", "KV std"),
    ("evictions", "evict"),
    ("wasted_tokens", "wasted"),
    ("queue_slope", "q slope"),
)
_UNITS = {key: unit for key, _, unit in METRICS}


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``compare`` subcommand to the argparse sub-parsers ``sub``."""
    p = sub.add_parser("compare", help="simulate several policies on the same arrivals")
    add_run_args(p)
    p.add_argument("--policies", metavar="SPEC;SPEC;...",
                   help="policies to run (default: the pick of a quick flowstab tune, flow at the "
                   "plan's r*(1e-6), greedy, alpha:0.1, reserve, mcsf)")
    p.add_argument("--json", action="store_true", help="print a JSON list of summaries")
    p.add_argument("--plot", metavar="FILE.png",
                   help="save a figure: KV utilisation over time and latency CDFs")
    add_overwrite_arg(p)
    p.set_defaults(func=_cmd_compare)


def _table(rows: list[tuple[str, dict[str, Any]]]) -> list[str]:
    head = ["policy", *(h for _, h in COLUMNS)]
    body = [[label, *(fmt(s.get(k), _UNITS[k]) for k, _ in COLUMNS)] for label, s in rows]
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
    from numerics.sim import simulate
    from numerics.sim.lineup import tuned_lineup

    settings = run_settings(args)
    workload = settings["workload"]
    plot_path = check_plot_path(args.plot, overwrite=args.overwrite) if args.plot else None
    if args.policies is not None:
        specs = [s.strip() for s in args.policies.split(";") if s.strip()]
        if not specs:
            raise SpecError("--policies: give at least one policy spec, e.g. 'greedy;alpha:0.1'")
        policies, notes = [(s, parse_policy_for(s, workload)) for s in specs], []
    elif settings["arrivals"] == "trace":
        raise SpecError("compare --arrivals trace: give --policies 'SPEC;SPEC;...' (the default line-up "
                        "sets flow rates from an arrival rate per slot, which trace replay does not have)")
    else:
        with Progress("compare").ticking("the quick tune for the line-up is still running"):
            policies, notes = tuned_lineup(workload, settings["memory_tokens"],
                                           total_rate(settings["arrival_rate"], workload), settings["slots"],
                                           settings=settings)
    configs = [(label, run_config(policy, settings)) for label, policy in policies]
    progress = start_runs("compare", settings)
    results = []
    for i, (label, config) in enumerate(configs, start=1):
        with progress.ticking(f"{label} ({i}/{len(configs)}) still running"):
            results.append((label, simulate(config, records=plot_path is not None)))
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
