"""F7 — greedy admission vs flow control in saturation (one request type: prompt s, decode d).

The experiment (:func:`experiment`): greedy admission with LIFO eviction against flow control in
saturation, one homogeneous request type (s, d): the fluid cycle
(:func:`numerics.chains.fluid.greedy_fluid_cycle`) against simulation, and the throughput of each
policy relative to the eviction-free equilibrium d·M/W as d/s grows, against the closed form
(s + (d + 1)/2)/(s + d) (:func:`numerics.chains.fluid.greedy_throughput_ratio`).

The figure (:func:`plot`, from ``results/f7_greedy.json``). Left: the active requests over time
under greedy admission with LIFO eviction (simulation) against the fluid limit cycle — a
synchronised cohort that fills the cache, is cut back by evictions every slot and completes
together every d slots — and flow control at the eviction-free budget ⌊M/W⌋. Right: throughput
relative to the eviction-free equilibrium d·M/W as d/s grows: greedy (simulation, fluid) against
the closed form (s + (d+1)/2)/(s + d) → 1/2, and flow control (simulation).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from paper_figs.style import BLACK, BLUE, VERMILION, label, new_figure, plotting

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["SEED_OFFSET", "config", "experiment", "plot"]

#: The experiment's seed is ``paper_figs.io.BASE_SEED + SEED_OFFSET``.
SEED_OFFSET = 7


def config(quick: bool) -> dict:
    """The experiment's parameters (JSON-able); ``quick``: the small run of CI."""
    return {
        "cycle": {"prompt": 20, "decode": 100 if quick else 200, "memory_tokens": 20_000,
                  "periods": 3},
        "prompt": 20,
        "ratios_d_over_s": [0.25, 1, 4, 16] if quick else [0.25, 0.5, 1, 2, 4, 8, 16],
        "memory_tokens": 1_000_000,
        "periods": 4 if quick else 8,  # simulated horizon, in greedy cycles (d slots each)
        "fluid_max_decode": 100 if quick else 320,  # the exact fluid iteration costs ~d² operations
        "closed_form_max_d_over_s": 128,
        "policy": "greedy:watermark=0",
    }


def experiment(cfg: dict, seed: int) -> dict:
    """Greedy + LIFO vs flow control in saturation: fluid cycle vs simulation, and the ratio."""
    from numerics.analysis.conditions import memory_time
    from numerics.chains.fluid import greedy_fluid_cycle, greedy_throughput_ratio
    from numerics.model.specs import parse_law
    from numerics.model.workload import Workload
    from numerics.sim import SimConfig, parse_policy, simulate

    def saturated(s: int, d: int, m: int, spec: str, slots: int):
        """A run whose waiting queue never empties: deterministic arrivals at twice the rate at
        which either policy can admit (greedy: a cohort M/(s + 1) per cycle of d slots)."""
        wl = Workload.single(parse_law(str(s)), parse_law(str(d)))
        rate = 2.0 * max(m / memory_time(s, d), m / ((s + 1) * d)) + 1.0
        return simulate(SimConfig(wl, m, parse_policy(spec), slots=slots, warmup=slots // 4,
                                  arrival_rate=rate, arrivals="deterministic", seed=seed))

    c = cfg["cycle"]
    s, d, m = c["prompt"], c["decode"], c["memory_tokens"]
    slots = c["periods"] * d
    greedy = saturated(s, d, m, cfg["policy"], slots)
    b_flow = m // memory_time(s, d)  # eviction-free deterministic budget ⌊M/W⌋
    flow = saturated(s, d, m, f"flow:rate={b_flow},budget=deterministic", slots)
    fc = greedy_fluid_cycle(s, d, m)
    cycle = {
        "prompt": s, "decode": d, "memory_tokens": m, "flow_budget": b_flow,
        "slot": greedy.timeseries.slot.to_numpy(),
        "kv_tokens": greedy.timeseries.kv_tokens.to_numpy(),
        "active": greedy.timeseries.active.to_numpy(),
        "flow_kv_tokens": flow.timeseries.kv_tokens.to_numpy(),
        "flow_active": flow.timeseries.active.to_numpy(),
        "fluid": fc.to_dict(),
    }
    ratios = []
    s, m = cfg["prompt"], cfg["memory_tokens"]
    for q in cfg["ratios_d_over_s"]:
        d = max(1, round(q * s))
        w = memory_time(s, d)
        slots = max(60, cfg["periods"] * d)
        g = saturated(s, d, m, cfg["policy"], slots)
        f = saturated(s, d, m, f"flow:rate={m // w},budget=deterministic", slots)
        eq = d * m / w  # tokens per slot of the eviction-free equilibrium (the fluid optimum)
        item = {
            "decode": d,
            "d_over_s": d / s,
            "equilibrium_tokens_per_slot": eq,
            "greedy_ratio": g.summary["throughput_tokens_per_slot"] / eq,
            "flow_ratio": f.summary["throughput_tokens_per_slot"] / eq,
            "greedy_evictions": g.summary["evictions"],
            "flow_evictions": f.summary["evictions"],
            "window_slots": slots - slots // 4,
        }
        if d <= cfg["fluid_max_decode"]:
            item["fluid_ratio"] = float(greedy_fluid_cycle(s, d, m).throughput_ratio)
        ratios.append(item)
    q = np.geomspace(min(cfg["ratios_d_over_s"]), cfg["closed_form_max_d_over_s"], 200)
    dd = np.maximum(1, np.round(q * s)).astype(int)
    closed = {"d_over_s": dd / s, "ratio": [float(greedy_throughput_ratio(s, int(x))) for x in dd]}
    return {"cycle": cycle, "ratios": ratios, "closed_form": closed}


def plot(results: dict) -> Figure:
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
