"""Throughput of ``flowstab sweep``: cells per second of a 100-cell sweep on each backend.

The sweep (measured and reported, never asserted): the ``azure-conv`` preset at M = 131072 tokens,
4 policies (flow at the plan's r*(1e-6), flow at 0.97·λ_max, greedy, α-protection 0.1) × 5 loads
(0.5 … 0.95 of λ_max) × 5 seeds = 100 cells of 20,000 slots each (``--quick``: 2,000 slots).

Backends, each starting from an empty checkpoint folder:

* ``inline``: ``processes=1`` (the cells one after another in this process);
* ``pool``: a local ``ProcessPoolExecutor`` with ``os.cpu_count()`` workers;
* ``dask-threads`` / ``dask-processes``: a Dask ``LocalCluster`` with ``os.cpu_count()`` workers of
  one thread each, in this process or in worker processes; the cluster's start-up time is
  measured separately and excluded from cells/s.

Each backend's table is checked to equal the inline one. The numba kernel is compiled (or loaded
from its cache) by one warm-up cell before timing. Run: ``.venv/bin/python benchmarks/bench_sweep.py
[--quick] [--skip-dask-processes]``; prints a table and writes ``benchmarks/results/bench_sweep.json``
(git-ignored) with the versions and the git revision.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import pandas as pd

from numerics.provenance import git
from numerics.sweep import run_sweep, sweep_cells, sweep_config_from_dict

RESULTS = Path(__file__).resolve().parent / "results" / "bench_sweep.json"


def config(slots: int) -> dict:
    return {
        "workload": {"preset": "azure-conv"},
        "grid": {"policy": ["flow:rate=r_star", "flow:rate=0.97*lambda_max", "greedy", "alpha:0.1"],
                 "load": [0.5, 0.65, 0.8, 0.9, 0.95], "memory_tokens": [131072],
                 "seeds": [0, 1, 2, 3, 4]},
        "run": {"slots": slots, "warmup": slots // 10},
    }


def timed(cfg, folder: Path, name: str, **kw) -> tuple[float, pd.DataFrame]:
    t0 = time.perf_counter()
    df = run_sweep(cfg, folder / f"{name}.parquet", progress=False, **kw)
    return time.perf_counter() - t0, df


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2,000 slots per cell instead of 20,000")
    ap.add_argument("--skip-dask-processes", action="store_true",
                    help="skip the LocalCluster with worker processes (slow to start on small machines)")
    args = ap.parse_args()
    slots = 2_000 if args.quick else 20_000
    cpus = os.cpu_count() or 1
    cfg = sweep_config_from_dict(config(slots))
    n = len(sweep_cells(cfg))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        one = sweep_config_from_dict(config(slots) | {"grid": config(slots)["grid"] | {
            "policy": ["greedy"], "load": [0.5], "seeds": [0]}})
        run_sweep(one, folder / "warm.parquet", processes=1, progress=False)  # numba compile / cache
        seconds, ref = timed(cfg, folder, "inline", processes=1)
        rows.append({"backend": "inline", "workers": 1, "startup_s": 0.0, "seconds": seconds})
        seconds, df = timed(cfg, folder, "pool", processes=cpus)
        pd.testing.assert_frame_equal(df, ref)
        rows.append({"backend": "pool", "workers": cpus, "startup_s": 0.0, "seconds": seconds})
        from distributed import LocalCluster

        kinds = [False] if args.skip_dask_processes else [False, True]
        for processes in kinds:
            t0 = time.perf_counter()
            with LocalCluster(n_workers=cpus, threads_per_worker=1, processes=processes,
                              dashboard_address=None) as cluster:
                startup = time.perf_counter() - t0
                name = "dask-processes" if processes else "dask-threads"
                seconds, df = timed(cfg, folder, name, dask_address=cluster.scheduler_address)
            pd.testing.assert_frame_equal(df, ref)
            rows.append({"backend": name, "workers": cpus, "startup_s": startup, "seconds": seconds})
    for r in rows:
        r["cells"] = n
        r["cells_per_s"] = n / r["seconds"]
    print(f"flowstab sweep: {n} cells of {slots:,} slots (azure-conv, M = 131072), {cpus} CPUs")
    print(f"  {'backend':<15} {'workers':>7} {'start-up s':>10} {'sweep s':>8} {'cells/s':>8}")
    for r in rows:
        print(f"  {r['backend']:<15} {r['workers']:>7} {r['startup_s']:>10.2f} {r['seconds']:>8.2f} "
              f"{r['cells_per_s']:>8.2f}")
    print("  every backend's table equals the inline one")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "rows": rows, "slots": slots, "cpus": cpus, "python": platform.python_version(),
        "git": git("rev-parse", "--short", "HEAD") or "unknown", "config": config(slots),
    }, indent=1))
    print(f"  written to {RESULTS}")


if __name__ == "__main__":
    main()
