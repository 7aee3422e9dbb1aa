"""The ``flowstab`` command line.

Subcommands, one module each (``flowstab COMMAND --help`` lists each one's flags)::

    flowstab plan       stability limits and a flow-control rate for a workload   (plan.py)
    flowstab demo       the plan on the embedded default workload                 (demo.py)
    flowstab simulate   one admission policy, slot by slot, or N replications     (simulate.py)
    flowstab compare    several policies on the same arrivals, with --plot        (compare.py)
    flowstab region     two-class rate regions, with --plot                       (region.py)
    flowstab calibrate  step-time calibration on a GPU or the CPU                 (calibrate.py)
    flowstab check      the claims ledger                                         (check.py)
    flowstab design     cvxpy rate design, --integer budgets                      (design.py)
    flowstab report     the self-contained HTML report                            (report.py)
    flowstab sweep      grids of simulations to Parquet, --resume, --dask         (sweep.py)
    flowstab tune       the best policy and setting, by simulation with CIs       (tune.py)
    flowstab hindsight  the hindsight-optimal total latency (HiGHS) vs policies  (hindsight.py)

The argument types and groups they share are in :mod:`flowstab.cli._args`. A command module
defines ``register(sub)``, which adds its parser to the argparse sub-parsers ``sub`` and sets
``func`` (``func(args) -> int``, the exit status) with ``set_defaults``. Command modules import only
the standard library and :mod:`flowstab.cli._args` at top level, so ``flowstab --help`` stays fast;
the work imports lazily inside ``func``.

Bad input prints one line, ``flowstab: error: ...``, and exits with status 2. Nothing outside this
package imports it: what the front ends share lives in :mod:`flowstab.plotting`,
:mod:`flowstab.jsonify` and :mod:`numerics`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from flowstab.cli._args import one_line
from numerics.errors import FlowstabError

__all__ = ["COMMANDS", "build_parser", "main"]

#: The subcommand modules, in the order ``flowstab --help`` lists them.
COMMANDS = ("plan", "demo", "simulate", "compare", "region",
            "calibrate", "check", "design", "report", "sweep", "tune", "hindsight")


#: ``flowstab --help``'s text, plain (the module docstring is reStructuredText for the API docs).
DESCRIPTION = ("flowstab: the stability theory of LLM inference scheduling under a KV-cache limit — "
               "exact conditions, certified activation rates, simulation of the paper's policies "
               "against the ones used in practice, and what to run.")
EPILOG = ("Run 'flowstab COMMAND --help' for a command's flags. Start with 'flowstab demo' (the plan "
          "on the embedded default workload), 'flowstab tune' (what to run for your workload) or "
          "'flowstab report' (the HTML report).")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"flowstab: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``flowstab`` parser with every subcommand of :data:`COMMANDS` registered."""
    from flowstab import __version__

    parser = _Parser(prog="flowstab", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"flowstab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in COMMANDS:
        importlib.import_module(f"flowstab.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``flowstab`` console script: parse ``argv``, run the command, return
    its exit status (2 with one ``flowstab: error:`` line for bad input, 130 when interrupted)."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except FlowstabError as exc:
        print(f"flowstab: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except MemoryError:
        print("flowstab: error: out of memory; simulate fewer --slots or a lower --arrival-rate",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("flowstab: interrupted", file=sys.stderr)
        return 130
