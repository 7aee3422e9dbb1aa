r"""F1 — two-class rate region: necessary polytope, Algorithm 1 staircase, flow-control ε-regions.

The experiment (:func:`experiment`): two classes of Dong & Cao §4.1 (known lengths (10, 20),
(10, 40); M = 16 492): the necessary polytope :math:`\lambda_1 w_1 + \lambda_2 w_2 \le M`, the
Algorithm 1 staircase (maximal integer budgets, :func:`numerics.analysis.regions.alg1_staircase`),
its randomised-budget boundary, and the flow-control ε-boundaries :math:`r^*_\pi(\varepsilon)\,\pi`
(:func:`numerics.analysis.regions.flow_region_boundary`).

The figure (:func:`plot`, from ``results/f1_region.json``): the set λ_1 w_1 + λ_2 w_2 ≤ M that
every stable scheduler obeys (Prop. 3.2), the union of boxes [0, b_1) × [0, b_2) over integer
budgets with b_1 w_1 + b_2 w_2 ≤ M (Algorithm 1, known lengths) and the boundaries {r*_π(ε) π} of
flow control with one randomised budget (Algorithm 2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from paper_figs.style import BLACK, BLUE, GREEN, SKY, VERMILION, label, new_figure, plotting

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["SEED_OFFSET", "config", "experiment", "plot"]

#: The experiment's seed is ``paper_figs.io.BASE_SEED + SEED_OFFSET``.
SEED_OFFSET = 1


def config(quick: bool) -> dict:
    """The experiment's parameters (JSON-able); ``quick``: the small run of CI."""
    return {
        "prompts": [10, 10],
        "decodes": [20, 40],
        "memory_tokens": 16492,
        "epsilons": [1e-2, 1e-4, 1e-6],
        "budget": "randomized",
        "directions": 9 if quick else 61,
    }


def experiment(cfg: dict, seed: int) -> dict:
    """Two-class regions: necessary polytope, Algorithm 1 staircase (integer and randomised budgets),
    flow ε-boundaries."""
    from numerics.analysis.regions import (
        alg1_randomized_boundary,
        alg1_staircase,
        flow_region_boundary,
        necessary_vertices,
    )
    from numerics.model.specs import parse_law
    from numerics.model.workload import IndependentLengths, RequestClass, Workload

    classes = tuple(
        RequestClass(IndependentLengths(parse_law(str(s)), parse_law(str(o))), None, f"({s}, {o})")
        for s, o in zip(cfg["prompts"], cfg["decodes"], strict=True)
    )
    wl = Workload(classes, "two-class")
    w = wl.mean_memory_times
    m = cfg["memory_tokens"]
    return {
        "classes": [c.name for c in classes],
        "mean_memory_times": w,
        "necessary_vertices": necessary_vertices(w, m),
        "alg1_staircase": alg1_staircase(w, m),
        "alg1_randomized": {
            "epsilon": min(cfg["epsilons"]),
            "points": alg1_randomized_boundary(wl, m, min(cfg["epsilons"]), cfg["directions"]),
        },
        "flow_boundaries": [
            {"epsilon": eps, "points": flow_region_boundary(wl, m, eps, cfg["directions"], cfg["budget"])}
            for eps in cfg["epsilons"]
        ],
    }


_EPS_STYLE = ((BLUE, "-"), (GREEN, "--"), (VERMILION, "-."), (BLACK, ":"))


def plot(results: dict) -> Figure:
    """The figure from a loaded results file (a pure function of ``results``)."""
    d = results["data"]
    m = results["provenance"]["config"]["memory_tokens"]
    with plotting():
        fig, axes = new_figure("column", 2.7)
        ax = axes[0, 0]
        v = np.asarray(d["necessary_vertices"], dtype=float)
        ax.fill(v[:, 0], v[:, 1], color=SKY, alpha=0.3, lw=0, label="necessary: Σ λ_k w_k ≤ M")
        ax.plot(np.append(v[1:, 0], v[1, 0]), np.append(v[1:, 1], v[1, 1]), color=SKY, lw=0.8)
        st = np.asarray(d["alg1_staircase"], dtype=float)
        # union of boxes [0, b1) × [0, b2(b1)): on [b1 − 1, b1) the height is b2(b1)
        x = np.concatenate([[0.0], st[1:, 0]])
        y = st[1:, 1] if st.shape[0] > 1 else st[:, 1]
        ax.step(x, np.append(y, 0.0), where="post", color=BLACK, lw=0.9,
                label="Algorithm 1 (integer budgets b)")
        if "alg1_randomized" in d:
            rb = d["alg1_randomized"]
            p = np.asarray(rb["points"], dtype=float)
            ax.plot(p[:, 0], p[:, 1], color=BLACK, ls=":", lw=1.1,
                    label=f"Algorithm 1, randomised b, ε = {rb['epsilon']:.0e}".replace("e-0", "e-"))
        for (color, ls), fb in zip(_EPS_STYLE, d["flow_boundaries"], strict=False):
            p = np.asarray(fb["points"], dtype=float)
            ax.plot(p[:, 0], p[:, 1], color=color, ls=ls,
                    label=f"flow control, ε = {fb['epsilon']:.0e}".replace("e-0", "e-"))
        a, b = d["classes"]
        w1, w2 = d["mean_memory_times"]
        ax.set_xlabel(label(f"λ₁, class (l, o) = {a}", "rate"))
        ax.set_ylabel(label(f"λ₂, class {b}", "rate"))
        ax.set_xlim(0, 1.05 * v[1, 0])
        ax.set_ylim(0, 1.25 * v[2, 1])
        ax.set_title(f"M = {m:,} tokens, w = ({w1:g}, {w2:g}) token·slots")
        ax.legend(loc="upper right")
    return fig
