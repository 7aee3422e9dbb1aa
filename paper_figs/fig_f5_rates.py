"""F5 — the headline comparison: throughput and latency against the arrival rate, per policy.

The experiment (:func:`experiment`): token and request throughput, mean and p95 latency against
the arrival rate per policy of the line-up (:func:`paper_figs.lineup.policy_lineup`) on
``azure-conv``, with Student-t 95 % intervals over independent replications.

The figure (:func:`plot`, from ``results/f5_rates.json``): token and request throughput, mean and
p95 latency on azure-conv against λ, with 95 % Student-t bands over independent replications and
λ_max = M / E[W] marked (no scheduler is stable beyond it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from paper_figs import lineup
from paper_figs.style import label, plotting, rate_comparison

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["SEED_OFFSET", "config", "experiment", "plot"]

#: The experiment's seed is ``paper_figs.io.BASE_SEED + SEED_OFFSET``.
SEED_OFFSET = 5


def config(quick: bool) -> dict:
    """The experiment's parameters (JSON-able); ``quick``: the small run of CI."""
    loads = [0.5, 0.7, 0.85, 0.95, 1.05] if quick else [round(x, 2) for x in np.arange(0.4, 1.126, 0.05)]
    return {
        "preset": "azure-conv",
        "memory_tokens": lineup.AZURE_MEMORY_TOKENS,
        "loads": loads,
        "epsilon": lineup.EPS_CERTIFIED,
        "flow_fraction": 0.95,
        "reserve_max": 1000,
        **lineup.replication_run(quick),
    }


def experiment(cfg: dict, seed: int) -> dict:
    """Throughput and latency against λ per policy, with replication intervals."""
    from numerics.sim import SimConfig, parse_policy

    wl, tails = lineup.azure(cfg["memory_tokens"])
    lam_max = tails.lambda_max
    r_cert = tails.flow_rate(cfg["epsilon"]).rate_per_slot
    policies = lineup.policy_lineup(lam_max, r_cert, cfg)
    rates = [load * lam_max for load in cfg["loads"]]
    out = []
    for pol in policies:
        policy = parse_policy(pol["spec"])
        points = []
        for j, lam in enumerate(rates):
            sc = SimConfig(wl, cfg["memory_tokens"], policy, slots=cfg["slots"], arrival_rate=lam,
                           warmup=cfg["warmup"])
            points.append(lineup.replicated(sc, cfg["replications"], seed + j))  # common seeds per λ
        out.append({**pol, "metrics": lineup.ci_series(points)})
    return {
        "lambda_max": lam_max,
        "flow_rate_certified": r_cert,
        "mean_decode": wl.mean_decode,
        "arrival_rates": rates,
        "policies": out,
        "note": "MC-SF is left out of the sweep: the clairvoyant reference runs on the Python "
                "engine (~10 ms per slot at this load), too slow for replications at every λ.",
    }


#: The panels: (metric, y label, log y).
_PANELS = (
    ("throughput_tokens_per_slot", label("throughput", "token_rate"), False),
    ("throughput_requests_per_slot", label("throughput", "rate"), False),
    ("latency_mean_slots", label("mean latency", "latency"), True),
    ("latency_p95_slots", label("p95 latency", "latency"), True),
)


def plot(results: dict) -> Figure:
    """The figure from a loaded results file (a pure function of ``results``)."""
    d = results["data"]
    cfg = results["provenance"]["config"]
    lam = np.asarray(d["arrival_rates"], dtype=float)
    with plotting():
        fig, _ = rate_comparison(lam, d["policies"], _PANELS, mark=d["lambda_max"], mark_label="λ_max",
                                 xlabel=label("arrival rate λ", "rate"), offered=lam * d["mean_decode"],
                                 offered_label="offered load λ E[O]", height_in=4.2, nrows=2, ncols=2,
                                 legend_ncol=4, sharex=True)
        fig.suptitle(f"azure-conv, M = {cfg['memory_tokens']:,} tokens; {cfg['replications']} "
                     f"replications × {cfg['slots'] - cfg['warmup']:,} slots after warm-up, 95 % bands",
                     fontsize=8, x=0.02, ha="left")  # left-aligned: clear of the right panel's label
    return fig
