"""F10 — the headline comparison in seconds, with the re-prefill of evicted requests charged.

Plots ``results/f10_seconds.json`` (:func:`paper_figs.experiments.exp_f10_seconds`): throughput,
mean and p95 latency against the offered rate in requests/s, per policy, for Poisson arrivals
replayed through a linear step-time model τ = c0 + cb·B + ck·K + cp·P (P counts every prefill,
re-prefills after eviction included), with Λ* = M/(E[W]·τ(B_M, M, P_M)) marked.
"""

from __future__ import annotations

import numpy as np

from paper_figs.style import label, new_figure, plot_policy_bands, plotting

__all__ = ["plot"]

_PANELS = (
    ("throughput_rps", label("throughput", "requests/s"), False),
    ("latency_mean_s", label("mean latency", "s"), True),
    ("latency_p95_s", label("p95 latency", "s"), True),
)


def plot(results: dict):
    """The figure from a loaded results file (a pure function of ``results``)."""
    d = results["data"]
    cfg = results["provenance"]["config"]
    x = np.asarray(d["offered_rps"], dtype=float)
    cap = d["capacity_per_s"]
    with plotting():
        fig, axes = new_figure("page", 2.5, 1, 3)
        for ax, (metric, ylabel, log) in zip(axes.flat, _PANELS, strict=True):
            plot_policy_bands(ax, x, d["policies"], metric, cap, "Λ*", log)
            ax.set_ylabel(ylabel)
            ax.set_xlabel(label("offered rate", "requests/s"))
        axes[0, 0].plot(x, x, color="0.5", lw=0.7, ls=":", label="offered")
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncol=5)
        fig.suptitle(f"S ~ {cfg['prompt']}, O ~ {cfg['decode']}, M = {cfg['memory_tokens']:,} tokens\n"
                     f"step time {cfg['step_time']} (s; prefill and re-prefill charged at cp per token)",
                     fontsize=6.5, x=0.02, ha="left")
    return fig
