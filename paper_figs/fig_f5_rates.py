"""F5 — the headline comparison: throughput and latency against the arrival rate, per policy.

Plots ``results/f5_rates.json`` (:func:`paper_figs.experiments.exp_f5_rates`): token and request
throughput, mean and p95 latency on azure-conv against λ, with 95 % Student-t bands over
independent replications and λ_max = M / E[W] marked (no scheduler is stable beyond it).
"""

from __future__ import annotations

import numpy as np

from paper_figs.style import label, new_figure, plot_policy_bands, plotting

__all__ = ["plot"]

_PANELS = (
    ("throughput_tokens_per_slot", label("throughput", "token_rate"), False),
    ("throughput_requests_per_slot", label("throughput", "rate"), False),
    ("latency_mean_slots", label("mean latency", "latency"), True),
    ("latency_p95_slots", label("p95 latency", "latency"), True),
)


def plot(results: dict):
    """The figure from a loaded results file (a pure function of ``results``)."""
    d = results["data"]
    cfg = results["provenance"]["config"]
    lam = np.asarray(d["arrival_rates"], dtype=float)
    lam_max = d["lambda_max"]
    with plotting():
        fig, axes = new_figure("page", 4.2, 2, 2, sharex=True)
        for ax, (metric, ylabel, log) in zip(axes.flat, _PANELS, strict=True):
            plot_policy_bands(ax, lam, d["policies"], metric, lam_max, "λ_max", log)
            ax.set_ylabel(ylabel)
        for ax in axes[1]:
            ax.set_xlabel(label("arrival rate λ", "rate"))
        axes[0, 0].plot(lam, lam * d["mean_decode"], color="0.5", lw=0.7, ls=":",
                        label="offered load λ E[O]")
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncol=4)
        fig.suptitle(f"azure-conv, M = {cfg['memory_tokens']:,} tokens; {cfg['replications']} "
                     f"replications × {cfg['slots'] - cfg['warmup']:,} slots after warm-up, 95 % bands",
                     fontsize=8, x=0.02, ha="left")  # left-aligned: clear of the right panel's label
    return fig
