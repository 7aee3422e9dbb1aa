"""F10 — the headline comparison in seconds, with the re-prefill of evicted requests charged.

The experiment (:func:`experiment`): Poisson arrivals in seconds replayed through a measured
step-time model that charges every prefill, *including the re-prefill of an evicted request*
(c_p per prompt token), so greedy's evictions cost time; throughput and latency per policy of the
line-up (:func:`paper_figs.lineup.policy_lineup`) against the offered rate.

The figure (:func:`plot`, from ``results/f10_seconds.json``): throughput, mean and p95 latency
against the offered rate in requests/s, per policy, for a linear step-time model
τ = c0 + cb·B + ck·K + cp·P (P counts every prefill, re-prefills after eviction included), with
Λ* = M/(E[W]·τ(B_M, M, P_M)) marked.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from paper_figs.lineup import ci_series, policy_lineup
from paper_figs.style import label, plotting, rate_comparison

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["SEED_OFFSET", "config", "experiment", "plot"]

#: The experiment's seed is ``paper_figs.io.BASE_SEED + SEED_OFFSET``.
SEED_OFFSET = 10


def config(quick: bool) -> dict:
    """The experiment's parameters (JSON-able); ``quick``: the small run of CI."""
    loads = [0.6, 0.9, 1.0] if quick else [0.5, 0.7, 0.8, 0.9, 0.95, 1.0, 1.05]
    return {
        "prompt": "lognormal:median=600,sigma=0.6,max=4000",
        "decode": "geom:mean=400,max=4000",
        "memory_tokens": 65_536,
        # numerics.calibration.fit on splitwise-sim's perf_model.csv: llama2-70b, H100, TP 4
        # (decode c0, cb, ck; prefill cp), as reported in the issue-7 closing note
        "step_time": "linear:c0=0.0288,cb=0.000282,ck=9.4e-08,cp=0.000107",
        "epsilon": 1e-3,
        "flow_fraction": 0.95,
        "loads": loads,  # fractions of Λ* (requests/s)
        "requests": 500 if quick else 3_000,
        "replications": 1 if quick else 3,
    }


def _t_interval(values) -> dict[str, float]:
    """Mean and 95 % Student-t interval of ``values`` (the interval is the mean alone for one)."""
    from scipy import stats

    x = np.array(values, dtype=float)
    half = (stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
            if x.size > 1 else 0.0)
    return {"mean": float(x.mean()), "low": float(x.mean() - half), "high": float(x.mean() + half)}


def experiment(cfg: dict, seed: int) -> dict:
    """Throughput and latency in seconds per policy, re-prefill charged by the step-time model."""
    from numerics.analysis.plan import make_plan
    from numerics.calibration.compare import poisson_trace, simulate_trace, window_metrics
    from numerics.model.specs import parse_law
    from numerics.model.steptime import StepTimeModel
    from numerics.model.workload import Workload
    from numerics.sim import parse_policy
    from numerics.sim.replicate import replication_seeds

    wl = Workload.single(parse_law(cfg["prompt"]), parse_law(cfg["decode"]))
    m = cfg["memory_tokens"]
    step = StepTimeModel.from_spec(cfg["step_time"])
    plan = make_plan(wl, m, cfg["epsilon"], step_time=step)
    lineup = policy_lineup(plan.lambda_max, plan.flow_rate, cfg, cfg["epsilon"])
    rates = [load * plan.lambda_max_per_s for load in cfg["loads"]]
    keys = ("throughput_rps", "latency_mean_s", "latency_p95_s", "evictions")
    out = []
    for pol in lineup:
        policy = parse_policy(pol["spec"])
        points = []
        for j, rate in enumerate(rates):
            rows = []
            for s in replication_seeds(seed + j, cfg["replications"]):  # common arrivals per rate
                trace = poisson_trace(wl, rate, cfg["requests"], s)
                horizon = float(trace.timestamps_s[-1])
                rec, ts = simulate_trace(trace, wl, m, policy, step, 1, s, horizon)
                rows.append(window_metrics(rec, ts, m, horizon))
            points.append({k: _t_interval([r[k] for r in rows]) for k in keys})
        out.append({**pol, "metrics": ci_series(points, keys)})
    return {
        "lambda_max_per_slot": plan.lambda_max,
        "capacity_per_s": plan.lambda_max_per_s,
        "flow_rate_per_s": plan.flow_rate_per_s,
        "offered_rps": rates,
        "policies": out,
    }


#: The panels: (metric, y label, log y).
_PANELS = (
    ("throughput_rps", label("throughput", "requests/s"), False),
    ("latency_mean_s", label("mean latency", "s"), True),
    ("latency_p95_s", label("p95 latency", "s"), True),
)


def plot(results: dict) -> Figure:
    """The figure from a loaded results file (a pure function of ``results``)."""
    d = results["data"]
    cfg = results["provenance"]["config"]
    x = np.asarray(d["offered_rps"], dtype=float)
    with plotting():
        fig, _ = rate_comparison(x, d["policies"], _PANELS, mark=d["capacity_per_s"], mark_label="Λ*",
                                 xlabel=label("offered rate", "requests/s"), offered=x,
                                 offered_label="offered", height_in=2.5, nrows=1, ncols=3, legend_ncol=5)
        fig.suptitle(f"S ~ {cfg['prompt']}, O ~ {cfg['decode']}, M = {cfg['memory_tokens']:,} tokens\n"
                     f"step time {cfg['step_time']} (s; prefill and re-prefill charged at cp per token)",
                     fontsize=6.5, x=0.02, ha="left")
    return fig
