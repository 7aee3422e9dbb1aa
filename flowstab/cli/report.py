"""``flowstab report``: write one self-contained HTML report for a workload and a KV cache.

::

    flowstab report [--workload PRESET|FILE.toml|trace:PATH | --prompt SPEC --decode SPEC]
                    [--memory M] [--eps 1e-6] [--waste-target 0.01|none] [--budget randomized]
                    [--step-time SPEC|none]
                    [--arrival-rate λ ...] [--slots T] [--replications N] [--seed S]
                    [--no-sim] [--no-verify] [--claims ID,ID,...] [--out DIR] [--quiet]
                    [--overwrite]

Defaults: the preset ``azure-conv`` on a 131 072-token cache (or the workload file's
``memory_tokens``), the step-time model of :data:`flowstab.report.DEFAULT_STEP_TIME`, and
``results/report/`` as DIR. ``--waste-target δ`` (default 0.01; ``none`` leaves it out) adds
the waste-certified rate beside r*(ε): the largest rate whose certified fraction of emitted tokens
thrown away by recompute evictions is at most δ (docs/theory.md §13); for unbounded laws the
report says it is not applicable, and why. Prints the path of ``DIR/report.html``; progress bars go to stderr.
An existing ``DIR/report.html`` is replaced only with ``--overwrite`` (checked before any work);
the page is written atomically.
"""

from __future__ import annotations

import argparse
import math

from flowstab.cli._args import (
    add_eps_arg,
    add_memory_arg,
    add_workload_args,
    nonnegative_int,
    positive_float,
    positive_int,
    resolve_workload,
)

__all__ = ["register", "waste_target"]

DEFAULT_OUT = "results/report"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``report`` subcommand to the argparse sub-parsers ``sub``."""
    p = sub.add_parser("report", help="write a self-contained HTML report (plan, conditions, "
                       "simulation, verification)")
    add_workload_args(p)
    add_memory_arg(p, "KV-cache size M in tokens (default: the workload file's memory_tokens, else 131072)")
    add_eps_arg(p)
    p.add_argument("--waste-target", type=waste_target, metavar="δ|none", default=argparse.SUPPRESS,
                   help="δ in (0, 1) for the waste-certified rate shown beside r*(ε), the largest rate "
                   "losing ≤ δ of emitted tokens to evictions (default 0.01); none leaves it out")
    p.add_argument("--budget", choices=("randomized", "deterministic", "poisson"), default="randomized",
                   help="activation budget law of flow control (default randomized)")
    p.add_argument("--step-time", help="const:SECONDS, linear:c0=..,cb=..,ck=..[,cp=..], "
                   "staircase:c=..,a=..,b0=.. or none (default: a linear fit to measured "
                   "Llama-2-70B/H100 decode steps, see the report)")
    p.add_argument("--arrival-rate", type=positive_float, action="append", metavar="λ",
                   help="total arrival rate (requests/slot) to simulate; repeat for several "
                   "(default: 0.9·r*(ε) and 0.9·λ_max, or the workload's own rates)")
    p.add_argument("--slots", type=positive_int, help="slots per simulated run (default 20,000)")
    p.add_argument("--replications", type=positive_int,
                   help="independent runs per policy and rate (default 5)")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="random seed (default 0)")
    p.add_argument("--no-sim", action="store_true", help="leave out the simulation")
    p.add_argument("--no-verify", action="store_true", help="leave out the claims ledger")
    p.add_argument("--claims", metavar="ID,ID,...",
                   help="claims to verify (default: those the report uses)")
    p.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                   help=f"output folder (default {DEFAULT_OUT}/); the file is DIR/report.html")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--overwrite", action="store_true",
                   help="replace DIR/report.html if it exists (default: refuse, before any work)")
    p.set_defaults(func=_cmd_report)


def waste_target(text: str) -> float | None:
    """``--waste-target``: a float in (0, 1), or ``none`` (no waste-certified rate)."""
    if text.strip().lower() == "none":
        return None
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"needs a number in (0, 1) or none, got {text!r}") from None
    if not (math.isfinite(x) and 0 < x < 1):
        raise argparse.ArgumentTypeError(f"must lie in (0, 1) (or be none), got {text}")
    return x


def _command_line(args: argparse.Namespace, memory_tokens: int, step: str) -> str:
    """The canonical command that reproduces this report."""
    import shlex

    parts = ["flowstab", "report"]
    if args.workload:
        parts += ["--workload", args.workload]
    else:
        parts += ["--prompt", args.prompt, "--decode", args.decode]
    parts += ["--memory", str(memory_tokens), "--eps", f"{args.eps:g}",
              "--waste-target", "none" if args.waste_target is None else f"{args.waste_target:g}",
              "--budget", args.budget, "--step-time", step]
    for rate in args.arrival_rate or ():
        parts += ["--arrival-rate", f"{rate:g}"]
    if args.slots is not None:
        parts += ["--slots", str(args.slots)]
    if args.replications is not None:
        parts += ["--replications", str(args.replications)]
    parts += ["--seed", str(args.seed)]
    if args.no_sim:
        parts.append("--no-sim")
    if args.no_verify:
        parts.append("--no-verify")
    if args.claims:
        parts += ["--claims", args.claims]
    parts += ["--out", args.out]
    return shlex.join(parts)


def _cmd_report(args: argparse.Namespace) -> int:
    from flowstab.report import (
        DEFAULT_MEMORY_TOKENS,
        DEFAULT_REPLICATIONS,
        DEFAULT_SLOTS,
        DEFAULT_STEP_TIME,
        ReportConfig,
        write_report,
    )
    from flowstab.report.config import DEFAULT_WASTE_TARGET, check_out_dir
    from numerics.data.presets import DEFAULT_PRESET
    from numerics.errors import SpecError
    from numerics.model.steptime import StepTimeModel

    folder = check_out_dir(args.out, args.overwrite)  # fail before computing
    if "waste_target" not in args:  # not given (default SUPPRESS): the report's default δ
        args.waste_target = DEFAULT_WASTE_TARGET
    if not (args.workload or args.prompt or args.decode):
        args.workload = DEFAULT_PRESET
    workload = resolve_workload(args)
    m = args.memory if args.memory is not None else (workload.memory_tokens or DEFAULT_MEMORY_TOKENS)
    if args.step_time is None:
        step = DEFAULT_STEP_TIME
    elif args.step_time.strip().lower() == "none":
        step = None
    else:
        step = StepTimeModel.from_spec(args.step_time)
    claims = None
    if args.claims is not None:
        import theory

        claims = tuple(c.strip() for c in args.claims.split(",") if c.strip())
        unknown = [c for c in claims if c not in theory.REGISTRY]
        if unknown:
            raise SpecError(f"--claims: unknown claim ID(s) {', '.join(unknown)}; known: "
                            f"{', '.join(sorted(theory.REGISTRY))}")
    step_spec = "none" if step is None else step.to_spec()
    config = ReportConfig(
        workload=workload,
        memory_tokens=int(m),
        epsilon=args.eps,
        waste_target=args.waste_target,
        budget=args.budget,
        step_time=step,
        arrival_rates=tuple(args.arrival_rate) if args.arrival_rate else None,
        slots=args.slots if args.slots is not None else DEFAULT_SLOTS,
        replications=args.replications if args.replications is not None else DEFAULT_REPLICATIONS,
        seed=args.seed,
        simulate=not args.no_sim,
        verify=not args.no_verify,
        claims=claims,
        command=_command_line(args, int(m), step_spec),
    )
    path = write_report(config, folder, progress=not args.quiet, overwrite=args.overwrite)
    print(path)
    return 0
