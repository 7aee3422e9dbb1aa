"""``flowstab sweep CONFIG.toml``: a grid of simulations → a Parquet results table.

::

    flowstab sweep CONFIG.toml [--out RESULTS.parquet] [--resume]
                   [--processes P | --dask ADDRESS] [--quiet]

The grid (policies × arrival rates or loads × memory sizes × block sizes × seeds), the workload and
the run settings come from the TOML config (format: :mod:`numerics.sweep`; a commented example
is ``examples/sweep.toml``). Cells run on a local process pool (``--processes``, default the CPU
count) or on a Dask cluster (``--dask tcp://HOST:8786``). Each finished cell is checkpointed in
``RESULTS.parquet.cells/``; a sweep that was killed continues with ``--resume`` and neither loses
nor repeats a cell. A progress bar goes to stderr when it is a terminal (``--quiet``: none).

The real-engine batching options of ``simulate``/``compare`` (``--batching``,
``--max-batched-tokens``, ``--[no-]admit-after-preemption``; docs/engines.md) are ``[run]`` keys of
the config here — ``batching``, ``max_batched_tokens``, ``admit_after_preemption`` — so that the
file says everything its cells ran with (and their checkpoint keys include them).
"""

from __future__ import annotations

import argparse
import sys

from flowstab.cli._args import hard_cap_note, positive_int

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``sweep`` subcommand to the argparse sub-parsers ``sub``."""
    p = sub.add_parser("sweep", help="a grid of simulations (policies × rates × M × seeds) → Parquet",
                       description="Run a grid of simulations (policies × arrival rates or loads × "
                       "memory sizes × block sizes × seeds, from a TOML config) and write one "
                       "Parquet table, one row per cell. Finished cells are checkpointed: a killed "
                       "sweep continues with --resume.")
    p.add_argument("config", metavar="CONFIG.toml", help="sweep config (see examples/sweep.toml)")
    p.add_argument("--out", "-o", metavar="RESULTS.parquet",
                   help="results table (default: CONFIG's name with .parquet, in the current folder); "
                   "checkpoints go to RESULTS.parquet.cells/")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted sweep from its checkpoints (runs only missing cells)")
    backend = p.add_mutually_exclusive_group()
    backend.add_argument("--processes", type=positive_int, metavar="P",
                         help="local worker processes (default: the CPU count; 1 runs inline)")
    backend.add_argument("--dask", metavar="ADDRESS",
                         help="run the cells on the Dask scheduler at ADDRESS (e.g. tcp://host:8786)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_sweep)


def _cmd_sweep(args: argparse.Namespace) -> int:
    from pathlib import Path

    from numerics.sweep import checkpoint_dir, load_sweep_config, run_sweep

    config = load_sweep_config(args.config)
    out = Path(args.out) if args.out else Path(Path(args.config).stem + ".parquet")
    for memory in config.memory_tokens:
        hard_cap_note(config.workload, memory)
    try:
        df = run_sweep(config, out, resume=args.resume, processes=args.processes,
                       dask_address=args.dask, progress=not args.quiet)
    except KeyboardInterrupt:
        print(f"flowstab: sweep interrupted; finished cells are checkpointed in {checkpoint_dir(out)}/ "
              "— run the same command with --resume to continue", file=sys.stderr)
        raise
    info = df.attrs["sweep"]
    for note in info["notes"]:
        print(f"flowstab: note: {note}", file=sys.stderr)
    print(f"flowstab sweep — {config.source}: {info['cells']} cells, {info['ran']} run, "
          f"{info['resumed']} from checkpoints ({info['seconds']:.1f} s)")
    print(f"results      {out} ({len(df)} rows × {len(df.columns)} columns)")
    print(f"checkpoints  {info['checkpoints']}/ (keep them to --resume or extend the sweep)")
    return 0
