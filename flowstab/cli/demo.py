"""``flowstab demo``: the main job on the embedded default workload — the plan, then the report.

::

    flowstab demo [--memory M] [--out DIR] [--overwrite] [--plan-only] [--json] [--quiet]

Plans the preset :data:`numerics.data.presets.DEFAULT_PRESET` on a KV cache of ``M`` tokens
(default :data:`DEMO_MEMORY_TOKENS`) and prints the plan, then writes the HTML report of
``flowstab report`` for the same workload and cache to ``DIR/report.html`` (default
``results/report/``; an existing one is replaced only with ``--overwrite``, checked before any
work). No files and no flags needed: ``make demo`` runs ``flowstab demo --overwrite``.
``--plan-only`` (or ``--json``, which prints the plan as one JSON object) skips the report.
"""

from __future__ import annotations

import argparse

from flowstab.cli._args import memory

__all__ = ["DEMO_MEMORY_TOKENS", "register"]

DEMO_MEMORY_TOKENS = 131_072


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``demo`` subcommand to the argparse sub-parsers ``sub``."""
    from flowstab.cli.report import DEFAULT_OUT  # a command module: standard library only

    p = sub.add_parser("demo", help="the plan and the report for the embedded default workload")
    p.add_argument("--memory", type=memory, default=DEMO_MEMORY_TOKENS,
                   help=f"KV-cache size in tokens (default {DEMO_MEMORY_TOKENS})")
    p.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                   help=f"the report's folder (default {DEFAULT_OUT}/); the file is DIR/report.html")
    p.add_argument("--overwrite", action="store_true",
                   help="replace DIR/report.html if it exists (default: refuse, before any work)")
    p.add_argument("--plan-only", action="store_true", help="print the plan, write no report")
    p.add_argument("--json", action="store_true", help="print the plan as one JSON object (no report)")
    p.add_argument("--quiet", action="store_true", help="no progress bars while the report runs")
    p.set_defaults(func=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    from flowstab.cli.plan import print_plan
    from numerics.analysis.plan import make_plan
    from numerics.data.presets import DEFAULT_PRESET, load_preset

    report = not (args.plan_only or args.json)
    if report:
        from flowstab.report.config import check_out_dir

        check_out_dir(args.out, args.overwrite)  # before any work
    workload = load_preset(DEFAULT_PRESET)
    plan = make_plan(workload, args.memory)
    if args.json:
        print_plan(plan, True)
        return 0
    print(f"flowstab demo: planning the embedded default workload {DEFAULT_PRESET!r} on a "
          f"{args.memory:,}-token KV cache\n")
    print(plan.report())
    if not report:
        print("\nTry: flowstab plan --prompt 100 --decode geom:mean=200 --memory 50000")
        return 0
    print("\nflowstab demo: the report for the same workload and cache (flowstab report) ...", flush=True)
    from flowstab.cli import build_parser

    argv = ["report", "--workload", DEFAULT_PRESET, "--memory", str(args.memory), "--out", args.out]
    argv += ["--overwrite"] * args.overwrite + ["--quiet"] * args.quiet
    sub = build_parser().parse_args(argv)
    code = sub.func(sub)
    print("Next: flowstab tune --workload azure-conv --memory 131072 --load 0.95 --families greedy,flow "
          "(what to run, in seconds; without --families it tries every family, minutes)")
    return code
