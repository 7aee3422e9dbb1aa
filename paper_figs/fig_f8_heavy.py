"""F8 — heavy tails: λ_max = M / E[W] against the max_tokens clip L for Pareto decode tails.

The experiment (:func:`experiment`): λ_max against the clip L for Pareto (Lomax) decode tails
P(O > x) = (1 + x/σ)^{-α}, and for a geometric (light-tailed) decode law as the reference.

The figure (:func:`plot`, from ``results/f8_heavy.json``). For a Lomax tail,
E[min(O, L)²] ≍ L^{2-α} when α < 2, so λ_max(L) ≍ L^{-(2-α)} → 0: no rate is stable without a
clip; at α = 2 the decay is 1/log L; for α > 2 λ_max levels off. A geometric (light-tailed) decode
law with a comparable mean is the reference.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from paper_figs.lineup import AZURE_MEMORY_TOKENS
from paper_figs.style import BLACK, BLUE, GREEN, PURPLE, VERMILION, label, new_figure, plotting

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["SEED_OFFSET", "config", "experiment", "plot"]

#: The experiment's seed is ``paper_figs.io.BASE_SEED + SEED_OFFSET``.
SEED_OFFSET = 8


def config(quick: bool) -> dict:
    """The experiment's parameters (JSON-able); ``quick``: the small run of CI."""
    clips = np.unique(np.round(np.logspace(2, 6 if not quick else 5, 9 if quick else 25)).astype(int))
    return {
        "prompt": 100,
        "alphas": [1.5, 2.0, 2.5, 3.0],
        "scale": 100,
        "clips": clips.tolist(),
        "memory_tokens": AZURE_MEMORY_TOKENS,
        "light_tail": "geom:mean=200",
    }


def experiment(cfg: dict, seed: int) -> dict:
    """λ_max against the max_tokens clip for Lomax (Pareto II) decode tails."""
    from numerics.analysis.conditions import lambda_max
    from numerics.model.specs import parse_law
    from numerics.model.workload import Workload

    prompt = parse_law(str(cfg["prompt"]))
    clips = cfg["clips"]
    top = max(clips)
    curves = []
    for alpha in cfg["alphas"]:
        law = parse_law(f"scipy:lomax(c={alpha:g},scale={cfg['scale']:g}),max={top}")
        lm = []
        for clip in clips:
            clipped = law.clip(int(clip)) if clip < top else law
            lm.append(lambda_max(Workload.single(prompt, clipped), cfg["memory_tokens"]))
        curves.append({"alpha": alpha, "lambda_max": lm})
    light = parse_law(cfg["light_tail"])
    light_lm = [lambda_max(Workload.single(prompt, light.clip(int(c)) if c < light.max_value else light),
                           cfg["memory_tokens"]) for c in clips]
    return {"clips": clips, "curves": curves,
            "light_tail": {"decode": cfg["light_tail"], "lambda_max": light_lm}}


_STYLE = ((VERMILION, "-", "o"), (BLUE, "--", "s"), (GREEN, "-.", "^"), (PURPLE, ":", "D"))


def plot(results: dict) -> Figure:
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
