"""F2 — overflow probability P(U > M) of saturated flow control against the slack Δ = M − r E[W].

The experiment (:func:`experiment`): the saturated flow-control memory U at a fixed rate r, and
P(U > M) as M varies, i.e. against the slack Δ = M − r E[W]: exact
(:func:`numerics.analysis.exact.exact_tail`), the bounds of
:class:`numerics.analysis.bounds.FlowTails`, the Gaussian approximation, and the empirical
frequency of U > M in saturated simulations (M huge, arrivals faster than r, so the waiting queue
never empties and nothing is evicted).

The figure (:func:`plot`, from ``results/f2_tails.json``): per decode law, the exact tail, the
Chernoff, Bernstein, Hoeffding and Cantelli bounds, the Gaussian approximation (not a bound) and
the frequency of U > M in saturated simulations (points; bars span the replications). The y-axis
is logarithmic; the Pareto panel is log–log, where a polynomial tail P ∝ Δ^{-(α-1)} is a straight
line.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from paper_figs.io import as_floats
from paper_figs.style import BOUND_STYLE, figure_legend, label, new_figure, plotting

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["SEED_OFFSET", "config", "experiment", "plot"]

#: The experiment's seed is ``paper_figs.io.BASE_SEED + SEED_OFFSET``.
SEED_OFFSET = 2
#: An exact tail is plotted only when its FFT grid converged to this relative change and it is a
#: probability (log ≤ 0); numerics.analysis.exact's own default target is 1e-8, 1e-6 leaves room for
#: rounding on the deepest tails.
EXACT_RTOL = 1e-6


def config(quick: bool) -> dict:
    """The experiment's parameters (JSON-able); ``quick``: the small run of CI."""
    return {
        "budget": "deterministic",
        "laws": [
            {"name": "geometric", "prompt": "20", "decode": "geom:mean=20,max=200", "rate": 16,
             "z_max": 8.0, "log_slack": False},
            {"name": "uniform", "prompt": "20", "decode": "uniform:1,100", "rate": 20,
             "z_max": 8.0, "log_slack": False},
            # E[O²] < ∞ = E[O³] before the clip: the bulk is narrow (sd ≈ 90 tokens) and a single
            # long request carries the tail, P(U > M) ≈ r Σ_{a ≥ Δ} P(O > a) ∝ Δ^{-(α-1)}, until
            # Δ reaches the clip
            {"name": "Pareto", "prompt": "20", "decode": "scipy:lomax(c=2.5,scale=5),max=3000",
             "rate": 1, "z_max": 60.0, "log_slack": True, "tail_index": 2.5},
        ],
        "exact_points": 5 if quick else 13,
        "bound_points": 40 if quick else 121,
        "sim_replications": 2 if quick else 8,
        "sim_slots": 30_000 if quick else 150_000,
        "sim_warmup": 2_000,
        "sim_overload": 1.05,  # arrivals at 1.05 r: the waiting queue never empties
        "min_exceedances": 10,  # simulated points shown only with at least this many slots U > M
    }


def _saturated_sim(wl, rate: float, cfg: dict, seed: int, grid: np.ndarray) -> dict:
    """Empirical P(U > m) on ``grid`` from saturated flow-control runs (one per replication)."""
    from numerics.sim import SimConfig, parse_policy, simulate
    from numerics.sim.replicate import replication_seeds

    policy = parse_policy(f"flow:rate={rate:g},budget={cfg['budget']}")
    exceed = np.zeros((cfg["sim_replications"], grid.size))
    slots = 0
    for i, s in enumerate(replication_seeds(seed, cfg["sim_replications"])):
        sc = SimConfig(wl, 10**11, policy, slots=cfg["sim_slots"], warmup=cfg["sim_warmup"],
                       arrival_rate=cfg["sim_overload"] * rate, arrivals="deterministic", seed=s)
        res = simulate(sc)
        u = res.timeseries.kv_tokens.to_numpy()[cfg["sim_warmup"]:]
        slots = u.size
        u = np.sort(u)
        exceed[i] = u.size - np.searchsorted(u, grid, side="right")  # #slots with U > m
    total = exceed.sum(axis=0)
    frac = exceed / slots
    return {
        "prob": total / (slots * exceed.shape[0]),
        "prob_low": frac.min(axis=0),
        "prob_high": frac.max(axis=0),
        "exceedances": total,
        "slots_per_replication": slots,
    }


