"""``flowstab check``: run the claims ledger and report which claims hold, by what evidence.

::

    flowstab check [--quick | --thorough] [--claim ID ...] [--json] [--report PATH] [--overwrite]

Prints a table (claim, kinds, verdict, evidence, seconds), or with ``--json`` a list of objects
with ``id``, ``verdict`` (verified / violated / inconclusive), ``kinds``, ``evidence`` and the
per-check outcomes. Writes the Markdown report (default ``results/check/REPORT.md`` under the
current folder; ``-`` writes none), checked before any claim runs and replaced only with
``--overwrite``. The repository's ``proofs_check/REPORT.md`` is regenerated with
``flowstab check --report proofs_check/REPORT.md --overwrite``. Exit status 1 when any claim is
violated, 0 otherwise, 2 for bad input.
"""

from __future__ import annotations

import argparse

__all__ = ["register"]

DEFAULT_REPORT = "results/check/REPORT.md"
#: Evidence is cut to this many characters in the terminal table (the report keeps it whole).
EVIDENCE_WIDTH = 90


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``check`` subcommand to the argparse sub-parsers ``sub``."""
    p = sub.add_parser("check", help="run the claims ledger (symbolic, property and empirical "
                       "checks of every registered result)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="mode", action="store_const", const="quick",
                      help="CI-sized checks (default)")
    mode.add_argument("--thorough", dest="mode", action="store_const", const="thorough",
                      help="more hypothesis examples, slots and samples")
    p.add_argument("--claim", action="append", metavar="ID",
                   help="check only this result ID (repeatable), e.g. prop:necessary")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--report", default=DEFAULT_REPORT, metavar="PATH",
                   help=f"Markdown report to write (default {DEFAULT_REPORT}); '-' writes none")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the report if it exists (default: refuse, before any check runs)")
    p.set_defaults(func=_cmd_check, mode="quick")


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _table(results) -> list[str]:
    head = f"{'claim':28s} {'kinds':30s} {'verdict':12s} {'seconds':>8s}  evidence"
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(f"{r.id:28s} {', '.join(r.kinds):30s} {r.verdict:12s} {r.seconds:8.2f}  "
                     f"{_cut(r.evidence, EVIDENCE_WIDTH)}")
    counts = {v: sum(r.verdict == v for r in results) for v in ("verified", "violated",
                                                                "inconclusive")}
    lines.append(f"{len(results)} claims: {counts['verified']} verified, {counts['violated']} "
                 f"violated, {counts['inconclusive']} inconclusive "
                 f"({sum(r.seconds for r in results):.1f} s)")
    return lines


def _cmd_check(args: argparse.Namespace) -> int:
    import json
    import sys

    from flowstab.outputs import check_destination
    from proofs_check.ledger import run_ledger, write_report

    def progress(r) -> None:
        if not args.json:
            print(f"  {r.id:28s} {r.verdict:12s} {r.seconds:6.2f} s", file=sys.stderr, flush=True)

    path = None if args.report == "-" else check_destination(  # before the checks run
        args.report, "--report", overwrite=args.overwrite, suffixes=(".md",),
        create=args.report == DEFAULT_REPORT)
    results = run_ledger(args.claim, mode=args.mode, progress=progress)
    if path is not None:
        write_report(results, path, mode=args.mode)
    if args.json:
        print(json.dumps([r.to_dict() for r in results], ensure_ascii=False))
    else:
        print("\n".join(_table(results)))
        if args.report != "-":
            print(f"report: {args.report}")
    return 1 if any(r.verdict == "violated" for r in results) else 0
