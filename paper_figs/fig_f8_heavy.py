"""F8 — heavy tails: λ_max = M / E[W] against the max_tokens clip L for Pareto decode tails.

Plots ``results/f8_heavy.json`` (:func:`paper_figs.experiments.exp_f8_heavy`). For a Lomax tail
P(O > x) = (1 + x/σ)^{-α}, E[min(O, L)²] ≍ L^{2-α} when α < 2, so λ_max(L) ≍ L^{-(2-α)} → 0: no
rate is stable without a clip; at α = 2 the decay is 1/log L; for α > 2 λ_max levels off. A
geometric (light-tailed) decode law with a comparable mean is the reference.
"""

from __future__ import annotations

import numpy as np

from paper_figs.style import BLACK, BLUE, GREEN, PURPLE, VERMILION, label, new_figure, plotting

__all__ = ["plot"]

_STYLE = ((VERMILION, "-", "o"), (BLUE, "--", "s"), (GREEN, "-.", "^"), (PURPLE, ":", "D"))


def plot(results: dict):
    """The figure from a loaded results file (a pure function of ``results``)."""
    d = results["data"]
    cfg = results["provenance"]["config"]
    clips = np.asarray(d["clips"], dtype=float)
    with plotting():
        fig, axes = new_figure("column", 2.6)
        ax = axes[0, 0]
        for (color, ls, marker), c in zip(_STYLE, d["curves"], strict=False):
            y = np.asarray(c["lambda_max"], dtype=float)
            ax.plot(clips, y, color=color, ls=ls, marker=marker, ms=2.2, label=f"Pareto α = {c['alpha']:g}")
            if c["alpha"] < 2:  # the asymptote L^{-(2-α)}, anchored at the largest clip
                ref = y[-1] * (clips / clips[-1]) ** (-(2 - c["alpha"]))
                ax.plot(clips, ref, color=color, lw=0.6, ls=(0, (1, 2)),
                        label=f"∝ L^−{2 - c['alpha']:g}")
        ax.plot(clips, d["light_tail"]["lambda_max"], color=BLACK, lw=0.9,
                label=f"geometric, {d['light_tail']['decode']}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(label("max_tokens clip L", "memory"))
        ax.set_ylabel(label("λ_max = M / E[W]", "rate"))
        ax.set_title(f"S = {cfg['prompt']}, O ~ Lomax(α, σ = {cfg['scale']:g}) clipped at L; "
                     f"M = {cfg['memory_tokens']:,}", fontsize=6.5)
        ax.legend(loc="lower left", fontsize=6)
    return fig
