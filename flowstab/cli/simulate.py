"""``flowstab simulate``: one admission policy, slot by slot, or N replications with intervals.

::

    flowstab simulate  WORKLOAD --memory M --policy SPEC [--arrival-rate λ] [--slots T]
                       [--warmup W] [--seed S] [--arrivals poisson|deterministic|bernoulli|trace]
                       [--block-size b] [--eviction recompute|keep-progress] [--step-time SPEC]
                       [--batching mixed|prefill-first|chunked] [--max-batched-tokens N]
                       [--[no-]admit-after-preemption]
                       [--replications N [--processes P]] [--json]

One run prints the summary metrics of :func:`numerics.sim.simulate`; ``--replications N`` runs N
independent replications (seeds from ``SeedSequence(--seed)``, :func:`numerics.sim.replicate`) and
prints each metric's mean ± the 95% Student-t half-width (:func:`numerics.sim.ci`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowstab.cli._args import (
    METRICS,
    add_overwrite_arg,
    add_run_args,
    fmt,
    header,
    parse_policy_for,
    positive_int,
    replications,
    run_config,
    run_settings,
    start_runs,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["register"]

#: Summary keys that describe the run (shown in the header, not the table).
RUN_KEYS = ("policy", "memory_tokens", "slots", "warmup", "seed", "arrival_rate_per_slot")
#: Confidence level of the ``--replications`` intervals.
CI_LEVEL = 0.95


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``simulate`` subcommand to the argparse sub-parsers ``sub``."""
    p = sub.add_parser("simulate", help="simulate one admission policy slot by slot")
    add_run_args(p)
    p.add_argument("--policy", required=True,
                   help="flow:rate=R[,budget=..] (budget randomized, deterministic, poisson or a "
                   "length law in parentheses whose mean is the rate: flow:budget=(uniform:0,6)), "
                   "budgets:4,4, greedy[:watermark=..], "
                   "reserve[:max=L], alpha:0.1, mcsf, mc, flowfit:rate=R, adaptive[:target=..], "
                   "lookahead[:target=..,horizon=H], wait[:n_1,..] or nested-wait; "
                   "each takes max_seqs=N (a cap on the "
                   "active requests), e.g. flow:rate=2,max_seqs=64")
    p.add_argument("--replications", type=replications, metavar="N",
                   help="N ≥ 2 independent runs (seeds from SeedSequence(--seed)); prints "
                   "mean ± 95%% Student-t half-width per metric")
    p.add_argument("--processes", type=positive_int, metavar="P",
                   help="worker processes for --replications (default: min(N, CPUs))")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object (the summary, or the confidence-interval table)")
    p.add_argument("--records", metavar="PATH", default=None,
                   help="also write the per-request records to PATH (.csv or .parquet); without it "
                        "the run keeps no per-request table (summary-only, bounded memory)")
    add_overwrite_arg(p)
    p.set_defaults(func=_cmd_simulate)


def _check_records_path(path: str, overwrite: bool) -> Path:
    """Fail before simulating when the records could not be written (an existing file is
    replaced only with ``--overwrite``)."""
    from flowstab.outputs import check_destination

    return check_destination(path, "--records", overwrite=overwrite, suffixes=(".csv", ".parquet"))


def _summary_table(summary: dict[str, Any]) -> list[str]:
    known = {k for k, _, _ in METRICS}
    rows = [(label, fmt(summary[key], unit), "" if unit == "of M" else unit)
            for key, label, unit in METRICS if key in summary]
    rows += [(key, fmt(value), "") for key, value in summary.items()
             if key not in known and key not in RUN_KEYS]
    width = max(len(label) for label, _, _ in rows)
    vwidth = max(len(v) for _, v, _ in rows)
    return [f"  {label:<{width}}  {value:>{vwidth}}  {unit}".rstrip() for label, value, unit in rows]


def _ci_table(table: pd.DataFrame) -> list[str]:
    units = {key: (label, unit) for key, label, unit in METRICS}
    head = ("metric", "mean", "", "half-width", "std", "n", "unit")
    rows = [head]
    for metric, row in table.iterrows():
        label, unit = units.get(metric, (metric, ""))
        rows.append((label, fmt(float(row["mean"]), unit), "±", fmt(float(row["half_width"]), unit),
                     fmt(float(row["std"]), unit), str(int(row["n"])), "" if unit == "of M" else unit))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    align = "<><<>><"
    lines = []
    for r in rows:
        cells = [f"{c:{a}{w}}" for c, a, w in zip(r, align, widths, strict=True)]
        lines.append(("  " + "  ".join(cells)).rstrip())
    return lines


def _cmd_simulate(args: argparse.Namespace) -> int:
    from flowstab.jsonify import json_ready
    from numerics.sim import ci, replicate, simulate

    settings = run_settings(args)
    workload = settings["workload"]
    policy = parse_policy_for(args.policy, workload)
    config = run_config(policy, settings)
    progress = start_runs("simulate", settings)
    if args.replications is None:
        records_path = _check_records_path(args.records, args.overwrite) if args.records else None
        with progress.ticking(f"{args.slots:,} slots of {policy.spec()} still running"):
            res = simulate(config, records=records_path is not None)
        summary = res.summary
        if records_path is not None:
            _write_records(res.records, records_path)
        if args.json:
            print(json.dumps(json_ready(summary)))
            return 0
        print(f"flowstab simulate — {summary['policy']}")
        print("\n".join(header(summary, workload, settings)))
        print()
        print("\n".join(_summary_table(summary)))
        return 0

    if args.records:
        from numerics.errors import SpecError

        raise SpecError("--records writes one run's requests; drop --replications (or --records)")
    n = args.replications
    df = replicate(config, n, args.seed, processes=args.processes,
                   progress=lambda done, total: progress.say(f"{done}/{total} replications done"))
    table = ci(df, CI_LEVEL)
    if args.json:
        print(json.dumps(json_ready({
            "policy": policy.spec(),
            "replications": n,
            "seed": args.seed,
            "level": CI_LEVEL,
            "ci": {
                metric: {col: (int(row[col]) if col == "n" else float(row[col])) for col in table.columns}
                for metric, row in table.iterrows()
            },
        })))
        return 0
    print(f"flowstab simulate — {policy.spec()}, {n} replications "
          f"(seeds from SeedSequence({args.seed})), {100 * CI_LEVEL:g}% Student-t intervals")
    print("\n".join(header({"arrival_rate_per_slot": config.total_rate}, workload, settings)))
    print()
    print("\n".join(_ci_table(table)))
    return 0


def _write_records(records: pd.DataFrame, path: Path) -> None:
    from numerics.files import atomic_path

    with atomic_path(path, "--records") as tmp:
        if path.suffix.lower() == ".parquet":
            records.to_parquet(tmp, index=False)
        else:
            records.to_csv(tmp, index=False)
