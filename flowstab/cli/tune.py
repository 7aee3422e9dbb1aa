"""``flowstab tune``: which policy to run, at what setting, and how much better it is.

::

    flowstab tune  [WORKLOAD] (--workload PRESET|FILE.toml|trace:PATH | --prompt SPEC --decode SPEC)
                   --memory M [--arrival-rate λ | --load x] [same run and batching flags as simulate]
                   [--p99-latency X] [--p99-ttft X] [--slo-unit slots|seconds]
                   [--seeds N] [--confirm K] [--candidates "SPEC;SPEC"] [--families F,F]
                   [--processes P] [--json]

Runs :func:`numerics.sim.tune.tune`: the candidates (greedy, flow control at rates set from λ_max,
r*(ε) and r_waste(δ), adaptive, lookahead), a screening stage and a confirmation stage on common
random numbers, and the selection rule of docs/tune.md. Prints the recommendation first, then the
table it chose from; ``--json`` prints one object whose ``policy`` is the recommended spec.
"""

from __future__ import annotations

import argparse
import json
import math
from typing import TYPE_CHECKING

from flowstab.cli._args import (
    add_run_args,
    fmt,
    header,
    nonnegative_int,
    positive_float,
    positive_int,
    run_settings,
)

if TYPE_CHECKING:
    from numerics.sim.tune import TuneResult

__all__ = ["register"]

