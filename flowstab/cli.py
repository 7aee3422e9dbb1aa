"""The ``flowstab`` command line.

Subcommands::

    flowstab plan  (--prompt SPEC --decode SPEC | --workload PRESET|FILE.toml|trace:PATH)
                   --memory M [--eps 1e-6] [--budget randomized] [--step-time SPEC]
                   [--arrival-rate λ] [--json]
    flowstab demo  the plan on the embedded default workload, as a readable report

Bad input prints one line, ``flowstab: error: ...``, and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence

from numerics.errors import FlowstabError

__all__ = ["main"]

DEMO_MEMORY_TOKENS = 131_072


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit status 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"flowstab: error: {message} (see '{self.prog} --help')\n")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _memory(text: str) -> int:
    value = _positive_float(text)
    if value != int(value):
        raise argparse.ArgumentTypeError(f"must be a whole number of tokens, got {text}")
    return int(value)


def _epsilon(text: str) -> float:
    value = _positive_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must lie in (0, 1), got {text}")
    return value


def _add_workload_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("workload (either --workload, or --prompt and --decode)")
    g.add_argument("--workload", help="preset name (azure-conv, azure-code, sharegpt, mooncake), "
                   "a workload .toml file, or trace:PATH")
    g.add_argument("--prompt", help="prompt-length law spec, e.g. 100 or lognormal:median=120,sigma=0.8")
    g.add_argument("--decode", help="decode-length law spec, e.g. geom:mean=200,max=2048")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="flowstab", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    plan = sub.add_parser("plan", help="stability limits and a flow-control rate for a workload")
    _add_workload_args(plan)
    plan.add_argument("--memory", type=_memory, help="KV-cache size M in tokens")
    plan.add_argument("--eps", type=_epsilon, default=1e-6,
                      help="target overflow probability per slot (default 1e-6)")
    plan.add_argument("--budget", choices=("randomized", "deterministic", "poisson"),
                      default="randomized", help="activation budget law (default randomized)")
    plan.add_argument("--step-time", help="const:SECONDS, linear:c0=..,cb=..,ck=..[,cp=..] or "
                      "staircase:c=..,a=..,b0=..; adds per-second rates")
    plan.add_argument("--arrival-rate", type=_positive_float,
                      help="a total arrival rate (requests/slot) to check against the plan")
    plan.add_argument("--json", action="store_true", help="print one JSON object")

    demo = sub.add_parser("demo", help="the plan for the embedded default workload")
    demo.add_argument("--memory", type=_memory, default=DEMO_MEMORY_TOKENS,
                      help=f"KV-cache size in tokens (default {DEMO_MEMORY_TOKENS})")
    demo.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"flowstab {version('flowstab')}"
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "flowstab (not installed)"


def _resolve_workload(args: argparse.Namespace):
    from numerics.errors import WorkloadError
    from numerics.specs import parse_law
    from numerics.workload import Workload

    if args.workload and (args.prompt or args.decode):
        raise WorkloadError("give either --workload or --prompt/--decode, not both")
    if args.workload:
        from numerics.loaders import load_workload

        return load_workload(args.workload)
    if not (args.prompt and args.decode):
        raise WorkloadError(
            "describe the workload: --workload PRESET|FILE.toml|trace:PATH, or both --prompt and "
            "--decode (e.g. --prompt 100 --decode geom:mean=200)"
        )
    wl = Workload.single(parse_law(args.prompt), parse_law(args.decode), name="cli")
    return Workload(wl.classes, "cli", None, f"prompt {args.prompt}, decode {args.decode}")


def _print_plan(plan, as_json: bool) -> None:
    if as_json:
        print(json.dumps(plan.to_dict(), default=_jsonable, allow_nan=True))
    else:
        print(plan.report())


def _jsonable(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return str(x)


def _cmd_plan(args: argparse.Namespace) -> int:
    from numerics.plan import make_plan
    from numerics.steptime import StepTimeModel

    workload = _resolve_workload(args)
    step = StepTimeModel.from_spec(args.step_time) if args.step_time else None
    plan = make_plan(workload, args.memory, args.eps, args.budget, step, args.arrival_rate)
    _print_plan(plan, args.json)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from numerics.plan import make_plan
    from numerics.presets import DEFAULT_PRESET, load_preset

    workload = load_preset(DEFAULT_PRESET)
    plan = make_plan(workload, args.memory)
    if args.json:
        _print_plan(plan, True)
        return 0
    print(f"flowstab demo: planning the embedded default workload {DEFAULT_PRESET!r} on a "
          f"{args.memory:,}-token KV cache\n")
    print(plan.report())
    print("\nTry: flowstab plan --prompt 100 --decode geom:mean=200 --memory 50000")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``flowstab`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = {"plan": _cmd_plan, "demo": _cmd_demo}[args.command]
    try:
        return handler(args)
    except FlowstabError as exc:
        print(f"flowstab: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
