"""``flowstab demo``: the plan for the embedded default workload, as a readable report.

::

    flowstab demo [--memory M] [--json]

Plans the preset :data:`numerics.data.presets.DEFAULT_PRESET` on a KV cache of ``M`` tokens
(default :data:`DEMO_MEMORY_TOKENS`); no files and no flags needed.
"""

from __future__ import annotations

import argparse

from flowstab.cli._args import memory

__all__ = ["DEMO_MEMORY_TOKENS", "register"]

DEMO_MEMORY_TOKENS = 131_072


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``demo`` subcommand to the argparse sub-parsers ``sub``."""
    p = sub.add_parser("demo", help="the plan for the embedded default workload")
    p.add_argument("--memory", type=memory, default=DEMO_MEMORY_TOKENS,
                   help=f"KV-cache size in tokens (default {DEMO_MEMORY_TOKENS})")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    from flowstab.cli.plan import print_plan
    from numerics.analysis.plan import make_plan
    from numerics.data.presets import DEFAULT_PRESET, load_preset

    workload = load_preset(DEFAULT_PRESET)
    plan = make_plan(workload, args.memory)
    if args.json:
        print_plan(plan, True)
        return 0
    print(f"flowstab demo: planning the embedded default workload {DEFAULT_PRESET!r} on a "
          f"{args.memory:,}-token KV cache\n")
    print(plan.report())
    print("\nTry: flowstab plan --prompt 100 --decode geom:mean=200 --memory 50000")
    return 0
