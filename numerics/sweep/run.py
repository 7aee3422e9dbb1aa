"""Running a sweep: the cells not yet checkpointed run on a backend, with a progress bar.

:func:`run_sweep` validates the config and the output path, reads back the checkpoints of an
earlier run (``resume``), runs the rest (:mod:`numerics.sweep.backends`), checkpoints each result
as it arrives (:mod:`numerics.sweep.store`) and writes the table. The example in
:mod:`numerics.sweep` runs a sweep and resumes it.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from numerics.sweep import backends, store
from numerics.sweep.cells import sweep_cells
from numerics.sweep.config import SweepConfig, SweepError, load_sweep_config, sweep_config_from_dict

__all__ = ["run_sweep"]


def run_sweep(
    config: SweepConfig | Mapping | str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    resume: bool = False,
    processes: int | None = None,
    dask_address: Any = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Run every cell of a sweep (or, with ``resume``, those not yet checkpointed) → Parquet.

    Parameters
    ----------
    config : SweepConfig, dict or path
        A validated config, a parsed TOML dict, or the path of a sweep TOML file.
    out_path : str or path-like
        The results file (``.parquet``); checkpoints go to ``<out_path>.cells/``.
    resume : bool
        Reuse the checkpoints of an earlier, interrupted (or finished) run of this sweep. Without
        it an existing checkpoint folder or results file is an error.
    processes : int, optional
        Local worker processes (default ``os.cpu_count()``); 1 runs the cells in this process.
    dask_address : str or distributed.Client, optional
        Run the cells on this Dask cluster instead of a local pool.
    progress : bool
        A tqdm progress bar on stderr (shown only when stderr is a terminal).

    Returns
    -------
    pandas.DataFrame
        One row per cell, in cell order: ``cell``, ``cell_key``, ``policy``, ``policy_resolved``,
        ``flow_rate_per_slot`` (NaN for other policies), ``load``, ``arrival_rate_per_slot``,
        ``memory_tokens``, ``block_size``, [``replication``], ``seed``, then every numeric key of
        :attr:`SimResult.summary <numerics.sim.results.SimResult.summary>`. The same table is
        written to ``out_path``. ``attrs["sweep"]`` holds ``cells``, ``ran``, ``resumed``,
        ``checkpoints`` (the folder), ``seconds`` and ``notes`` (things worth telling the user).

    Raises
    ------
    SpecError
        The config is invalid.
    SweepError
        The output or checkpoint paths are unusable (see ``resume``), the Dask scheduler cannot be
        reached, ``processes`` is not a positive integer, or a cell failed (the finished ones stay
        checkpointed; fix the cause and resume).
    """
    t0 = time.perf_counter()
    if isinstance(config, Mapping):
        config = sweep_config_from_dict(config)
    elif not isinstance(config, SweepConfig):
        config = load_sweep_config(config)
    if processes is not None and (isinstance(processes, bool) or not isinstance(processes, int)
                                  or processes < 1):
        raise SweepError(f"processes must be a positive integer, got {processes!r}")
    if processes is not None and dask_address is not None:
        raise SweepError("give either processes (a local pool) or dask_address, not both")
    out = Path(out_path)
    cells = sweep_cells(config)
    store.check_output(out, resume, config)
    client, own = backends.connect(dask_address) if dask_address is not None else (None, False)
    folder = store.checkpoint_dir(out)
    try:
        folder.mkdir(exist_ok=True)
        notes: list[str] = []
        records = store.load_checkpoints(folder, cells, notes) if resume else {}
        store.write_manifest(folder, config, len(cells))
        pending = [c for c in cells if c.key not in records]
        resumed = len(cells) - len(pending)
        if pending:
            backend = backends.choose_backend(processes, len(pending), client)
            results = backends.cell_results(config, pending, backend, processes=processes, client=client)
            _collect(results, folder, records, len(cells), resumed, progress)
        df = store.results_table(config, cells, records)
        store.write_parquet(df, out, config)
    except OSError as exc:  # a full disk, a folder made read-only meanwhile, ...
        raise SweepError(
            f"cannot write under {out.parent} ({exc.strerror or exc}); every cell finished so far "
            "is checkpointed: fix the cause and run the same command with --resume"
        ) from None
    finally:
        if own:
            client.close()
    df.attrs["sweep"] = {"cells": len(cells), "ran": len(pending), "resumed": resumed,
                         "checkpoints": str(folder), "seconds": time.perf_counter() - t0,
                         "notes": notes}
    return df


def _collect(results, folder: Path, records: dict, total: int, resumed: int, progress: bool) -> None:
    """Checkpoint each result as it arrives, with a progress bar (cells done / total, ETA)."""
    from tqdm import tqdm

    bar = tqdm(total=total, initial=resumed, unit="cell", desc="flowstab sweep", file=sys.stderr,
               disable=None if progress else True, dynamic_ncols=True)
    try:
        for cell, summary in results:
            records[cell.key] = store.save_checkpoint(folder, cell, summary)
            bar.update(1)
    finally:
        bar.close()
        results.close()  # stops the backend (pool shutdown, Dask futures cancelled) on an error

