"""F6 — sensitivity of flow control to its activation rate r at a fixed arrival rate.

Plots ``results/f6_sensitivity.json`` (:func:`paper_figs.experiments.exp_f6_sensitivity`): token
throughput, mean and p95 latency, and evictions against r on azure-conv, with 95 % bands over
replications. Too small an r (r < λ) starves the system and the queue grows; too large an r admits
more than the memory holds and evictions waste work; greedy admission is the dashed reference. The
arrival rate λ, the certified rates r*(ε) and λ_max are marked.
"""

from __future__ import annotations

import numpy as np

from paper_figs.style import BLUE, VERMILION, label, new_figure, plotting

__all__ = ["plot"]


def _arr(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def plot(results: dict):
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
            ax.plot(r, scale * _arr(m["mean"]), color=BLUE, marker="o", ms=2.2, label="flow control")
            ax.fill_between(r, scale * _arr(m["low"]), scale * _arr(m["high"]), color=BLUE,
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
