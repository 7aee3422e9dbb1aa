"""F7 — greedy admission vs flow control in saturation (one request type: prompt s, decode d).

Plots ``results/f7_greedy.json`` (:func:`paper_figs.experiments.exp_f7_greedy`). Left: the
active requests over time under greedy admission with LIFO eviction (simulation) against the
fluid limit cycle of :func:`numerics.chains.fluid.greedy_fluid_cycle` — a synchronised cohort that fills
the cache, is cut back by evictions every slot and completes together every d slots — and flow
control at the eviction-free budget ⌊M/W⌋. Right: throughput relative to the eviction-free
equilibrium d·M/W as d/s grows: greedy (simulation, fluid) against the closed form
(s + (d+1)/2)/(s + d) → 1/2, and flow control (simulation).
"""

from __future__ import annotations

import numpy as np

from paper_figs.style import BLACK, BLUE, VERMILION, label, new_figure, plotting

__all__ = ["plot"]


def plot(results: dict):
    """The figure from a loaded results file (a pure function of ``results``)."""
    d = results["data"]
    c = d["cycle"]
    with plotting():
        fig, axes = new_figure("page", 2.5, 1, 2)
        ax, ax_r = axes[0]
        t = np.asarray(c["slot"], dtype=float)
        fluid = c["fluid"]
        period = fluid["cycle_length"]
        series = np.asarray(fluid["series"]["active"], dtype=float)
        start = fluid["transient_slots"]
        tf = np.arange(start, t[-1] + 1)
        ax.plot(t, c["active"], color=VERMILION, lw=0.9, label="greedy + LIFO, simulation")
        ax.plot(tf, series[((tf - start) % period).astype(int)], color=BLACK, lw=0.9, ls="--",
                label="greedy, fluid cycle")
        ax.plot(t, c["flow_active"], color=BLUE, lw=0.9, ls="-.",
                label=f"flow control, budget ⌊M/W⌋ = {c['flow_budget']}")
        ax.set_yscale("log")
        ax.set_xlim(0, t[-1])
        ax.set_xlabel(label("time", "time"))
        ax.set_ylabel(label("active requests", "count"))
        ax.set_title(f"s = {c['prompt']}, d = {c['decode']}, M = {c['memory_tokens']:,} tokens; "
                     f"fluid throughput ratio {fluid['throughput_ratio']:.3f}", fontsize=7)
        ax.legend(loc="lower right")
        r = d["ratios"]
        q = np.array([x["d_over_s"] for x in r])
        cf = d["closed_form"]
        ax_r.plot(cf["d_over_s"], cf["ratio"], color=BLACK, lw=0.9, label="(s + (d+1)/2)/(s + d)")
        ax_r.axhline(0.5, color="0.6", lw=0.6, ls=":")
        ax_r.plot(q, [x["greedy_ratio"] for x in r], color=VERMILION, ls="none", marker="o", ms=3.5,
                  mfc="white", label="greedy, simulation")
        qf = [x["d_over_s"] for x in r if "fluid_ratio" in x]
        ax_r.plot(qf, [x["fluid_ratio"] for x in r if "fluid_ratio" in x], color=BLACK, ls="none",
                  marker="x", ms=3.5, label="greedy, fluid cycle")
        ax_r.plot(q, [x["flow_ratio"] for x in r], color=BLUE, ls="none", marker="s", ms=3,
                  label="flow control ⌊M/W⌋, simulation")
        ax_r.set_xscale("log")
        ax_r.set_ylim(0.4, 1.05)
        ax_r.set_xlabel("d / s (decode over prompt length)")
        ax_r.set_ylabel("throughput / eviction-free d·M/W")
        ax_r.set_title(f"s = {results['provenance']['config']['prompt']}, "
                       f"M = {results['provenance']['config']['memory_tokens']:,} tokens", fontsize=7)
        ax_r.legend(loc="lower left")
    return fig
