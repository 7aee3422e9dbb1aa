r"""The statistics and the selection rule of :func:`numerics.sim.tune.tune`.

:func:`stage_table` turns the replications of one stage (one :func:`~numerics.sim.replicate.replicate`
table per candidate, all on the same seeds: common random numbers) into one row per candidate:
the mean and the Student-t half-width (:func:`~numerics.sim.replicate.ci`, level 0.95) of each
metric of :data:`METRICS`, and the *paired* share of the best throughput, T_c,i / T_b,i per seed i
(b the candidate with the highest mean throughput), whose interval is narrow because both runs of a
pair saw the same arrivals and lengths.

:func:`select` applies the rule of docs/tune.md to such a table:

1. **collapse**: c's queue grows without bound when its mean queue slope over the second half of
   the runs (``queue_slope``, requests per slot) exceeds max(0, the smallest mean slope of the
   table) + :data:`SLOPE_SHARE` × λ (λ the arrival rate per slot; for trace replay, the best mean
   throughput per slot): its queue gains more than 2 % of the arrivals per slot on the best one's;
2. **SLOs**: c meets them when the mean over the seeds of its censored p99 latency (and p99 TTFT)
   is at most the target;
3. **feasible** F = not collapsed and meeting the SLOs; T* = the largest mean throughput in F;
4. **eligible** = {c ∈ F : T_c ≥ :data:`THROUGHPUT_SHARE` × T*};
5. **pick** the eligible candidate with the smallest mean p99 latency; candidates within
   :data:`TIE_SHARE` (2 %) of that smallest p99 are tied, and the tie goes to the simplest family
   (:data:`FAMILY_RANK`: greedy, flow, flowfit, adaptive, lookahead, then any other), then to the
   smaller p99, then to the spec;
6. if F is empty, no candidate meets the SLOs (or all collapse): the pick is the candidate of
   highest mean throughput among the non-collapsed ones (all, if every one collapses), with
   ``meets_slo`` False.

Examples
--------
>>> import pandas as pd
>>> t = pd.DataFrame({"spec": ["greedy", "flow:rate=1"], "family": ["greedy", "flow"],
...                   "throughput_requests_per_slot": [0.9, 1.0], "latency_p99_slots": [50.0, 60.0],
...                   "queue_slope": [0.0, 0.0]})
>>> s = select(t, arrival_rate=1.0)
>>> t.loc[s.chosen, "spec"], s.meets_slo
('flow:rate=1', True)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from numerics.sim.replicate import ci

__all__ = [
    "FAMILY_RANK",
    "LEVEL",
    "METRICS",
    "SECONDS_METRICS",
    "SLOPE_SHARE",
    "THROUGHPUT_SHARE",
    "TIE_SHARE",
    "Selection",
    "confirm_order",
    "select",
    "stage_table",
]

#: Eligible candidates serve at least this share of the best feasible mean throughput.
THROUGHPUT_SHARE = 0.98
#: A queue slope this share of λ above the smallest one (or above 0) is a collapse.
SLOPE_SHARE = 0.02
#: p99 latencies within this share of the smallest eligible one are tied.
TIE_SHARE = 0.02
#: Confidence level of every interval of the tables.
LEVEL = 0.95
#: Simplicity of a policy family: ties go to the lowest rank (unlisted families rank last).
FAMILY_RANK = {"greedy": 0, "flow": 1, "flowfit": 2, "adaptive": 3, "lookahead": 4}
#: Summary keys of every run, each with its mean and ``_hw`` (half-width) column in the tables.
METRICS = (
    "throughput_requests_per_slot",
    "latency_p99_slots",
    "ttft_p99_slots",
    "latency_mean_slots",
    "completed_fraction",
    "latency_censored_fraction",
    "queue_slope",
    "evictions",
    "dropped_on_admission",
    "wasted_tokens",
    "kv_util_mean",
)
#: The same in seconds, present when the runs have a step time.
SECONDS_METRICS = ("throughput_requests_per_s", "latency_p99_s", "ttft_p99_s")


def stage_table(runs: Mapping[str, pd.DataFrame], info: Mapping[str, dict], stage: str,
                throughput_key: str, seconds: bool) -> pd.DataFrame:
    """One row per candidate of a stage: means and half-widths, the paired throughput share.

    Parameters
    ----------
    runs : mapping of spec → DataFrame
        Each candidate's :func:`~numerics.sim.replicate.replicate` table, all on the same seeds.
    info : mapping of spec → dict
        Columns describing each candidate (``family``, ``origin``, ``rate``), copied into its row.
    stage : str
        The stage's name, written in the ``stage`` column.
    throughput_key : str
        The summary key whose paired share of the best is ``throughput_share``.
    seconds : bool
        Also summarise :data:`SECONDS_METRICS`.
    """
    keys = METRICS + (SECONDS_METRICS if seconds else ())
    rows = []
    for spec, df in runs.items():
        table = ci(df[[k for k in keys if k in df.columns]], LEVEL)
        row = {"spec": spec, **info[spec], "stage": stage, "seeds": len(df),
               "slots": int(df["slots"].iloc[0])}
        for key in keys:
            if key in table.index:
                row[key] = float(table.loc[key, "mean"])
                row[f"{key}_hw"] = float(table.loc[key, "half_width"])
            else:
                row[key] = row[f"{key}_hw"] = math.nan
        rows.append(row)
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    full = out[out["seeds"] == out["seeds"].max()]  # the reference ran every seed
    best = str(full.loc[full[throughput_key].idxmax(), "spec"])
    ref = runs[best][throughput_key].to_numpy(dtype=float)
    shares, halves = [], []
    for spec in out["spec"]:
        x = runs[spec][throughput_key].to_numpy(dtype=float)
        r = ref[:x.size]  # a raced-out candidate ran the first seeds only
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = pd.DataFrame({"share": np.where(r > 0, x / r, np.nan)})
        t = ci(ratio, LEVEL)
        shares.append(float(t.loc["share", "mean"]))
        halves.append(float(t.loc["share", "half_width"]))
    out["throughput_share"] = shares
    out["throughput_share_hw"] = halves
    return out


@dataclass(frozen=True)
class Selection:
    """What :func:`select` decided, over the rows of the table it was given (by index)."""

    #: index label of the pick
    chosen: object
    #: False when no candidate is feasible (meets the SLOs without collapsing)
    meets_slo: bool
    #: per row: collapsed, meets the SLOs, feasible, eligible
    collapsed: pd.Series
    meets: pd.Series
    eligible: pd.Series
    #: T*, the best mean throughput of the feasible rows (of all rows when none is feasible)
    best_throughput: float
    #: index label of the row with T*
    best: object
    #: the smallest eligible p99 and its row, when some row is eligible (else NaN, None)
    min_latency: float
    min_latency_row: object
    #: the collapse threshold on the queue slope, requests per slot
    slope_limit: float


def _rank(family: str) -> int:
    return FAMILY_RANK.get(family, len(FAMILY_RANK))


def select(table: pd.DataFrame, *, arrival_rate: float | None,
           throughput_key: str = "throughput_requests_per_slot",
           latency_key: str = "latency_p99_slots",
           slos: Mapping[str, float] | None = None) -> Selection:
    """The selection rule of the module docstring on ``table`` (one row per candidate).

    Parameters
    ----------
    table : pandas.DataFrame
        Columns ``spec``, ``family``, ``queue_slope``, ``throughput_requests_per_slot``,
        ``throughput_key``, ``latency_key`` and the keys of ``slos``.
    arrival_rate : float or None
        λ per slot, the scale of the collapse threshold (None: the best mean throughput per slot).
    throughput_key, latency_key : str
        The columns maximised (within :data:`THROUGHPUT_SHARE`) and then minimised.
    slos : mapping of column → limit, optional
        Each row meets the SLOs when every listed column is ≤ its limit.
    """
    thr = table[throughput_key].astype(float)
    lat = table[latency_key].astype(float)
    slope = table["queue_slope"].astype(float)
    scale = arrival_rate if arrival_rate is not None and math.isfinite(arrival_rate) \
        else float(table["throughput_requests_per_slot"].max())
    limit = max(float(slope.min()), 0.0) + SLOPE_SHARE * scale
    collapsed = slope > limit
    meets = pd.Series(True, index=table.index)
    for key, bound in (slos or {}).items():
        meets &= table[key].astype(float) <= bound
    feasible = ~collapsed & meets
    if feasible.any():
        best = thr[feasible].idxmax()
        t_star = float(thr[best])
        eligible = feasible & (thr >= THROUGHPUT_SHARE * t_star)
        lo = lat[eligible].idxmin()
        tied = table.index[eligible & (lat <= lat[lo] * (1 + TIE_SHARE))]
        chosen = min(tied, key=lambda i: (_rank(table.loc[i, "family"]), lat[i], table.loc[i, "spec"]))
        return Selection(chosen, True, collapsed, meets, eligible, t_star, best, float(lat[lo]), lo,
                         limit)
    pool = thr[~collapsed] if (~collapsed).any() else thr
    best = pool.idxmax()
    eligible = pd.Series(False, index=table.index)
    return Selection(best, False, collapsed, meets, eligible, float(thr[best]), best, math.nan, None,
                     limit)


def confirm_order(table: pd.DataFrame, sel: Selection, throughput_key: str, latency_key: str,
                  near: float = 0.95) -> list[object]:
    """The rows of a screening table in the order the confirmation stage takes them.

    First the eligible rows by p99 latency; then the feasible rows serving ≥ ``near`` × T* by p99;
    then every other non-collapsed row by throughput, highest first; the collapsed rows last. The
    pick and the throughput-best row come first whatever their group.
    """
    thr = table[throughput_key].astype(float)
    lat = table[latency_key].astype(float)
    feasible = ~sel.collapsed & sel.meets

    def key(i) -> tuple:
        if sel.eligible[i]:
            return (0, lat[i])
        if feasible[i] and thr[i] >= near * sel.best_throughput:
            return (1, lat[i])
        if not sel.collapsed[i]:
            return (2, -thr[i])
        return (3, -thr[i])

    first = [sel.chosen] + ([sel.best] if sel.best != sel.chosen else [])
    rest = sorted((i for i in table.index if i not in first), key=key)
    return first + rest