def experiment(cfg: dict, seed: int) -> dict:
    """P(U > M) against the slack for three decode laws: exact, bounds, simulation."""
    from numerics.analysis.bounds import BOUNDS, FlowTails
    from numerics.analysis.exact import exact_tail
    from numerics.model.budget import BudgetLaw
    from numerics.model.specs import parse_law
    from numerics.model.workload import Workload

    out = []
    for k, law in enumerate(cfg["laws"]):
        wl = Workload.single(parse_law(law["prompt"]), parse_law(law["decode"]))
        r = law["rate"]
        mean = r * wl.mean_memory_time
        budget = BudgetLaw(cfg["budget"], r)
        sd = math.sqrt(FlowTails(wl, max(1, int(mean))).variance(budget))
        top = mean + law["z_max"] * sd
        if law["log_slack"]:
            grid = np.unique(np.round(mean + np.geomspace(0.5 * sd, top - mean, cfg["bound_points"]))
                             .astype(np.int64))
            exact_grid = np.unique(np.round(mean + np.geomspace(sd, top - mean, cfg["exact_points"]))
                                   .astype(np.int64))
        else:
            grid = np.unique(np.round(np.linspace(mean, top, cfg["bound_points"])).astype(np.int64))
            exact_grid = np.unique(np.round(np.linspace(mean + sd, top, cfg["exact_points"]))
                                   .astype(np.int64))
        bounds: dict[str, list] = {name: [] for name in BOUNDS}
        for m in grid:
            values = FlowTails(wl, int(m)).bounds(r, cfg["budget"])
            for name in BOUNDS:
                bounds[name].append(values[name])
        exact = [exact_tail(wl, int(m), r, cfg["budget"]) for m in exact_grid]
        # keep only converged answers that are probabilities (see EXACT_RTOL)
        ok = [e.log_prob <= 0 and e.relative_change <= EXACT_RTOL for e in exact]
        sim = _saturated_sim(wl, r, cfg, seed + k, grid)
        out.append({
            "name": law["name"],
            "prompt": law["prompt"],
            "decode": law["decode"],
            "rate_per_slot": r,
            "mean_memory_time": wl.mean_memory_time,
            "mean_memory": mean,
            "sd_memory": sd,
            "memory_grid": grid,
            "slack": grid - mean,
            "bounds": bounds,
            "log_slack": law["log_slack"],
            "tail_index": law.get("tail_index"),
            "exact_memory": exact_grid,
            "exact_slack": exact_grid - mean,
            "exact_log_prob": [e.log_prob for e in exact],
            "exact_relative_change": [e.relative_change for e in exact],
            "exact_valid": ok,
            "simulation": sim,
        })
    return {"laws": out}


_ORDER = ("hoeffding", "bernstein", "cantelli", "chernoff", "gaussian")
_FLOOR = 1e-16  # nothing below is drawn: the y-axis ends here


def plot(results: dict) -> Figure:
    """The figure from a loaded results file (a pure function of ``results``)."""
    laws = results["data"]["laws"]
    min_exc = results["provenance"]["config"]["min_exceedances"]
    with plotting():
        fig, axes = new_figure("page", 2.6, 1, len(laws))
        for ax, law in zip(axes[0], laws, strict=True):
            slack = np.asarray(law["slack"], dtype=float)
            for name in _ORDER:
                vals = as_floats(law["bounds"][name])
                if np.all(np.isnan(vals)) or np.nanmin(vals) >= 1:
                    ax.plot([], [], color=BOUND_STYLE[name]["color"], ls=BOUND_STYLE[name]["ls"],
                            label=BOUND_STYLE[name]["label"] + " (= 1 or n/a)")
                    continue
                vals[vals < _FLOOR] = np.nan
                st = BOUND_STYLE[name]
                ax.plot(slack, vals, color=st["color"], ls=st["ls"], label=st["label"])
            ok = np.asarray(law["exact_valid"], dtype=bool)
            ex_s = np.asarray(law["exact_slack"], dtype=float)[ok]
            ex_p = np.exp(np.asarray(law["exact_log_prob"], dtype=float)[ok])
            keep = ex_p >= _FLOOR
            st = BOUND_STYLE["exact"]
            ax.plot(ex_s[keep], ex_p[keep], color=st["color"], ls=st["ls"], marker="o", ms=2.5,
                    label=st["label"] if ok.any() else "exact (did not converge)")
            sim = law["simulation"]
            exc = np.asarray(sim["exceedances"], dtype=float)
            show = (exc >= min_exc) & (slack > 0)
            p = np.asarray(sim["prob"], dtype=float)[show]
            lo = np.asarray(sim["prob_low"], dtype=float)[show]
            hi = np.asarray(sim["prob_high"], dtype=float)[show]
            idx = np.unique(np.linspace(0, p.size - 1, min(p.size, 14)).astype(int)) if p.size else []
            st = BOUND_STYLE["simulation"]
            # a lower bound of 0 cannot be drawn on a log axis: no lower bar there (it would run
            # down to the axis floor and read as a measured probability of 10^-16)
            lo = np.where(lo > 0, lo, p)
            ax.errorbar(slack[show][idx], p[idx], yerr=[p[idx] - lo[idx], hi[idx] - p[idx]],
                        color=st["color"], ls="none", marker=st["marker"], ms=3, mfc="white",
                        elinewidth=0.6, capsize=0, label=st["label"], zorder=5)
            ax.set_yscale("log")
            ax.set_ylim(_FLOOR, 2)
            if law["log_slack"]:
                ax.set_xscale("log")
                ax.set_xlim(left=max(1.0, 0.5 * law["sd_memory"]))
                alpha = law.get("tail_index")
                if alpha and ok.any():
                    x0, y0 = ex_s[keep][0], ex_p[keep][0]
                    xr = np.geomspace(x0, slack.max(), 20)
                    (ref,) = ax.plot(xr, y0 * (xr / x0) ** (1 - alpha), color="0.5", lw=0.7,
                                     label=f"∝ Δ^−{alpha - 1:g} (one long request)")
                    # this panel's own line gets its own legend (the figure's lists the others)
                    ax.legend(handles=[ref], loc="lower left", fontsize=5.5, frameon=False)
                ax.set_xlabel(label("slack Δ, log scale", "memory"))
            else:
                ax.set_xlim(left=0)
                ax.set_xlabel(label("slack Δ = M − r E[W]", "memory"))
            decode = law["decode"].replace("scipy:", "").replace(",max=", ", max ")
            if len(decode) > 28:  # keep the title inside the panel
                decode = decode.replace(", max", "\nclipped at")
            ax.set_title(f"{law['name']} decode law, r = {law['rate_per_slot']:g}\n"
                         f"S = {law['prompt']}, O ~ {decode}", fontsize=6.5)
        axes[0, 0].set_ylabel("P(U > M) per slot")
        figure_legend(fig, axes[0, 0], 4)
    return fig
