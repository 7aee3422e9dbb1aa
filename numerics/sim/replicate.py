r"""Independent replications of one simulation, and Student-t confidence intervals.

:func:`replicate` runs ``n`` copies of a :class:`~numerics.sim.engine.SimConfig` that differ only
in their seed. The seeds are the children of ``numpy.random.SeedSequence(seed)``:
``SeedSequence(seed).spawn(n)[i].generate_state(1)[0]`` for replication i, so the runs are
statistically independent streams, and the same ``seed`` gives the same seeds and hence the
same table (run order and the number of processes do not matter).

:func:`ci` turns the table into a confidence interval per metric: with :math:`\bar x` the mean,
:math:`s` the sample standard deviation (ddof = 1) and :math:`n` the number of finite values,

.. math:: \bar x \pm t_{n-1,\,(1+\ell)/2}\; s / \sqrt{n}

at level :math:`\ell` (0.95 by default). The replications are i.i.d., so this interval is exact
for normal data and asymptotically valid otherwise (each replication is itself a long-run average).

Examples
--------
>>> from numerics.sim import SimConfig, parse_policy
>>> from numerics.model.specs import parse_law
>>> from numerics.model.workload import Workload
>>> wl = Workload.single(parse_law("20"), parse_law("geom:mean=10"))
>>> cfg = SimConfig(wl, 2000, parse_policy("flow:rate=1"), slots=500, arrival_rate=0.8, warmup=50)
>>> df = replicate(cfg, 3, seed=1, processes=1)
>>> len(df), df["seed"].nunique()
(3, 3)
>>> table = ci(df)
>>> bool(table.loc["throughput_requests_per_slot", "half_width"] > 0)
True
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed

import numpy as np
import pandas as pd

from numerics.errors import WorkloadError
from numerics.sim.engine import SimConfig

__all__ = ["CONFIG_COLUMNS", "ci", "replicate", "replication_seeds"]

#: Columns of :func:`replicate`'s table that describe the run rather than measure it; :func:`ci`
#: leaves them out.
CONFIG_COLUMNS = (
    "replication",
    "seed",
    "memory_tokens",
    "slots",
    "warmup",
    "arrival_rate_per_slot",
)


def replication_seeds(seed: int | None, n: int) -> list[int]:
    """The integer seeds of ``n`` independent replications: children of ``SeedSequence(seed)``."""
    children = np.random.SeedSequence(seed).spawn(n)
    return [int(child.generate_state(1)[0]) for child in children]


def _numeric_summary(summary: dict) -> dict:
    """The numeric entries of a run's summary (bools and strings dropped), as Python floats/ints."""
    out = {}
    for key, value in summary.items():
        if isinstance(value, bool | np.bool_) or value is None:
            continue
        if isinstance(value, int | np.integer):
            out[key] = int(value)
        elif isinstance(value, float | np.floating):
            out[key] = float(value)
    return out


def _run_one(config: SimConfig, seed: int) -> dict:
    """One replication (a top-level function so that worker processes can unpickle it), in the
    summary-only mode: no per-request records are built."""
    from numerics.sim.results import simulate

    return _numeric_summary(simulate(dataclasses.replace(config, seed=seed), records=False).summary)


def replicate(
    config: SimConfig,
    n: int,
    seed: int | None = 0,
    *,
    processes: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Run ``n`` independent replications of ``config``; one row per replication.

    Parameters
    ----------
    config : SimConfig
        The run to replicate; its own ``seed`` is ignored.
    n : int
        Number of replications (≥ 1).
    seed : int or None
        Root of the seed tree (``SeedSequence(seed).spawn(n)``); None draws fresh entropy.
    processes : int, optional
        Worker processes; default ``min(n, os.cpu_count())``, and never more than that (a larger
        value starts only that many). ``1`` runs inline, in this process.
    progress : callable, optional
        ``progress(done, n)`` is called in this process after each finished replication.

    Returns
    -------
    pandas.DataFrame
        Columns ``replication``, ``seed`` and every numeric key of
        :attr:`SimResult.summary <numerics.sim.results.SimResult.summary>`, in replication order.

    Raises
    ------
    WorkloadError
        ``n`` or ``processes`` is not a positive integer, or ``seed`` is negative.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise WorkloadError(f"the number of replications must be a positive integer, got {n!r}")
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0
    ):
        raise WorkloadError(f"seed must be a non-negative integer or None, got {seed!r}")
    if processes is None:
        processes = min(int(n), os.cpu_count() or 1)
    if isinstance(processes, bool) or not isinstance(processes, int | np.integer) or processes < 1:
        raise WorkloadError(f"processes must be a positive integer, got {processes!r}")
    n = int(n)
    seeds = replication_seeds(seed, n)
    rows: list[dict | None] = [None] * n
    if processes == 1:
        for i, s in enumerate(seeds):
            rows[i] = _run_one(config, s)
            if progress is not None:
                progress(i + 1, n)
    else:
        # never more workers than replications or CPUs (processes=10000 on 2 cores starts 2)
        with ProcessPoolExecutor(max_workers=min(int(processes), n, os.cpu_count() or 1)) as pool:
            futures = {pool.submit(_run_one, config, s): i for i, s in enumerate(seeds)}
            for done, future in enumerate(as_completed(futures), start=1):
                rows[futures[future]] = future.result()
                if progress is not None:
                    progress(done, n)
    df = pd.DataFrame(rows)
    df["seed"] = np.asarray(seeds, dtype=np.int64)  # the replication's own seed, not the root
    df.insert(0, "replication", np.arange(n, dtype=np.int64))
    return df


def ci(df: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Student-t confidence intervals, one row per metric column of a :func:`replicate` table.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per replication (the output of :func:`replicate`); non-numeric columns and
        :data:`CONFIG_COLUMNS` are skipped.
    level : float
        Confidence level in (0, 1).

    Returns
    -------
    pandas.DataFrame
        Index: metric. Columns ``mean``, ``std`` (ddof = 1), ``n`` (finite values), ``half_width``
        (:math:`t_{n-1,(1+\\ell)/2}\\,s/\\sqrt n`), ``low`` and ``high``. With fewer than two
        finite values ``std`` and ``half_width`` are NaN.
    """
    from scipy.stats import t as student_t

    if not (isinstance(level, float | int) and 0 < level < 1):
        raise WorkloadError(f"confidence level must lie in (0, 1), got {level!r}")
    out = {}
    for col in df.columns:
        if col in CONFIG_COLUMNS or not pd.api.types.is_numeric_dtype(df[col]):
            continue
        if pd.api.types.is_bool_dtype(df[col]):
            continue
        x = df[col].to_numpy(dtype=float)
        x = x[np.isfinite(x)]
        k = int(x.size)
        mean = float(x.mean()) if k else math.nan
        if k >= 2:
            std = float(x.std(ddof=1))
            half = float(student_t.ppf((1 + level) / 2, k - 1) * std / math.sqrt(k))
        else:
            std = half = math.nan
        out[col] = {"mean": mean, "std": std, "n": k, "half_width": half,
                    "low": mean - half, "high": mean + half}
    table = pd.DataFrame.from_dict(out, orient="index",
                                   columns=["mean", "std", "n", "half_width", "low", "high"])
    table.index.name = "metric"
    table.attrs["level"] = float(level)
    return table
