"""``flowstab region``: the admissible arrival-rate regions of a two-class workload.

::

    flowstab region  WORKLOAD [--memory M] [--eps 1e-6] [--directions 17] [--json] [--plot FILE.png]

Prints (or plots) the necessary polytope Σ_k λ_k E[W_k] ≤ M, which no scheduler can leave, the
boundary of the rates flow control serves with overflow probability ≤ ε, and for known
(deterministic) lengths the Algorithm 1 staircase and its randomised-budget ε-boundary
(:mod:`numerics.analysis.regions`).
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from flowstab.cli._args import (
    add_eps_arg,
    add_memory_arg,
    add_overwrite_arg,
    add_workload_args,
    memory_of,
    positive_int,
    resolve_workload,
)

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``region`` subcommand to the argparse sub-parsers ``sub``."""
    p = sub.add_parser("region", help="two-class admissible rate regions")
    add_workload_args(p)
    add_memory_arg(p)
    add_eps_arg(p)
    p.add_argument("--directions", type=positive_int, default=17,
                   help="class mixes to start the flow-control boundary from (default 17; more are "
                   "added where straight segments would overstate the region by over 1 %%)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--plot", metavar="FILE.png", help="save the regions as a figure")
    add_overwrite_arg(p)
    p.set_defaults(func=_cmd_region)


def _cmd_region(args: argparse.Namespace) -> int:
    from flowstab.plotting import check_plot_path
    from numerics.analysis.regions import (
        alg1_randomized_boundary,
        alg1_staircase,
        flow_region_boundary,
        necessary_vertices,
    )
    from numerics.errors import WorkloadError

    workload = resolve_workload(args)
    if len(workload.classes) != 2:
        raise WorkloadError(
            f"region needs a two-class workload (a .toml file with two [[class]] tables); "
            f"{workload.name!r} has {len(workload.classes)}"
        )
    m = memory_of(args, workload)
    plot_path = check_plot_path(args.plot, overwrite=args.overwrite) if args.plot else None
    workload.require_finite_memory_time()
    w = workload.mean_memory_times
    known = all(c.lengths.prompt_law.values.size == 1 and c.lengths.decode_law.values.size == 1
                for c in workload.classes)
    out = {
        "classes": [c.name for c in workload.classes],
        "memory_tokens": m,
        "epsilon": args.eps,
        "mean_memory_times": w.tolist(),
        "necessary_vertices": necessary_vertices(w, m).tolist(),
        "flow_boundary": flow_region_boundary(workload, m, args.eps, args.directions).tolist(),
        "alg1_staircase": alg1_staircase(w, m).tolist() if known else None,
        "alg1_randomized_boundary": (
            alg1_randomized_boundary(workload, m, args.eps, args.directions).tolist()
            if known else None
        ),
    }
    if plot_path is not None:
        _plot_region(out, plot_path)
    if args.json:
        print(json.dumps(out))
        return 0
    a, b = out["classes"]
    print(f"flowstab region — classes {a!r}, {b!r}; M = {m:,} tokens")
    print(f"  E[W] = {w[0]:,.1f}, {w[1]:,.1f} token-slots")
    print(f"  necessary polytope: λ_{a} E[W_{a}] + λ_{b} E[W_{b}] ≤ M "
          f"(axis intercepts {m / w[0]:.4g}, {m / w[1]:.4g} requests/slot)")
    print(f"  flow control, ε = {args.eps:g} (randomized budget), boundary points (λ_{a}, λ_{b}):")
    for x, y in out["flow_boundary"]:
        print(f"    ({x:.4g}, {y:.4g})  load {(x * w[0] + y * w[1]) / m:.1%}")
    if known:
        print(f"  Algorithm 1 (known lengths): {len(out['alg1_staircase'])} maximal budget pairs, "
              "λ admissible iff λ < b componentwise for one of them")
        print(f"  Algorithm 1 with randomised budgets, ε = {args.eps:g}, boundary points:")
        for x, y in out["alg1_randomized_boundary"]:
            print(f"    ({x:.4g}, {y:.4g})  load {(x * w[0] + y * w[1]) / m:.1%}")
    else:
        print("  Algorithm 1 region not shown: it needs known (deterministic) lengths per class")
    if plot_path is not None:
        print(f"figure saved to {plot_path}")
    return 0


def _plot_region(out: dict[str, Any], path: str | os.PathLike) -> None:
    """Necessary polytope, flow ε-boundary and (when defined) the Algorithm 1 staircase."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from flowstab.plotting import OKABE_ITO, savefig

    blue, vermilion, green, _, _, sky = OKABE_ITO[:6]
    fig = Figure(figsize=(5.5, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    v = np.asarray(out["necessary_vertices"])
    ax.fill(v[:, 0], v[:, 1], color=sky, alpha=0.25, label="necessary (any scheduler)")
    fb = np.asarray(out["flow_boundary"])
    ax.plot(fb[:, 0], fb[:, 1], "-o", color=blue, ms=3, label=f"flow control, ε = {out['epsilon']:g}")
    if out["alg1_staircase"] is not None:
        # union of boxes [0, b1) × [0, b2(b1)): on [b1 − 1, b1) the height is b2(b1)
        st = np.asarray(out["alg1_staircase"], dtype=float)
        ax.step(st[:, 0], np.append(st[1:, 1], 0.0), where="post", color=vermilion,
                label="Algorithm 1 (integer budgets)")
    if out.get("alg1_randomized_boundary") is not None:
        rb = np.asarray(out["alg1_randomized_boundary"])
        ax.plot(rb[:, 0], rb[:, 1], "--", color=green,
                label=f"Algorithm 1, randomised budgets, ε = {out['epsilon']:g}")
    a, b = out["classes"]
    ax.set_xlabel(f"λ_{a} (requests/slot)")
    ax.set_ylabel(f"λ_{b} (requests/slot)")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.set_title(f"Admissible rates, M = {out['memory_tokens']:,} tokens")
    ax.legend(loc="upper right", fontsize=8)
    savefig(fig, path, dpi=150)