#: (column, header) of the printed table; the throughput and latency columns follow the objective.
_COLUMNS = (("completed_fraction", "done"), ("evictions", "evict"), ("queue_slope", "q slope"))


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``tune`` subcommand to the argparse sub-parsers ``sub``."""
    p = sub.add_parser("tune", help="find the best policy and setting by simulation")
    p.add_argument("workload_name", nargs="?", metavar="WORKLOAD",
                   help="the same as --workload: a preset, a workload .toml file or trace:PATH")
    add_run_args(p)
    g = p.add_argument_group("tune")
    g.add_argument("--load", type=positive_float, metavar="x",
                   help="arrival rate as a fraction of λ_max (instead of --arrival-rate)")
    g.add_argument("--p99-latency", type=positive_float, metavar="X",
                   help="SLO: censored p99 latency at most X (in --slo-unit)")
    g.add_argument("--p99-ttft", type=positive_float, metavar="X",
                   help="SLO: p99 time to first token at most X (in --slo-unit)")
    g.add_argument("--slo-unit", choices=("slots", "seconds"), default="slots",
                   help="unit of the SLOs (default slots; seconds needs --step-time)")
    g.add_argument("--seeds", type=positive_int, default=3,
                   help="screening replications per candidate, the same for all (default 3)")
    g.add_argument("--confirm", type=nonnegative_int, default=4, metavar="K",
                   help="candidates confirmed on 2 × seeds longer runs (default 4; 0: none)")
    g.add_argument("--candidates", metavar="SPEC;SPEC",
                   help="choose among these policy specs instead of the default candidates")
    g.add_argument("--families", metavar="F,F",
                   help="restrict the default candidates to these families (greedy, flow, "
                        "flowfit, adaptive, lookahead)")
    g.add_argument("--processes", type=positive_int, default=1,
                   help="worker processes (default 1)")
    g.add_argument("--json", action="store_true",
                   help="print one JSON object: policy, reason, theory, settings and the tables")
    p.set_defaults(func=_cmd_tune)


def _resolve_rate(args: argparse.Namespace) -> None:
    """``--load`` → ``--arrival-rate`` (λ_max of the workload and memory); bad input raises."""
    from flowstab.cli._args import memory_of, resolve_workload
    from numerics.analysis.conditions import lambda_max
    from numerics.errors import SettingError

    if args.workload_name:
        if args.workload:
            raise SettingError("give the workload once: WORKLOAD or --workload, not both")
        args.workload = args.workload_name
    if args.load is None:
        return
    if args.arrival_rate is not None:
        raise SettingError("give the arrival rate once: --arrival-rate or --load, not both")
    if args.arrivals == "trace":
        raise SettingError("--load sets a rate per slot; --arrivals trace takes it from the trace")
    workload = resolve_workload(args)
    workload.require_finite_memory_time()
    args.arrival_rate = args.load * lambda_max(workload, memory_of(args, workload))


def _table(res: TuneResult) -> list[str]:
    keys = res.settings
    thr, lat = keys["throughput_key"], keys["latency_key"]
    ttft = lat.replace("latency", "ttft")
    head = ["", "policy", "stage", keys["throughput_unit"], "±", "share", f"p99 ({keys['latency_unit']})",
            "±", "TTFT p99", *(h for _, h in _COLUMNS), "verdict"]
    body = []
    for _, r in res.table.iterrows():
        confirmed = r["stage"] == "confirmation" or keys["confirm"] == 0
        verdict = "chosen" if r["chosen"] else "stopped" if r["stage"] == "pruned" else \
            "collapses" if r["collapsed"] else \
            "not confirmed" if not confirmed and r["stage"] == "screening" else \
            "eligible" if r["eligible"] else "misses SLO" if not r["meets_slo"] else "below 98%"
        body.append(["*" if r["chosen"] else "", r["spec"], f"{r['stage']} ×{r['seeds']}",
                     fmt(r[thr]), fmt(r[thr + "_hw"]), fmt(r["throughput_share"]), fmt(r[lat]),
                     fmt(r[lat + "_hw"]), fmt(r[ttft]), *(fmt(r[k]) for k, _ in _COLUMNS), verdict])
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
    left = {0, 1, 2, len(head) - 1}
    return ["  " + "  ".join(c.ljust(w) if i in left else c.rjust(w)
                             for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip()
            for row in [head, *body]]


def _cmd_tune(args: argparse.Namespace) -> int:
    from flowstab.cli._args import start_runs
    from flowstab.jsonify import json_ready
    from numerics.sim.tune import tune

    _resolve_rate(args)
    settings = run_settings(args)
    progress = start_runs("tune", settings)
    families = None if args.families is None else [f.strip() for f in args.families.split(",")
                                                     if f.strip()]
    candidates = None if args.candidates is None else args.candidates.split(";")
    with progress.ticking("still running"):
        res = tune(settings["workload"], settings["memory_tokens"], settings.get("arrival_rate"),
                   trace=settings.get("trace"), arrivals=settings["arrivals"],
                   eviction=settings["eviction"], batching=settings["batching"],
                   max_batched_tokens=settings["max_batched_tokens"],
                   admit_after_preemption=settings["admit_after_preemption"],
                   step_time=settings["step_time"], block_size=settings["block_size"],
                   slots=settings["slots"], warmup=settings["warmup"], seeds=args.seeds,
                   seed=settings["seed"], confirm=args.confirm, slo_p99_latency=args.p99_latency,
                   slo_p99_ttft=args.p99_ttft, slo_unit=args.slo_unit, candidates=candidates,
                   families=families, processes=args.processes, progress=progress.say)
    if args.json:
        print(json.dumps(json_ready(res.to_dict())))
        return 0
    row, keys = res.row, res.settings
    thr, lat = keys["throughput_key"], keys["latency_key"]
    hw = row[thr + "_hw"]
    ci = f" (±{fmt(hw)})" if math.isfinite(hw) else ""
    slo = "" if res.meets_slo else " [no candidate meets the SLOs]"
    print(f"recommended: {res.spec} — serves {fmt(row[thr])} {keys['throughput_unit']}{ci}, p99 latency "
          f"{fmt(row[lat])} {keys['latency_unit']}, because {res.reason}{slo}")
    print()
    print("\n".join(header({"arrival_rate_per_slot": res.arrival_rate}, settings["workload"], settings)))
    lam = res.lambda_max
    load = "" if res.arrival_rate is None else f", λ = {res.arrival_rate / lam:.3g} λ_max"
    theory = res.theory
    extra = "".join(f", {name} = {theory[k]:.6g}" for k, name in
                    (("flow_rate_eps", f"r*({theory['epsilon']:g})"),
                     ("waste_rate", f"r_waste({theory['waste_target']:g})")) if theory.get(k))
    print(f"theory     λ_max = {lam:.6g} requests/slot{load}{extra}")
    print(f"stages     screening {keys['seeds']} seeds × {keys['slots']:,} slots, confirmation "
          f"{keys['confirm_seeds']} seeds × {keys['confirm_slots']:,} slots (common random numbers, "
          "95% Student-t half-widths; share = paired share of the stage's best throughput)")
    print()
    print("\n".join(_table(res)))
    for note in res.notes:
        print(f"note: {note}")
    return 0
