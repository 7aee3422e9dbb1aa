"""F2 — overflow probability P(U > M) of saturated flow control against the slack Δ = M − r E[W].

Plots ``results/f2_tails.json`` (:func:`paper_figs.experiments.exp_f2_tails`): per decode law,
the exact tail, the Chernoff, Bernstein, Hoeffding and Cantelli bounds, the Gaussian approximation
(not a bound) and the frequency of U > M in saturated simulations (points; bars span the
replications). The y-axis is logarithmic; the Pareto panel is log–log, where a polynomial tail
P ∝ Δ^{-(α-1)} is a straight line.
"""

from __future__ import annotations

import numpy as np

from paper_figs.style import BOUND_STYLE, label, new_figure, plotting

__all__ = ["plot"]

_ORDER = ("hoeffding", "bernstein", "cantelli", "chernoff", "gaussian")
_FLOOR = 1e-16  # nothing below is drawn: the y-axis ends here


def plot(results: dict):
    """The figure from a loaded results file (a pure function of ``results``)."""
    laws = results["data"]["laws"]
    min_exc = results["provenance"]["config"]["min_exceedances"]
    with plotting():
        fig, axes = new_figure("page", 2.6, 1, len(laws))
        for ax, law in zip(axes[0], laws, strict=True):
            slack = np.asarray(law["slack"], dtype=float)
            for name in _ORDER:
                vals = np.array([np.nan if v is None else v for v in law["bounds"][name]], dtype=float)
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
                    ax.plot(xr, y0 * (xr / x0) ** (1 - alpha), color="0.5", lw=0.7,
                            label=f"∝ Δ^−{alpha - 1:g} (one long request)")
            else:
                ax.set_xlim(left=0)
            ax.set_xlabel(label("slack Δ = M − r E[W]", "memory"))
            decode = law["decode"].replace("scipy:", "").replace(",max=", ", max ")
            if len(decode) > 28:  # keep the title inside the panel
                decode = decode.replace(", max", "\nclipped at")
            ax.set_title(f"{law['name']} decode law, r = {law['rate_per_slot']:g}\n"
                         f"S = {law['prompt']}, O ~ {decode}", fontsize=6.5)
        axes[0, 0].set_ylabel("P(U > M) per slot")
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncol=4)
    return fig
