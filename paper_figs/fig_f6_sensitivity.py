"""F6 — sensitivity of flow control to its activation rate r at a fixed arrival rate.

The experiment (:func:`experiment`): flow control at activation rate r, swept, at a fixed λ on
``azure-conv`` (common random numbers across r): throughput, latency, evictions, with greedy
admission as the reference.

The figure (:func:`plot`, from ``results/f6_sensitivity.json``): token throughput, mean and p95
latency, and evictions against r, with 95 % bands over replications. Too small an r (r < λ)
starves the system and the queue grows. Above λ the rate only caps how fast the backlog joins:
under the fair accounting (docs/model.md) the admissions that do not fit are drops on admission,
not evictions, so at λ = 0.8 λ_max evictions stay below one per run at every r swept
(docs/comparisons.md); greedy admission is the dashed reference. The arrival rate λ, the certified
rates r*(ε) and λ_max are marked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from paper_figs import lineup
from paper_figs.io import as_floats
from paper_figs.style import BLUE, VERMILION, label, new_figure, plotting

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["SEED_OFFSET", "config", "experiment", "plot"]

#: The experiment's seed is ``paper_figs.io.BASE_SEED + SEED_OFFSET``.
SEED_OFFSET = 6


def config(quick: bool) -> dict:
    """The experiment's parameters (JSON-able); ``quick``: the small run of CI."""
    n = 9 if quick else 26
    return {
        "preset": "azure-conv",
        "memory_tokens": lineup.AZURE_MEMORY_TOKENS,
        "load": 0.8,
        "rate_fractions": [round(x, 3) for x in np.linspace(0.6, 1.6, n)],  # r / λ_max
        "epsilons": [1e-2, lineup.EPS_CERTIFIED],
        **lineup.replication_run(quick),
    }


def experiment(cfg: dict, seed: int) -> dict:
    """Flow control swept over its activation rate r at a fixed λ; greedy as the reference."""
    from numerics.sim import SimConfig, parse_policy

    wl, tails = lineup.azure(cfg["memory_tokens"])
    lam_max = tails.lambda_max
    lam = cfg["load"] * lam_max
    base = {"slots": cfg["slots"], "arrival_rate": lam, "warmup": cfg["warmup"]}
    flow = []
    for frac in cfg["rate_fractions"]:
        sc = SimConfig(wl, cfg["memory_tokens"], parse_policy(f"flow:rate={frac * lam_max:.6g}"), **base)
        flow.append(lineup.replicated(sc, cfg["replications"], seed))  # common random numbers across r
    greedy = lineup.replicated(SimConfig(wl, cfg["memory_tokens"], parse_policy("greedy"), **base),
                               cfg["replications"], seed)
    return {
        "lambda_max": lam_max,
        "arrival_rate": lam,
        "rates": [f * lam_max for f in cfg["rate_fractions"]],
        "flow_rates_by_epsilon": {f"{eps:g}": tails.flow_rate(eps).rate_per_slot for eps in cfg["epsilons"]},
        "flow": lineup.ci_series(flow),
        "greedy": greedy,
        "window_slots": cfg["slots"] - cfg["warmup"],
    }


def plot(results: dict) -> Figure:
    """The figure from a loaded results file (a pure function of ``results``)."""
    d = results["data"]
    cfg = results["provenance"]["config"]
    r = np.asarray(d["rates"], dtype=float)
    per_k = 1000.0 / d["window_slots"]
    panels = (
        ("throughput_tokens_per_slot", label("token throughput", "token_rate"), 1.0, False),
        ("latency_mean_slots", label("mean latency", "latency"), 1.0, True),
        ("latency_p95_slots", label("p95 latency", "latency"), 1.0, True),
        ("evictions", "evictions per 1000 slots", per_k, False),
    )
    with plotting():
        fig, axes = new_figure("page", 3.8, 2, 2, sharex=True)
        for k, (ax, (metric, ylabel, scale, log)) in enumerate(zip(axes.flat, panels, strict=True)):
            m = d["flow"][metric]
            ax.plot(r, scale * as_floats(m["mean"]), color=BLUE, marker="o", ms=2.2, label="flow control")
            ax.fill_between(r, scale * as_floats(m["low"]), scale * as_floats(m["high"]), color=BLUE,
                            alpha=0.2, lw=0)
            g = d["greedy"][metric]
            ax.axhline(scale * g["mean"], color=VERMILION, ls="--", lw=0.9, label="greedy (vLLM)")
            ax.axvline(d["arrival_rate"], color="0.2", lw=0.7, ls="-")
            ax.axvline(d["lambda_max"], color="0.2", lw=0.7, ls=":")
            for i, (eps, rate) in enumerate(d["flow_rates_by_epsilon"].items()):
                ax.axvline(rate, color="0.55", lw=0.7, ls=("--", "-.")[i % 2])
                if metric == panels[0][0]:
                    ax.text(rate, 0.02, f" r*({eps})", rotation=90, fontsize=5.5, va="bottom",
                            transform=ax.get_xaxis_transform())
            if metric == panels[0][0]:
                ax.text(d["arrival_rate"], 0.98, " λ", va="top", fontsize=7,
                        transform=ax.get_xaxis_transform())
                ax.text(d["lambda_max"], 0.98, " λ_max", va="top", fontsize=7,
                        transform=ax.get_xaxis_transform())
            if log:
                ax.set_yscale("log")
            elif metric == "evictions":
                ax.set_yscale("symlog", linthresh=1)
                ax.set_ylim(bottom=0)
            ax.set_ylabel(ylabel)
            if k >= 2:
                ax.set_xlabel(label("activation rate r", "rate"))
        axes[0, 0].legend(loc="lower right")
        fig.suptitle(f"azure-conv, M = {cfg['memory_tokens']:,} tokens, λ = {d['arrival_rate']:.3g} "
                     f"requests/slot ({cfg['load']:g} λ_max); {cfg['replications']} replications, "
                     "95 % bands", fontsize=8)
    return fig
