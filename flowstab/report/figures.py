r"""The report's figures: matplotlib, rendered to PNG data URIs (no files, no network).

* :func:`laws_figure` — the prompt- and decode-length laws of each class (probability mass
  functions, means marked);
* :func:`bounds_figure` — the overflow bounds on :math:`P(U > M)` of saturated flow control as
  functions of the activation rate r, with the target ε, the chosen rate r*(ε) and
  :math:`\lambda_{\max} = M/E[W]` marked;
* :func:`compare_figure` — one simulation per policy: KV-cache utilisation over time and the
  latency CDF (as ``flowstab compare --plot``).

Colours are the Okabe–Ito palette (:data:`flowstab.plotting.OKABE_ITO`), distinguishable under the
common colour-vision deficiencies; lines also differ in style where several share an axis.
matplotlib is imported inside the functions (the Agg canvas; no display needed).
"""

from __future__ import annotations

import base64
import io

from flowstab.plotting import LINE_STYLES, OKABE_ITO

__all__ = ["bounds_figure", "compare_figure", "figure_data_uri", "laws_figure"]

#: Resolution of the embedded PNGs: sharp on high-density screens at the report's 1 000-px width.
DPI = 144


def _new_figure(width_in: float, height_in: float, ncols: int = 1):
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context({"font.size": 9.5}):
        fig = Figure(figsize=(width_in, height_in), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(1, ncols)
    return fig, axes


def _style(ax) -> None:
    ax.grid(True, color="0.9", lw=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def figure_data_uri(fig, dpi: int = DPI) -> str:
    """Render a matplotlib figure to a ``data:image/png;base64,...`` URI."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def laws_figure(workload) -> str:
    """PMFs of the prompt and decode lengths per class (a PNG data URI)."""
    import numpy as np

    colors = OKABE_ITO
    fig, (ax_s, ax_o) = _new_figure(9.0, 3.1, 2)
    for i, c in enumerate(workload.classes):
        color, ls = colors[i % len(colors)], LINE_STYLES[i % len(LINE_STYLES)]
        label = c.name if len(workload.classes) > 1 else None
        for ax, law in ((ax_s, c.lengths.prompt_law), (ax_o, c.lengths.decode_law)):
            x = np.asarray(law.values, dtype=float)
            p = np.asarray(law.probs, dtype=float)
            if x.size == 1:
                ax.vlines(x, 0, p, color=color, lw=2, label=label)
            else:
                ax.plot(x, p, color=color, ls=ls, lw=1.2, label=label)
                ax.fill_between(x, p, color=color, alpha=0.12, lw=0)
            ax.axvline(law.mean, color=color, ls=":", lw=1)
    for ax, what in ((ax_s, "prompt length S"), (ax_o, "decode length O")):
        _style(ax)
        ax.set_xlabel(f"{what} (tokens)")
        ax.set_ylabel("probability")
        ax.set_ylim(bottom=0)
        ax.set_xlim(left=0)
        ax.set_title(f"{what[0].upper()}{what[1:]} (dotted: mean)")
        if len(workload.classes) > 1:
            ax.legend(fontsize="small", frameon=False)
    return figure_data_uri(fig)


def bounds_figure(tails, plan, points: int = 60) -> str:
    """Overflow bounds vs activation rate, with ε, r*(ε) and λ_max marked (a PNG data URI).

    Parameters
    ----------
    tails : numerics.analysis.bounds.FlowTails
        For the plan's workload and memory.
    plan : numerics.analysis.plan.Plan
    points : int
        Rates evaluated in (0, λ_max) (a third of them for the Chernoff bound, which is minimised
        numerically at each rate).
    """
    import numpy as np

    from numerics.analysis.bounds import BOUNDS, BoundNotApplicable

    colors = OKABE_ITO
    fig, ax = _new_figure(9.0, 3.5)
    lam = plan.lambda_max
    floor = 1e-300
    for i, name in enumerate(BOUNDS):
        # Chernoff minimises over θ at every rate (~0.01–0.3 s each for 10^3–10^5 ages): fewer points
        n = max(2, points // 3) if name == "chernoff" else points
        rates = np.linspace(0.02, 0.999, n) * lam
        try:
            values = np.array([tails.bound(name, float(r), plan.budget) for r in rates])
        except BoundNotApplicable:
            continue
        approx = name == "gaussian"
        label = f"{name} (approximation, not a bound)" if approx else name
        if name == plan.bound:
            label += " — used for r*"
        ax.semilogy(rates, np.maximum(values, floor), color=colors[i % len(colors)],
                    ls=":" if approx else LINE_STYLES[i % len(LINE_STYLES)],
                    lw=2.2 if name == plan.bound else 1.3, label=label)
    box = {"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.85}
    ax.axhline(plan.epsilon, color="0.35", lw=0.9, ls="--")
    ax.annotate(f"ε = {plan.epsilon:g}", (0.01, plan.epsilon), xycoords=("axes fraction", "data"),
                textcoords="offset points", xytext=(0, 3), fontsize="small", color="0.3", bbox=box)
    if plan.flow_rate > 0:
        ax.axvline(plan.flow_rate, color="0.2", lw=1.0)
        ax.annotate(f"r*(ε) = {plan.flow_rate:.4g}", (plan.flow_rate, 0.04),
                    xycoords=("data", "axes fraction"), textcoords="offset points", xytext=(4, 0),
                    fontsize="small", color="0.1", bbox=box)
    ax.axvline(lam, color="0.2", lw=1.0, ls="-.")
    ax.annotate(f"λ_max = {lam:.4g}", (lam, 0.04), xycoords=("data", "axes fraction"),
                textcoords="offset points", xytext=(-4, 0), ha="right", fontsize="small", color="0.1",
                bbox=box)
    low = max(min(plan.epsilon * 1e-3, 1e-12), floor)
    ax.set_ylim(low, 2.0)
    ax.set_xlim(0, lam * 1.03)
    _style(ax)
    ax.set_xlabel("mean activation rate r (requests/slot)")
    ax.set_ylabel("bound on P(U > M) per slot")
    ax.set_title(f"Overflow bounds of saturated flow control ({plan.budget} budget)")
    fig.legend(*ax.get_legend_handles_labels(), loc="outside right center", fontsize="small",
               frameon=False)
    return figure_data_uri(fig)


def compare_figure(results: list, title: str = "") -> str:
    """KV utilisation over time and latency CDFs, one line per policy (a PNG data URI).

    ``results`` is a list of ``(label, SimResult)`` on the same arrivals.
    """
    from flowstab.plotting import draw_policy_lines

    colors = OKABE_ITO
    fig, (ax_kv, ax_cdf) = _new_figure(9.0, 3.4, 2)
    draw_policy_lines(ax_kv, ax_cdf, results, colors, cdf_points=3000, lw_cdf=1.3)
    if results:
        cfg = results[0][1].config
        ax_kv.axhline(1.0, color="0.4", lw=0.8, ls=":")
        if cfg.warmup:
            ax_kv.axvspan(0, cfg.warmup, color="0.92", lw=0)
            ax_kv.annotate("warm-up", (cfg.warmup / 2, 0.97), xycoords=("data", "axes fraction"),
                           ha="center", va="top", fontsize="x-small", color="0.4")
    _style(ax_kv)
    _style(ax_cdf)
    ax_kv.set_title("KV-cache utilisation")
    ax_kv.set_ylim(0, 1.08)
    ax_kv.set_xlim(left=0)
    ax_cdf.set_ylabel("fraction of requests ≤ x")
    ax_cdf.set_title("Latency CDF (arrivals after warm-up)")
    handles, labels = ax_kv.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 5),
                   fontsize="small", frameon=False)
    if title:
        fig.suptitle(title, fontsize="medium")
    return figure_data_uri(fig)
