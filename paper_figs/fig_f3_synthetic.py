"""F3 — Dong & Cao §4.1: Algorithm 1 with budgets b = (4, 4, 4) on three known-length classes.

The experiment (:func:`experiment`): three classes (10, 20), (10, 40), (10, 60), M = 16 492,
Algorithm 1 budgets b = (4, 4, 4), Poisson arrivals λ per class; per-class waiting queues and KV
usage per slot (the queues follow the Lindley recursion, the saturated KV equals Σ b_k w_k).

The figure (:func:`plot`, from ``results/f3_synthetic.json``): per-class waiting queues (top) and
the KV usage (bottom) per slot, at a stable rate (λ < b_k) and at the paper's overloaded λ = 5 per
class, with Σ b_k w_k and M marked. Saturated, the KV usage equals Σ b_k w_k exactly and never
exceeds M; the queues then grow like (λ − b_k) per slot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from paper_figs.io import ResultsError
from paper_figs.style import BLACK, BLUE, GREEN, VERMILION, label, new_figure, plotting

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["SEED_OFFSET", "config", "experiment", "plot"]

#: The experiment's seed is ``paper_figs.io.BASE_SEED + SEED_OFFSET``.
SEED_OFFSET = 3


def config(quick: bool) -> dict:
    """The experiment's parameters (JSON-able); ``quick``: the small run of CI."""
    return {
        "prompts": [10, 10, 10],
        "decodes": [20, 40, 60],
        "memory_tokens": 16492,
        "budgets": [4, 4, 4],
        "rates_per_class": [3.5, 5.0],
        "slots": 600 if quick else 2000,
    }


def experiment(cfg: dict, seed: int) -> dict:
    """Dong & Cao §4.1 under Algorithm 1: per-class queues and KV usage per slot."""
    from numerics.analysis.conditions import alg1_peak_memory, memory_time
    from numerics.model.specs import parse_law
    from numerics.model.workload import IndependentLengths, RequestClass, Workload
    from numerics.sim import SimConfig, parse_policy, simulate

    w = [memory_time(s, o) for s, o in zip(cfg["prompts"], cfg["decodes"], strict=True)]
    policy = parse_policy("budgets:" + ",".join(str(b) for b in cfg["budgets"]))
    runs = []
    for i, lam in enumerate(cfg["rates_per_class"]):
        classes = tuple(
            RequestClass(IndependentLengths(parse_law(str(s)), parse_law(str(o))), float(lam),
                         f"(l, o) = ({s}, {o})")
            for s, o in zip(cfg["prompts"], cfg["decodes"], strict=True)
        )
        wl = Workload(classes, "dong-cao-4.1")
        res = simulate(SimConfig(wl, cfg["memory_tokens"], policy, slots=cfg["slots"], seed=seed + i))
        rec = res.records
        t = np.arange(cfg["slots"])
        queues = []
        for k in range(len(classes)):
            rk = rec[rec.cls == k]
            arrived = np.searchsorted(np.sort(rk.arrival_slot.to_numpy()), t, side="right")
            fa = rk.first_activation_slot.to_numpy()
            started = np.searchsorted(np.sort(fa[fa >= 0]), t, side="right")
            queues.append(arrived - started)
        ts = res.timeseries
        if not np.array_equal(np.sum(queues, axis=0), ts.queue.to_numpy()):
            raise ResultsError("f3: per-class queues do not add up to the simulator's queue")
        runs.append({
            "rate_per_class": lam,
            "class_names": [c.name for c in classes],
            "queues": queues,
            "kv_tokens": ts.kv_tokens.to_numpy(),
            "evictions": int(res.summary["evictions"]),
        })
    return {
        "memory_times": w,
        "budget_memory": alg1_peak_memory(cfg["budgets"], w),
        "lambda_star": cfg["memory_tokens"] / sum(w),
        "runs": runs,
    }


_CLASS_STYLE = ((BLUE, "-"), (VERMILION, "--"), (GREEN, "-."))


def plot(results: dict) -> Figure:
    """The figure from a loaded results file (a pure function of ``results``)."""
    d = results["data"]
    cfg = results["provenance"]["config"]
    m = cfg["memory_tokens"]
    bw = d["budget_memory"]
    with plotting():
        fig, axes = new_figure("page", 3.6, 2, len(d["runs"]), sharex=True)
        for j, run in enumerate(d["runs"]):
            ax_q, ax_kv = axes[0, j], axes[1, j]
            t = np.arange(len(run["kv_tokens"]))
            for (color, ls), q, name in zip(_CLASS_STYLE, run["queues"], run["class_names"], strict=False):
                ax_q.plot(t, q, color=color, ls=ls, lw=0.9, label=name)
            lam = run["rate_per_class"]
            drift = [max(0.0, lam - b) for b in cfg["budgets"]]
            if max(drift) > 0:
                ax_q.plot(t, max(drift) * t, color="0.5", lw=0.7, ls=":",
                          label=f"drift (λ − b)⁺ = {max(drift):g} per slot")
            stable = "stable" if lam < min(cfg["budgets"]) else "overloaded"
            ax_q.set_title(f"λ = {lam:g} per class ({stable}; λ* = M/Σw = {d['lambda_star']:.4g})")
            ax_q.set_ylabel(label("waiting requests", "count"))
            ax_q.legend(loc="upper left")
            ax_kv.plot(t, run["kv_tokens"], color=BLUE, lw=0.6, label="KV usage U_t")
            ax_kv.axhline(m, color=VERMILION, lw=0.9, ls="--", label=f"M = {m:,}")
            ax_kv.axhline(bw, color=BLACK, lw=0.9, ls=":", label=f"Σ b_k w_k = {bw:,}")
            ax_kv.set_ylim(0, 1.08 * m)
            ax_kv.set_xlabel(label("time", "time"))
            ax_kv.set_ylabel(label("KV cache in use", "memory"))
            ax_kv.legend(loc="lower right")
            ax_kv.set_xlim(0, t[-1])
    return fig
